// Bus, Room and Event: opening a bus, rooms, publishing (one event or a batch), recent events.
//
// publish() is the hot path: its arguments are viewed, never copied (a str's UTF-8 is cached
// in the str object; bytes are used in place), and the GIL is released only around the ring
// call itself, which may wait (publish_timeout) on a ring a durable reader keeps full.
#include "binding.hpp"

#include <agentbus/bus.hpp>
#include <agentbus/error.hpp>
#include <agentbus/event.hpp>
#include <agentbus/room.hpp>

#include <pybind11/stl.h>

#include <vector>

namespace agentbus::python {

namespace {

std::optional<EventId> optional_id(py::handle id, const char* what) {
  if (id.is_none()) return std::nullopt;
  if (!PyLong_Check(id.ptr()) || PyBool_Check(id.ptr()))
    throw py::type_error(std::string(what) + " must be an event id (int) or None");
  const long long v = id.cast<long long>();
  if (v < 0) throw Error(Errc::invalid_argument, std::string(what) + " must be an event id >= 0");
  return static_cast<EventId>(v);
}

EventId publish(Room& room, py::handle type, py::handle payload, py::handle agent, py::handle to,
                py::handle reply_to) {
  const std::string_view type_v = text_view(type, "type");
  const std::string_view payload_v = payload_view(payload);
  const std::string_view agent_v = text_view(agent, "agent");
  PublishOptions options;
  options.to = optional_text(to);
  options.reply_to = optional_id(reply_to, "reply_to");
  PublishResult r;
  {
    GilReleased unlocked;
    r = room.publish(type_v, agent_v, payload_v, options);
  }
  if (!r.ok()) throw_bus_full(room.name());
  return r.id;
}

// items: payloads (str/bytes) when `type` is given, else (type, payload) pairs.
py::list publish_batch(Room& room, py::handle items, py::handle agent, py::handle type, py::handle to) {
  // Reused between calls of one thread: a batch allocates nothing once these have grown.
  thread_local std::vector<EventIn> events;
  thread_local std::vector<EventId> ids;
  const std::string_view agent_v = text_view(agent, "agent");
  const std::string_view to_v = optional_text(to);
  const bool one_type = !type.is_none();
  const std::string_view type_v = one_type ? text_view(type, "type") : std::string_view{};
  // A tuple of our own, not PySequence_Fast (which hands back a list as it is): the views below
  // stay in use while the GIL is released, and another thread may empty the caller's list
  // meanwhile. The tuple holds a reference to every item (str, bytes and pairs are immutable).
  py::object seq = py::reinterpret_steal<py::object>(PySequence_Tuple(items.ptr()));
  if (!seq) {
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) throw py::error_already_set();
    PyErr_Clear();
    throw py::type_error(std::string("publish_batch takes a sequence, not ") + Py_TYPE(items.ptr())->tp_name);
  }
  const Py_ssize_t n = PyTuple_GET_SIZE(seq.ptr());
  events.clear();
  events.reserve(static_cast<std::size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    EventIn e;
    e.agent = agent_v;
    e.options.to = to_v;
    if (one_type) {
      e.type = type_v;
      e.payload = payload_view(PyTuple_GET_ITEM(seq.ptr(), i));
    } else {
      PyObject* pair = PyTuple_GET_ITEM(seq.ptr(), i);
      if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2)
        throw py::type_error("publish_batch without type= takes (type, payload) pairs; item " +
                             std::to_string(i) + " is not one");
      e.type = text_view(PyTuple_GET_ITEM(pair, 0), "type");
      e.payload = payload_view(PyTuple_GET_ITEM(pair, 1));
    }
    events.push_back(e);
  }
  ids.resize(events.size());
  PublishResult r;
  if (!events.empty()) {
    GilReleased unlocked;
    r = room.publish_batch(events, ids);
  }
  if (!r.ok()) throw_bus_full(room.name());
  py::list out(n);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* v = PyLong_FromUnsignedLongLong(ids[static_cast<std::size_t>(i)]);
    if (v == nullptr) throw py::error_already_set();
    PyList_SET_ITEM(out.ptr(), i, v);
  }
  return out;
}

py::object none_if_empty(const std::string& s) { return s.empty() ? py::object(py::none()) : py::object(to_str(s)); }

py::dict event_dict(const Event& e) {
  py::dict d;
  d["id"] = e.id;
  d["ts_ns"] = e.ts_ns;
  d["type"] = to_str(e.type);
  d["agent"] = to_str(e.agent);
  d["to"] = none_if_empty(e.to);
  d["reply_to"] = e.reply_to ? py::object(py::int_(*e.reply_to)) : py::object(py::none());
  d["payload"] = to_str(e.payload);
  py::dict origin;
  origin["host"] = to_str(e.origin.host);
  origin["id"] = e.origin.id;
  d["origin"] = origin;
  d["imported"] = e.imported;
  return d;
}

py::dict room_info_dict(const RoomInfo& info) {
  py::dict d;
  d["name"] = info.name;
  d["ring_bytes"] = info.ring_bytes;
  d["max_record_bytes"] = info.max_record_bytes;
  d["tail"] = info.tail;
  d["oldest"] = info.oldest;
  py::dict counters;
  for (const Counter& c : counter_list(info.counters)) counters[py::str(std::string(c.name))] = c.value;
  d["counters"] = counters;
  py::list readers;
  for (const ReaderInfo& r : info.readers) {
    py::dict rd;
    rd["name"] = r.name;
    rd["durable"] = r.durable;
    rd["pid"] = r.pid;
    rd["alive"] = r.alive;
    rd["cursor"] = r.cursor;
    rd["lag_bytes"] = r.lag_bytes;
    readers.append(rd);
  }
  d["readers"] = readers;
  if (!info.corrupt.empty()) d["corrupt"] = info.corrupt;
  return d;
}

}  // namespace

void bind_bus(py::module_& m) {
  py::class_<Event>(m, "Event", "One immutable event of a room (a copy: it outlives the ring).")
      .def_readonly("id", &Event::id)
      .def_readonly("ts_ns", &Event::ts_ns, "CLOCK_REALTIME at publish, ns since the Unix epoch")
      .def_property_readonly("ts", [](const Event& e) { return static_cast<double>(e.ts_ns) / 1e9; })
      .def_property_readonly("type", [](const Event& e) { return to_str(e.type); })
      .def_property_readonly("agent", [](const Event& e) { return to_str(e.agent); })
      .def_property_readonly("to", [](const Event& e) { return none_if_empty(e.to); })
      .def_readonly("reply_to", &Event::reply_to)
      .def_property_readonly("payload", [](const Event& e) { return to_str(e.payload); })
      .def_property_readonly("payload_bytes", [](const Event& e) { return py::bytes(e.payload); })
      .def_property_readonly("origin_host", [](const Event& e) { return to_str(e.origin.host); })
      .def_property_readonly("origin_id", [](const Event& e) { return e.origin.id; })
      .def_readonly("imported", &Event::imported)
      .def("to_dict", &event_dict)
      .def("__repr__", [](const Event& e) {
        return "Event(id=" + std::to_string(e.id) + ", type='" + e.type + "', agent='" + e.agent + "', payload=" +
               std::string(py::repr(to_str(e.payload.substr(0, 80)))) + (e.payload.size() > 80 ? "..." : "") + ")";
      });

  py::class_<Room>(m, "Room", "A room: a multi-producer log of events in shared memory.")
      .def_property_readonly("name", &Room::name)
      .def("publish", &publish, py::arg("type"), py::arg("payload"), py::kw_only(), py::arg("agent"),
           py::arg("to") = py::none(), py::arg("reply_to") = py::none(),
           "Publishes one event and returns its id. Raises BusFull when a durable reader keeps the ring full.")
      .def("publish_batch", &publish_batch, py::arg("items"), py::kw_only(), py::arg("agent"),
           py::arg("type") = py::none(), py::arg("to") = py::none(),
           "Publishes all items with one claim and one commit (readers see none or all); returns their ids. "
           "items are payloads when type= is given, else (type, payload) pairs.")
      .def("recent",
           [](Room& room, std::size_t n) {
             std::vector<Event> events;
             {
               GilReleased unlocked;
               events = room.recent(n);
             }
             return events;
           },
           py::arg("n") = 10, "The newest n events still in the ring, oldest first.")
      .def("info", [](const Room& room) { return room_info_dict(room.info()); })
      .def("drop_reader", &Room::drop_reader, py::arg("durable_name"), py::call_guard<GilReleased>())
      .def_property_readonly("bus_destroyed", &Room::bus_destroyed)
      .def("__repr__", [](const Room& r) { return "Room('" + r.name() + "')"; });

  py::class_<Bus>(m, "Bus", "A bus: one shared-memory segment holding rooms. Opened (created) on construction.")
      .def(py::init([](py::handle name, bool create, std::size_t segment_bytes, std::uint32_t max_rooms) {
             BusOptions o;
             o.name = name.is_none() ? std::string() : std::string(text_view(name, "name"));
             o.create = create;
             o.segment_bytes = segment_bytes;
             o.max_rooms = max_rooms;
             GilReleased unlocked;  // may wait (bounded) for another creator
             return Bus::open(o);
           }),
           py::arg("name") = py::none(), py::kw_only(), py::arg("create") = true,
           py::arg("segment_bytes") = std::size_t(256) << 20, py::arg("max_rooms") = 256)
      .def_property_readonly("name", &Bus::name)
      .def_property_readonly("host_id", [](const Bus& b) { return std::string(b.host_id()); })
      .def("_room",
           [](Bus& bus, py::handle name, std::size_t ring_bytes, std::size_t max_record_bytes, bool create,
              double publish_timeout) {
             RoomOptions o;
             o.ring_bytes = ring_bytes;
             o.max_record_bytes = max_record_bytes;
             o.create = create;
             o.publish_timeout = seconds_to_ms(publish_timeout, "publish_timeout");
             const std::string_view n = text_view(name, "name");
             GilReleased unlocked;
             return bus.room(n, o);
           },
           py::arg("name"), py::kw_only(), py::arg("ring_bytes") = 1 << 20, py::arg("max_record_bytes") = 0,
           py::arg("create") = true, py::arg("publish_timeout") = 1.0)
      .def("room_names", &Bus::room_names, py::call_guard<GilReleased>())
      .def("info",
           [](const Bus& bus) {
             const BusInfo info = bus.info();
             py::dict d;
             d["name"] = info.name;
             d["object_name"] = info.object_name;
             d["segment_bytes"] = info.segment_bytes;
             d["used_bytes"] = info.used_bytes;
             d["max_rooms"] = info.max_rooms;
             d["host_id"] = info.host_id;
             d["creator_pid"] = info.creator_pid;
             py::list rooms;
             for (const RoomInfo& r : info.rooms) rooms.append(room_info_dict(r));
             d["rooms"] = rooms;
             return d;
           })
      .def_static("destroy", [](const std::string& name) { return Bus::destroy(name); }, py::arg("name"),
                  "Removes the bus's shared-memory object; False if there was none.")
      .def_static("default_name", &Bus::default_name)
      .def("__repr__", [](const Bus& b) { return "Bus('" + b.name() + "')"; });
}

}  // namespace agentbus::python
