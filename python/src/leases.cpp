// Resource leases: `with room.leases().lease("path:src/x", agent=me):` takes all of the
// resources or raises Conflict naming the holder, and releases them on exit.
#include "binding.hpp"

#include <agentbus/error.hpp>
#include <agentbus/leases.hpp>

#include <pybind11/stl.h>

namespace agentbus::python {

namespace {

// A lease this process holds. Holds the Leases (Python object) it came from alive.
struct HeldLease {
  Leases* leases = nullptr;
  LeaseInfo info;
  bool released = false;

  bool release() {
    if (released) return false;
    released = true;
    GilReleased unlocked;
    return leases->release(info.id, info.owner);
  }
};

std::vector<std::string> resource_list(py::handle resources) {
  if (PyUnicode_Check(resources.ptr())) return {std::string(text_view(resources, "resource"))};
  return resources.cast<std::vector<std::string>>();
}

py::dict lease_dict(const LeaseInfo& l) {
  py::dict d;
  d["id"] = l.id;
  d["owner"] = l.owner;
  d["resources"] = l.resources;
  d["purpose"] = l.purpose;
  d["session_pid"] = l.session_pid;
  d["ttl"] = ms_to_seconds(l.ttl);
  d["expires_in"] = ms_to_seconds(l.expires_in);
  return d;
}

}  // namespace

void bind_leases(py::module_& m) {
  py::class_<LeaseInfo>(m, "LeaseInfo")
      .def_readonly("id", &LeaseInfo::id, "Also the fencing token.")
      .def_readonly("owner", &LeaseInfo::owner)
      .def_readonly("resources", &LeaseInfo::resources)
      .def_readonly("purpose", &LeaseInfo::purpose)
      .def_readonly("session_pid", &LeaseInfo::session_pid)
      .def_property_readonly("expires_in", [](const LeaseInfo& l) { return ms_to_seconds(l.expires_in); })
      .def("to_dict", &lease_dict);

  py::class_<HeldLease>(m, "Lease", "A lease held by this process; `with` releases it on exit.")
      .def_property_readonly("id", [](const HeldLease& l) { return l.info.id; })
      .def_property_readonly("owner", [](const HeldLease& l) { return l.info.owner; })
      .def_property_readonly("resources", [](const HeldLease& l) { return l.info.resources; })
      .def_property_readonly("info", [](const HeldLease& l) { return l.info; })
      .def(
          "renew",
          [](HeldLease& l, double ttl) {
            const auto t = seconds_to_ms(ttl, "ttl");
            // Copied while the GIL is held: another thread's renew assigns l.info under the GIL,
            // and this one reads them after letting go of it.
            const auto id = l.info.id;
            const std::string owner = l.info.owner;
            LeaseRenewal r;
            {
              GilReleased unlocked;
              r = l.leases->renew(id, owner, t);
            }
            if (!r.ok()) throw Error(Errc::expired, r.reason);
            l.info = r.lease;
          },
          py::arg("ttl") = 600.0, "Extends the lease; Expired when it lapsed or is gone.")
      .def("release", &HeldLease::release)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](HeldLease& l, py::args) { l.release(); });

  py::class_<Leases>(m, "Leases", "A room's lease table.")
      .def(py::init([](Room room, std::uint32_t capacity, bool create) {
             LeasesOptions o;
             o.capacity = capacity;
             o.create = create;
             GilReleased unlocked;
             return std::make_unique<Leases>(std::move(room), o);
           }),
           py::arg("room"), py::kw_only(), py::arg("capacity") = 256, py::arg("create") = true)
      .def(
          "lease",
          [](Leases& leases, py::handle resources, const std::string& agent, const std::string& purpose, double ttl,
             int session_pid) {
            const std::vector<std::string> rs = resource_list(resources);
            LeaseOptions o;
            o.ttl = seconds_to_ms(ttl, "ttl");
            o.session_pid = session_pid;
            LeaseAcquisition a;
            {
              GilReleased unlocked;
              a = leases.acquire(agent, rs, purpose, o);
            }
            if (!a.ok()) throw Error(Errc::conflict, a.reason);
            return HeldLease{&leases, a.lease, false};
          },
          py::arg("resources"), py::kw_only(), py::arg("agent"), py::arg("purpose") = "", py::arg("ttl") = 600.0,
          py::arg("session_pid") = 0, py::keep_alive<0, 1>(),
          "Takes all of the resources (a `kind:name` str or a list) or raises Conflict naming the holder.")
      .def("list", &Leases::list, py::call_guard<GilReleased>())
      .def(
          "holder_of",
          [](const Leases& l, const std::string& resource) -> py::object {
            const auto h = l.holder_of(resource);
            if (!h) return py::none();
            return py::cast(h->lease);
          },
          py::arg("resource"), "The live lease holding a resource conflicting with `resource`, or None.");
}

}  // namespace agentbus::python
