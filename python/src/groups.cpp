// Consumer groups: read (waits with the GIL released, Ctrl-C honoured), ack, pending,
// autoclaim, leave.
//
// A C++ ConsumerGroup is used by one thread at a time, but Python threads may share a handle
// (one reads while another acks), so every call holds the handle's `busy` mutex, taken with
// the GIL released (as Tail does): a call waiting behind a read slice (at most 100 ms) or an
// ack's bounded spin never blocks the interpreter.
#include "binding.hpp"

#include <agentbus/consumer_group.hpp>

#include <pybind11/stl.h>

#include <memory>
#include <mutex>

namespace agentbus::python {

namespace {

struct GroupHandle {
  explicit GroupHandle(std::unique_ptr<ConsumerGroup> g) : group(std::move(g)) {}

  // Runs `call(group)` with the GIL released, holding busy.
  template <class Call>
  auto locked(Call&& call) {
    GilReleased unlocked;
    std::lock_guard lock(busy);
    return call(*group);
  }

  std::unique_ptr<ConsumerGroup> group;
  std::mutex busy;
};

}  // namespace

void bind_groups(py::module_& m) {
  py::class_<Delivery>(m, "Delivery", "An event delivered to this member; ack it when its work is done.")
      .def_readonly("seq", &Delivery::seq)
      .def_readonly("deliveries", &Delivery::deliveries, "1 the first time; more when redelivered")
      .def_readonly("event", &Delivery::event)
      .def("__repr__", [](const Delivery& d) {
        return "Delivery(seq=" + std::to_string(d.seq) + ", id=" + std::to_string(d.event.id) + ", deliveries=" +
               std::to_string(d.deliveries) + ")";
      });

  py::class_<PendingEntry>(m, "PendingEntry")
      .def_readonly("id", &PendingEntry::id)
      .def_readonly("seq", &PendingEntry::seq)
      .def_readonly("type", &PendingEntry::type)
      .def_readonly("owner", &PendingEntry::owner)
      .def_readonly("owner_alive", &PendingEntry::owner_alive)
      .def_readonly("deliveries", &PendingEntry::deliveries);

  py::class_<GroupHandle>(m, "ConsumerGroup", "One member of a consumer group over a room.")
      .def(py::init([](Room room, const std::string& group, const std::string& member,
                       std::vector<std::string> interests, py::handle from, std::uint32_t max_deliveries) {
             GroupOptions o;
             o.interests = std::move(interests);
             const StartPoint start = start_point(from);
             o.from = start.from;
             o.from_id = start.id;
             o.max_deliveries = max_deliveries;
             GilReleased unlocked;
             return std::make_unique<GroupHandle>(std::make_unique<ConsumerGroup>(std::move(room), group, member, o));
           }),
           py::arg("room"), py::arg("group"), py::arg("member"), py::kw_only(),
           py::arg("interests") = std::vector<std::string>{"*"}, py::arg("from_") = "latest",
           py::arg("max_deliveries") = 5)
      .def(
          "read",
          [](GroupHandle& g, py::handle timeout) -> py::object {
            std::optional<Delivery> got;
            const std::optional<std::chrono::nanoseconds> total = optional_seconds(timeout, "timeout");
            wait_released(
                [&](std::chrono::nanoseconds slice) {
                  std::lock_guard lock(g.busy);
                  got = g.group->read(slice);
                  return got.has_value();
                },
                total);
            if (!got) return py::none();
            return py::cast(std::move(*got));
          },
          py::arg("timeout") = py::none(),
          "The next delivery for this member, or None once timeout seconds pass (None: no bound).")
      .def(
          "ack",
          [](GroupHandle& g, const Delivery& d) {
            return g.locked([&](ConsumerGroup& c) { return c.ack(d); }) == AckResult::acked;
          },
          py::arg("delivery"), "Acknowledges for the whole group; False when it was not pending.")
      .def(
          "ack",
          [](GroupHandle& g, EventId id) {
            return g.locked([&](ConsumerGroup& c) { return c.ack(id); }) == AckResult::acked;
          },
          py::arg("id"))
      .def(
          "record_receipt",
          [](GroupHandle& g, const Delivery& d) { g.locked([&](ConsumerGroup& c) { c.record_receipt(d); }); },
          py::arg("delivery"))
      .def(
          "pending", [](GroupHandle& g, std::size_t n) { return g.locked([&](ConsumerGroup& c) { return c.pending(n); }); },
          py::arg("n") = 100)
      .def(
          "autoclaim",
          [](GroupHandle& g, double min_idle, std::size_t count) {
            const auto idle = seconds_to_ms(min_idle, "min_idle");
            return g.locked([&](ConsumerGroup& c) { return c.autoclaim(idle, count); });
          },
          py::arg("min_idle"), py::arg("count") = 100)
      .def("leave", [](GroupHandle& g) { g.locked([](ConsumerGroup& c) { c.leave(); }); })
      .def_property_readonly("member", [](const GroupHandle& g) { return g.group->member(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](GroupHandle& g, py::args) { g.locked([](ConsumerGroup& c) { c.leave(); }); });
}

}  // namespace agentbus::python
