// Consumer groups: read (waits with the GIL released, Ctrl-C honoured), ack, pending,
// autoclaim, leave. A handle is one member, used by one thread at a time (as in C++).
#include "binding.hpp"

#include <agentbus/consumer_group.hpp>

#include <pybind11/stl.h>

namespace agentbus::python {

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

  py::class_<ConsumerGroup>(m, "ConsumerGroup", "One member of a consumer group over a room.")
      .def(py::init([](Room room, const std::string& group, const std::string& member,
                       std::vector<std::string> interests, py::handle from, std::uint32_t max_deliveries) {
             GroupOptions o;
             o.interests = std::move(interests);
             const StartPoint start = start_point(from);
             o.from = start.from;
             o.from_id = start.id;
             o.max_deliveries = max_deliveries;
             py::gil_scoped_release unlocked;
             return std::make_unique<ConsumerGroup>(std::move(room), group, member, o);
           }),
           py::arg("room"), py::arg("group"), py::arg("member"), py::kw_only(),
           py::arg("interests") = std::vector<std::string>{"*"}, py::arg("from_") = "latest",
           py::arg("max_deliveries") = 5)
      .def(
          "read",
          [](ConsumerGroup& g, py::handle timeout) -> py::object {
            std::optional<Delivery> got;
            const std::optional<std::chrono::nanoseconds> total = optional_seconds(timeout, "timeout");
            wait_released(
                [&](std::chrono::nanoseconds slice) {
                  got = g.read(slice);
                  return got.has_value();
                },
                total);
            if (!got) return py::none();
            return py::cast(std::move(*got));
          },
          py::arg("timeout") = py::none(),
          "The next delivery for this member, or None once timeout seconds pass (None: no bound).")
      .def(
          "ack", [](ConsumerGroup& g, const Delivery& d) { return g.ack(d) == AckResult::acked; }, py::arg("delivery"),
          "Acknowledges for the whole group; False when it was not pending.")
      .def(
          "ack", [](ConsumerGroup& g, EventId id) { return g.ack(id) == AckResult::acked; }, py::arg("id"))
      .def("record_receipt", py::overload_cast<const Delivery&>(&ConsumerGroup::record_receipt), py::arg("delivery"))
      .def("pending", &ConsumerGroup::pending, py::arg("n") = 100, py::call_guard<py::gil_scoped_release>())
      .def(
          "autoclaim",
          [](ConsumerGroup& g, double min_idle, std::size_t count) {
            const auto idle = seconds_to_ms(min_idle, "min_idle");
            py::gil_scoped_release unlocked;
            return g.autoclaim(idle, count);
          },
          py::arg("min_idle"), py::arg("count") = 100)
      .def("leave", &ConsumerGroup::leave, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("member", &ConsumerGroup::member)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](ConsumerGroup& g, py::args) { g.leave(); });
}

}  // namespace agentbus::python
