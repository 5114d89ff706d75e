// Directed messages and the durable inbox: send, read, ack, cursor, ask (blocking, GIL
// released), reply. The awaitable ask is agentbus._aio (it needs no thread: an async tail).
#include "binding.hpp"

#include <agentbus/inbox.hpp>

#include <pybind11/stl.h>

namespace agentbus::python {

void bind_inbox(py::module_& m) {
  py::class_<InboxMessage>(m, "InboxMessage")
      .def_readonly("seq", &InboxMessage::seq)
      .def_readonly("id", &InboxMessage::id)
      .def_readonly("ts_ns", &InboxMessage::ts_ns)
      .def_readonly("type", &InboxMessage::type)
      .def_readonly("sender", &InboxMessage::from)
      .def_readonly("to", &InboxMessage::to)
      .def_readonly("reply_to", &InboxMessage::reply_to)
      .def_property_readonly("payload", [](const InboxMessage& i) { return to_str(i.payload); })
      .def("to_dict",
           [](const InboxMessage& i) {
             py::dict d;
             d["seq"] = i.seq;
             d["id"] = i.id;
             d["ts_ns"] = i.ts_ns;
             d["type"] = i.type;
             d["from"] = i.from;
             d["to"] = i.to;
             d["reply_to"] = i.reply_to ? py::object(py::int_(*i.reply_to)) : py::object(py::none());
             d["payload"] = to_str(i.payload);
             return d;
           })
      .def("__repr__", [](const InboxMessage& i) {
        return "InboxMessage(seq=" + std::to_string(i.seq) + ", type='" + i.type + "', from='" + i.from + "')";
      });

  py::class_<Inbox>(m, "Inbox", "Directed messages kept for their recipient until acknowledged; ask/reply.")
      .def(py::init([](Room room, bool create) {
             InboxOptions o;
             o.create = create;
             GilReleased unlocked;
             return std::make_unique<Inbox>(std::move(room), o);
           }),
           py::arg("room"), py::kw_only(), py::arg("create") = true)
      .def(
          "send",
          [](Inbox& in, const std::string& to, const std::string& type, py::handle payload, const std::string& agent,
             std::optional<EventId> reply_to) {
            const std::string_view p = payload_view(payload);
            GilReleased unlocked;
            return in.send(agent, to, type, p, {.reply_to = reply_to});
          },
          py::arg("to"), py::arg("type"), py::arg("payload"), py::kw_only(), py::arg("agent"),
          py::arg("reply_to") = py::none(), "Publishes a directed event and keeps its copy in `to`'s inbox; its id.")
      .def(
          "read",
          [](const Inbox& in, const std::string& agent, std::size_t max) {
            GilReleased unlocked;
            return in.read(agent, max);
          },
          py::arg("agent"), py::arg("max") = 100, "Messages after the agent's cursor, oldest first (not acked).")
      .def("ack", &Inbox::ack, py::arg("agent"), py::arg("upto"), py::call_guard<GilReleased>(), "Moves the cursor to seq `upto`; returns it.")
      .def("cursor", &Inbox::cursor, py::arg("agent"), py::call_guard<GilReleased>())
      .def(
          "ask",
          [](Inbox& in, const std::string& to, const std::string& message, const std::string& agent, double timeout) {
            const auto t = seconds_to_ms(timeout, "timeout");
            GilReleased unlocked;
            return in.ask(agent, to, message, t);
          },
          py::arg("to"), py::arg("message"), py::kw_only(), py::arg("agent"), py::arg("timeout") = 60.0,
          "Sends an ASK and waits (GIL released) for its REPLY event. NotFound, Conflict, Timeout.")
      .def(
          "reply",
          [](Inbox& in, EventId ask_id, const std::string& message, const std::string& agent) {
            GilReleased unlocked;
            return in.reply(agent, ask_id, message);
          },
          py::arg("ask_id"), py::arg("message"), py::kw_only(), py::arg("agent"))
      .def_property_readonly("room", [](const Inbox& in) { return in.room(); });

}

}  // namespace agentbus::python
