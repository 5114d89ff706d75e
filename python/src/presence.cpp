// Presence: join (a Membership, which is a context manager that leaves on exit), who, refresh,
// leave. The session whose death removes an agent is this process unless session_pid says
// otherwise, so a Python agent killed with kill -9 drops out of who() at once.
#include "binding.hpp"

#include <agentbus/presence.hpp>

#include <pybind11/stl.h>

namespace agentbus::python {

namespace {

// A joined agent. Holds the Presence (Python object) it joined through alive.
struct Membership {
  Presence* presence = nullptr;
  std::string handle;
  bool left = false;

  bool leave() {
    if (left) return false;
    left = true;
    GilReleased unlocked;
    return presence->leave(handle);
  }
};

double seconds_since(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

void bind_presence(py::module_& m) {
  py::class_<AgentInfo>(m, "AgentInfo", "A live agent of a room.")
      .def_readonly("handle", &AgentInfo::handle)
      .def_readonly("role", &AgentInfo::role)
      .def_readonly("working_on", &AgentInfo::working_on)
      .def_readonly("pid", &AgentInfo::pid)
      .def_property_readonly("joined", [](const AgentInfo& a) { return seconds_since(a.joined); })
      .def_property_readonly("last_seen", [](const AgentInfo& a) { return seconds_since(a.last_seen); })
      .def_property_readonly("ttl", [](const AgentInfo& a) { return ms_to_seconds(a.ttl); })
      .def_property_readonly("ttl_left", [](const AgentInfo& a) { return ms_to_seconds(a.ttl_left); })
      .def("to_dict",
           [](const AgentInfo& a) {
             py::dict d;
             d["handle"] = a.handle;
             d["role"] = a.role;
             d["working_on"] = a.working_on;
             d["pid"] = a.pid;
             d["joined"] = seconds_since(a.joined);
             d["last_seen"] = seconds_since(a.last_seen);
             d["ttl"] = ms_to_seconds(a.ttl);
             d["ttl_left"] = ms_to_seconds(a.ttl_left);
             return d;
           })
      .def("__repr__", [](const AgentInfo& a) { return "AgentInfo('" + a.handle + "', role='" + a.role + "')"; });

  py::class_<Membership>(m, "Membership", "A joined agent; `with` leaves on exit.")
      .def_readonly("handle", &Membership::handle, "The qualified handle (handle-<session token>).")
      .def("refresh",
           [](Membership& s) {
             GilReleased unlocked;
             return s.presence->refresh(s.handle);
           })
      .def(
          "set_working_on",
          [](Membership& s, const std::string& w) {
            GilReleased unlocked;
            return s.presence->set_working_on(s.handle, w);
          },
          py::arg("working_on"))
      .def("leave", &Membership::leave)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Membership& s, py::args) { s.leave(); })
      .def("__repr__", [](const Membership& s) { return "Membership('" + s.handle + "')"; });

  py::class_<Presence>(m, "Presence", "Who is in a room.")
      .def(py::init([](Room room, std::uint32_t capacity, bool create) {
             PresenceOptions o;
             o.capacity = capacity;
             o.create = create;
             GilReleased unlocked;
             return std::make_unique<Presence>(std::move(room), o);
           }),
           py::arg("room"), py::kw_only(), py::arg("capacity") = 256, py::arg("create") = true)
      .def(
          "join",
          [](Presence& p, const std::string& handle, const std::string& role, const std::string& working_on, double ttl,
             int session_pid) {
            JoinOptions o;
            o.ttl = seconds_to_ms(ttl, "ttl");
            o.session_pid = session_pid;
            Membership s;
            s.presence = &p;
            {
              GilReleased unlocked;
              s.handle = p.join(handle, role, working_on, o);
            }
            return s;
          },
          py::arg("handle"), py::kw_only(), py::arg("role") = "", py::arg("working_on") = "", py::arg("ttl") = 900.0,
          py::arg("session_pid") = 0, py::keep_alive<0, 1>(),
          "Joins (or re-joins from this session) and returns a Membership; `with presence.join(...) as me:`.")
      .def("who",
           [](const Presence& p) {
             GilReleased unlocked;
             return p.who();
           })
      .def("find", &Presence::find, py::arg("handle"), py::call_guard<GilReleased>())
      .def("refresh", &Presence::refresh, py::arg("handle"), py::call_guard<GilReleased>())
      .def("leave", &Presence::leave, py::arg("handle"), py::call_guard<GilReleased>())
      .def_static("qualify", &Presence::qualify, py::arg("handle"), py::arg("session_pid") = 0);
}

}  // namespace agentbus::python
