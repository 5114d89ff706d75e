// Tail: reading a room (a Subscription) as a Python iterator. Every wait happens with the GIL
// released, in slices of at most 100 ms between which Ctrl-C (a pending signal) is honoured.
// The async iterator over a Tail is agentbus._aio.AsyncTail (docs/python.md, "Async").
//
// A Subscription is used by one thread at a time; a Tail may be handed between threads (the
// async iterator reads it on its waiter thread), so each read holds `busy`, taken without
// the GIL so that a reader waiting for it never blocks the interpreter.
//
// Events an async iterator read ahead but did not hand out (a loop left with `break`) come
// back to their Tail (`_unread`): the next read of any kind delivers them first, so nothing a
// tail read is lost in the process; a durable reader's cursor has moved past them already.
#include "binding.hpp"

#include <agentbus/error.hpp>
#include <agentbus/room.hpp>
#include <agentbus/subscription.hpp>

#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <vector>

namespace agentbus::python {

namespace {

class Tail {
 public:
  Tail(Room& room, py::handle from, py::handle durable_name, py::handle timeout) : room_(room.name()) {
    const StartPoint start = start_point(from);
    SubscribeOptions o;
    o.from = start.from;
    o.from_id = start.id;
    o.durable_name = durable_name.is_none() ? std::string() : std::string(text_view(durable_name, "durable_name"));
    iteration_timeout_ = optional_seconds(timeout, "timeout");
    GilReleased unlocked;
    sub_.emplace(room.subscribe(o));
  }

  // The next event, or None when `timeout` (seconds; None: no bound) runs out.
  py::object next(py::handle timeout) {
    std::optional<Event> got;
    wait_released(
        [&](std::chrono::nanoseconds slice) {
          std::lock_guard lock(busy_);
          if (!unread_.empty()) {
            live();  // a closed tail stays closed
            got = std::move(unread_.front());
            unread_.pop_front();
            return true;
          }
          ReadResult r = live().next(slice);
          for (;;) {
            if (r.status == ReadStatus::event) {
              got = r.event.to_owned();
              return true;
            }
            if (r.status == ReadStatus::timeout) return false;
            missed_.fetch_add(r.missed, std::memory_order_relaxed);  // counted; reading goes on
            if (r.status == ReadStatus::overrun) overruns_.fetch_add(1, std::memory_order_relaxed);
            r = live().next(std::chrono::nanoseconds(0));
          }
        },
        bound(timeout));
    if (!got) return py::none();
    return py::cast(std::move(*got));
  }

  // The events available now (up to `limit`), waiting up to `timeout` for the first.
  py::list next_batch(std::size_t limit, py::handle timeout) {
    thread_local std::vector<Event> events;
    events.clear();
    wait_released(
        [&](std::chrono::nanoseconds slice) {
          std::lock_guard lock(busy_);
          if (!unread_.empty()) {
            live();
            const std::size_t n = std::min(limit, unread_.size());
            std::move(unread_.begin(), unread_.begin() + static_cast<std::ptrdiff_t>(n), std::back_inserter(events));
            unread_.erase(unread_.begin(), unread_.begin() + static_cast<std::ptrdiff_t>(n));
            return n > 0;
          }
          const PollResult r = live().poll([&](const EventView& e) { events.push_back(e.to_owned()); }, limit, slice);
          missed_.fetch_add(r.missed, std::memory_order_relaxed);
          if (r.overrun) overruns_.fetch_add(1, std::memory_order_relaxed);
          return !events.empty();
        },
        bound(timeout));
    py::list out(static_cast<Py_ssize_t>(events.size()));
    for (std::size_t i = 0; i < events.size(); ++i)
      PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), py::cast(std::move(events[i])).release().ptr());
    events.clear();
    return out;
  }

  py::object iter_next() {
    py::object e = next(iteration_timeout_ ? py::object(py::float_(double(iteration_timeout_->count()) / 1e9))
                                           : py::object(py::none()));
    if (e.is_none()) throw py::stop_iteration();
    return e;
  }

  // These wait for `busy_` (another thread's read slice, up to 100 ms) without the GIL.
  EventId position() {
    GilReleased unlocked;
    std::lock_guard lock(busy_);
    Subscription& sub = live();
    return unread_.empty() ? sub.position() : unread_.front().id;
  }
  // Gives back events this tail read but nobody consumed (agentbus._aio.AsyncTail): they are
  // delivered again, first, in id order. Dropped quietly once the tail is closed.
  void unread(std::vector<Event> events) {
    GilReleased unlocked;
    std::lock_guard lock(busy_);
    if (!sub_ || events.empty()) return;
    unread_.insert(unread_.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
    std::stable_sort(unread_.begin(), unread_.end(), [](const Event& a, const Event& b) { return a.id < b.id; });
  }
  void commit(EventId up_to) {
    GilReleased unlocked;
    std::lock_guard lock(busy_);
    live().commit(up_to);
  }
  void close() {
    GilReleased unlocked;
    std::lock_guard lock(busy_);
    if (sub_) sub_->close();
    sub_.reset();
    unread_.clear();
    closed_.store(true, std::memory_order_relaxed);
  }
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t missed() const noexcept { return missed_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t overruns() const noexcept { return overruns_.load(std::memory_order_relaxed); }
  [[nodiscard]] const std::string& room() const noexcept { return room_; }

 private:
  Subscription& live() {
    if (!sub_) throw Error(Errc::invalid_argument, "this tail of room '" + room_ + "' is closed");
    return *sub_;
  }
  static std::optional<std::chrono::nanoseconds> bound(py::handle timeout) {
    return optional_seconds(timeout, "timeout");
  }

  std::string room_;
  std::mutex busy_;
  std::optional<Subscription> sub_;
  std::deque<Event> unread_;  // given back by unread(); guarded by busy_
  std::optional<std::chrono::nanoseconds> iteration_timeout_;
  // Written by the reading thread, read by any (the async iterator reads on its waiter thread).
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> missed_{0};
  std::atomic<std::uint64_t> overruns_{0};
};

}  // namespace

void bind_tail(py::module_& m) {
  py::class_<Tail>(m, "Tail",
                   "A reader of a room: iterate it (`for ev in tail`) or, in a coroutine, `async for ev in tail`.")
      .def("next", &Tail::next, py::arg("timeout") = py::none(),
           "The next event, or None once timeout seconds pass (None: wait as long as it takes).")
      .def("next_batch", &Tail::next_batch, py::arg("limit") = 256, py::arg("timeout") = py::none(),
           "The events available now (at most limit), waiting up to timeout for the first; [] on timeout.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &Tail::iter_next)
      .def_property_readonly("position", &Tail::position, "Id of the next event this tail delivers.")
      .def_property_readonly("missed", &Tail::missed, "Events lost to overruns plus unreadable records skipped.")
      .def_property_readonly("overruns", &Tail::overruns, "Times producers lapped this tail.")
      .def_property_readonly("room", &Tail::room)
      .def_property_readonly("closed", &Tail::closed)
      .def("commit", &Tail::commit, py::arg("up_to"))
      .def("close", &Tail::close)
      .def("_unread", &Tail::unread, py::arg("events"),
           "Gives back events read but not consumed: the next reads deliver them first.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Tail& t, py::args) { t.close(); });

  // Room.tail: defined here, beside Tail, since the Room class is bound before it.
  py::class_<Room> room = py::reinterpret_borrow<py::class_<Room>>(m.attr("Room"));
  room.def(
      "tail",
      [](Room& r, py::handle from, py::handle durable_name, py::handle timeout) {
        return std::make_unique<Tail>(r, from, durable_name, timeout);
      },
      py::kw_only(), py::arg("from_") = "latest", py::arg("durable_name") = py::none(), py::arg("timeout") = py::none(),
      "A reader from \"latest\" (default), \"earliest\" or an event id. durable_name: a durable reader "
      "(its cursor survives the process and gates producers). timeout: iteration stops after that many "
      "seconds without an event (None: never).");
}

}  // namespace agentbus::python
