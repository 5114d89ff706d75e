// The status bus (RoomKit's StatusBus): post, post_sync, recent, recent_text, summary,
// subscribe with a Python callback.
//
// A callback runs on the C++ subscriber's own dispatcher thread, which takes the GIL for the
// call. A callback that raises is turned into a C++ exception carrying the Python error's
// text, so the status bus reports it exactly as it reports any throwing subscriber: a
// `system` entry with status `failed` ("a status subscriber threw on agent/action: ...") and
// stats()["callback_errors"]. Everything that waits for dispatcher threads (close, unsubscribe,
// dropping the last reference, post_sync) does so with the GIL released, since those threads
// may be waiting for the GIL themselves. Status buses still open when the interpreter exits
// are closed by an atexit hook, before the interpreter stops running Python threads.
#include "binding.hpp"

#include <agentbus/error.hpp>
#include <agentbus/status_bus.hpp>

#include <pybind11/stl.h>

#include <mutex>
#include <set>
#include <stdexcept>

namespace agentbus::python {

namespace {

class PyStatusBus;
std::mutex g_open_mutex;
std::set<PyStatusBus*> g_open;  // closed at exit

class PyStatusBus {
 public:
  PyStatusBus(Room room, py::handle persist_path, double sync_timeout) {
    StatusBusOptions o;
    if (!persist_path.is_none()) o.persist_path = py::str(persist_path);
    o.sync_timeout = seconds_to_ms(sync_timeout, "sync_timeout");
    {
      GilReleased unlocked;
      bus_ = std::make_unique<StatusBus>(std::move(room), o);
    }
    std::lock_guard lock(g_open_mutex);
    g_open.insert(this);
  }
  PyStatusBus(const PyStatusBus&) = delete;
  PyStatusBus& operator=(const PyStatusBus&) = delete;
  ~PyStatusBus() {
    {
      std::lock_guard lock(g_open_mutex);
      g_open.erase(this);
    }
    GilReleased unlocked;
    bus_.reset();
  }

  void close() {
    GilReleased unlocked;
    bus_->close();
  }
  StatusBus& bus() { return *bus_; }

  static void close_all() {
    std::set<PyStatusBus*> open;
    {
      std::lock_guard lock(g_open_mutex);
      open = g_open;
    }
    for (PyStatusBus* b : open) b->close();
  }

 private:
  std::unique_ptr<StatusBus> bus_;
};

// Unsubscribing waits until the callback is not running; the callback may be waiting for the GIL.
class PySubscription {
 public:
  explicit PySubscription(StatusSubscription s) : sub_(std::move(s)) {}
  PySubscription(const PySubscription&) = delete;
  PySubscription& operator=(const PySubscription&) = delete;
  ~PySubscription() { unsubscribe(); }
  void unsubscribe() {
    GilReleased unlocked;
    sub_.unsubscribe();
  }
  [[nodiscard]] bool active() const noexcept { return sub_.active(); }

 private:
  StatusSubscription sub_;
};

std::string metadata_text(py::handle metadata) {
  if (metadata.is_none()) return {};
  if (PyUnicode_Check(metadata.ptr())) return std::string(text_view(metadata, "metadata"));
  return py::str(py::module_::import("json").attr("dumps")(metadata));
}

PostResult post(PyStatusBus& self, py::handle agent_id, py::handle action, py::handle status, py::handle detail,
                py::handle metadata, bool sync) {
  const std::string meta = metadata_text(metadata);
  const std::string_view a = text_view(agent_id, "agent_id"), act = text_view(action, "action"),
                         st = text_view(status, "status"), d = optional_text(detail);
  GilReleased unlocked;
  return sync ? self.bus().post_sync(a, act, st, d, meta) : self.bus().post(a, act, st, d, meta);
}

EventId checked(const PostResult& r, std::string_view room) {
  if (r.status == PostStatus::bus_full) throw_bus_full(room);
  if (r.status == PostStatus::timeout)
    throw Error(Errc::timeout, "status entry " + std::to_string(r.id) +
                                   " was published, but not every subscriber ran within sync_timeout");
  return r.id;
}

py::object parse_json(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

}  // namespace

void bind_status(py::module_& m) {
  py::class_<StatusEntry>(m, "StatusEntry", "One status entry {ts, agent_id, action, status, detail, metadata}.")
      .def_readonly("id", &StatusEntry::id)
      .def_readonly("ts", &StatusEntry::ts)
      .def_readonly("agent_id", &StatusEntry::agent_id)
      .def_readonly("action", &StatusEntry::action)
      .def_property_readonly("status", [](const StatusEntry& e) { return std::string(to_string(e.status)); })
      .def_readonly("detail", &StatusEntry::detail)
      .def_property_readonly("metadata", [](const StatusEntry& e) { return parse_json(e.metadata); })
      .def_readonly("origin_host", &StatusEntry::origin_host)
      .def("to_json", &StatusEntry::to_json)
      .def("line", [](const StatusEntry& e) { return status_line(e); }, "RoomKit's one-line form.")
      .def("to_dict",
           [](const StatusEntry& e) {
             py::dict d;
             d["id"] = e.id;
             d["ts"] = e.ts;
             d["agent_id"] = e.agent_id;
             d["action"] = e.action;
             d["status"] = std::string(to_string(e.status));
             d["detail"] = e.detail;
             d["metadata"] = parse_json(e.metadata);
             return d;
           })
      .def("__repr__", [](const StatusEntry& e) { return "StatusEntry(" + status_line(e) + ")"; });

  py::class_<PySubscription>(m, "StatusSubscription")
      .def("unsubscribe", &PySubscription::unsubscribe,
           "After it returns the callback is not running and will not run again.")
      .def_property_readonly("active", &PySubscription::active)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PySubscription& s, py::args) { s.unsubscribe(); });

  py::class_<PyStatusBus>(m, "StatusBus", "RoomKit's StatusBus across processes: entries are STATUS events of a room.")
      .def(py::init<Room, py::handle, double>(), py::arg("room"), py::kw_only(), py::arg("persist_path") = py::none(),
           py::arg("sync_timeout") = 5.0)
      .def(
          "post",
          [](PyStatusBus& self, py::handle a, py::handle act, py::handle st, py::handle d, py::handle meta) {
            return checked(post(self, a, act, st, d, meta, false), self.bus().room().name());
          },
          py::arg("agent_id"), py::arg("action"), py::arg("status") = "info", py::arg("detail") = "",
          py::arg("metadata") = py::none(), "Posts an entry (fire and forget); returns its event id.")
      .def(
          "post_sync",
          [](PyStatusBus& self, py::handle a, py::handle act, py::handle st, py::handle d, py::handle meta) {
            return checked(post(self, a, act, st, d, meta, true), self.bus().room().name());
          },
          py::arg("agent_id"), py::arg("action"), py::arg("status") = "info", py::arg("detail") = "",
          py::arg("metadata") = py::none(),
          "Posts, then waits (GIL released) until every subscriber of this StatusBus ran for it. Raises Timeout.")
      .def(
          "recent",
          [](PyStatusBus& self, std::size_t n, py::handle agent_id, py::handle status) {
            StatusFilter f;
            f.agent_id = std::string(optional_text(agent_id));
            if (!status.is_none()) {
              const std::string_view s = text_view(status, "status");
              f.status = parse_status_level(s);
              if (!f.status) throw Error(Errc::invalid_argument, "unknown status '" + std::string(s) + "'");
            }
            GilReleased unlocked;
            return self.bus().recent(n, f);
          },
          py::arg("n") = 10, py::kw_only(), py::arg("agent_id") = py::none(), py::arg("status") = py::none())
      .def("recent_text", [](PyStatusBus& self, std::size_t n) { return self.bus().recent_text(n); }, py::arg("n") = 10,
           py::call_guard<GilReleased>())
      .def("summary", [](PyStatusBus& self) { return self.bus().summary(); }, py::call_guard<GilReleased>())
      .def(
          "has_completed", [](PyStatusBus& self, py::handle a) { return self.bus().has_completed(optional_text(a)); },
          py::arg("agent_id") = py::none())
      .def(
          "_subscribe",
          [](PyStatusBus& self, py::function callback) {
            auto holder = std::make_shared<GilSafeObject>(std::move(callback));
            StatusCallback cb = [holder](const StatusEntry& entry) {
              std::string error;
              {
                py::gil_scoped_acquire locked;
                try {
                  holder->get()(entry);
                } catch (py::error_already_set& e) {
                  error = describe(e);
                  if (error.empty()) error = "a Python exception";
                }
              }
              if (!error.empty()) throw std::runtime_error(error);
            };
            GilReleased unlocked;
            return std::make_unique<PySubscription>(self.bus().subscribe(std::move(cb)));
          },
          py::arg("callback"), py::keep_alive<0, 1>())
      .def("stats",
           [](PyStatusBus& self) {
             const StatusBusStats s = self.bus().stats();
             py::dict d;
             d["delivered"] = s.delivered;
             d["callback_errors"] = s.callback_errors;
             d["overruns"] = s.overruns;
             d["missed"] = s.missed;
             d["persisted"] = s.persisted;
             d["persist_errors"] = s.persist_errors;
             return d;
           })
      .def_property_readonly("room", [](PyStatusBus& self) { return self.bus().room(); })
      .def("close", &PyStatusBus::close)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyStatusBus& s, py::args) { s.close(); });

  py::module_::import("atexit").attr("register")(py::cpp_function([] { PyStatusBus::close_all(); }));
}

}  // namespace agentbus::python
