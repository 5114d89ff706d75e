// The task board: register, post_task, open_tasks, claim -> token, renew, complete, release,
// state. A claim lost to someone else is agentbus.Conflict (the CLI's exit 3), naming the
// holder, so that `token = board.claim(id, agent=me)` either holds the task or raises.
#include "binding.hpp"

#include <agentbus/error.hpp>
#include <agentbus/tasks.hpp>

#include <pybind11/stl.h>

namespace agentbus::python {

namespace {

std::string_view phase_name(TaskPhase p) {
  switch (p) {
    case TaskPhase::open: return "open";
    case TaskPhase::claimed: return "claimed";
    case TaskPhase::done: return "done";
  }
  return "open";
}

py::dict task_dict(const TaskState& t) {
  py::dict d;
  d["id"] = t.id;
  d["phase"] = std::string(phase_name(t.phase));
  d["type"] = t.type;
  d["creator"] = t.creator;
  d["payload"] = to_str(t.payload);
  d["created_ts_ns"] = t.created_ts_ns;
  d["claimant"] = t.claimant;
  d["token"] = t.token;
  d["owner_pid"] = t.owner_pid;
  d["owner_alive"] = t.owner_alive;
  d["lease_left"] = ms_to_seconds(t.lease_left);
  d["result"] = to_str(t.result);
  d["done_ts_ns"] = t.done_ts_ns;
  return d;
}

std::uint32_t claimed_token(const Claim& c) {
  switch (c.status) {
    case ClaimStatus::claimed: return c.token;
    case ClaimStatus::held:
      throw Error(Errc::conflict, "task " + std::to_string(c.id) + " is claimed by " + c.holder + " (token " +
                                      std::to_string(c.holder_token) + ", " + std::to_string(c.lease_left.count()) +
                                      " ms left)");
    case ClaimStatus::done: throw Error(Errc::conflict, "task " + std::to_string(c.id) + " is already done");
  }
  return c.token;
}

}  // namespace

void bind_tasks(py::module_& m) {
  py::class_<TaskType>(m, "TaskType")
      .def_readonly("type", &TaskType::type)
      .def_readonly("description", &TaskType::description)
      .def_readonly("produces", &TaskType::produces)
      .def_readonly("requires", &TaskType::requires_);

  py::class_<TaskState>(m, "TaskState", "A task as the board holds it: open, claimed or done.")
      .def_readonly("id", &TaskState::id)
      .def_property_readonly("phase", [](const TaskState& t) { return std::string(phase_name(t.phase)); })
      .def_readonly("type", &TaskState::type)
      .def_readonly("creator", &TaskState::creator)
      .def_property_readonly("payload", [](const TaskState& t) { return to_str(t.payload); })
      .def_readonly("claimant", &TaskState::claimant)
      .def_readonly("token", &TaskState::token)
      .def_readonly("owner_pid", &TaskState::owner_pid)
      .def_readonly("owner_alive", &TaskState::owner_alive)
      .def_property_readonly("lease_left", [](const TaskState& t) { return ms_to_seconds(t.lease_left); })
      .def_property_readonly("result", [](const TaskState& t) { return to_str(t.result); })
      .def("to_dict", &task_dict)
      .def("__repr__", [](const TaskState& t) {
        return "TaskState(id=" + std::to_string(t.id) + ", type='" + t.type + "', phase=" +
               std::string(phase_name(t.phase)) + ")";
      });

  py::class_<TaskBoard>(m, "TaskBoard", "A room's task board: atomic claims with leases and fencing tokens.")
      .def(py::init([](Room room, std::uint32_t capacity, bool create) {
             TaskBoardOptions o;
             o.task_capacity = capacity;
             o.create = create;
             GilReleased unlocked;
             return std::make_unique<TaskBoard>(std::move(room), o);
           }),
           py::arg("room"), py::kw_only(), py::arg("capacity") = 1024, py::arg("create") = true)
      .def(
          "register",
          [](TaskBoard& b, std::string type, std::string description, std::string produces, std::string requires_) {
            b.register_task({std::move(type), std::move(description), std::move(produces), std::move(requires_)});
          },
          py::arg("type"), py::arg("description") = "", py::kw_only(), py::arg("produces") = "",
          py::arg("requires") = "", "Adds or updates a task type.")
      .def("catalog", &TaskBoard::catalog, py::call_guard<GilReleased>())
      .def(
          "post_task",
          [](TaskBoard& b, py::handle type, py::handle payload, py::handle agent) {
            const std::string_view t = text_view(type, "type"), p = payload_view(payload), a = text_view(agent, "agent");
            GilReleased unlocked;
            return b.post_task(t, a, p);
          },
          py::arg("type"), py::arg("payload"), py::kw_only(), py::arg("agent"),
          "Publishes a task of a registered type; returns its id (NotFound for an unregistered type).")
      .def(
          "open_tasks",
          [](TaskBoard& b, std::size_t n) {
            GilReleased unlocked;
            return b.open_tasks(n);
          },
          py::arg("n") = 100, "Tasks nobody holds, oldest first.")
      .def(
          "claim",
          [](TaskBoard& b, EventId id, py::handle agent, double ttl, int session_pid) {
            const std::string_view a = text_view(agent, "agent");
            ClaimOptions o;
            o.ttl = seconds_to_ms(ttl, "ttl");
            o.session_pid = session_pid;
            Claim c;
            {
              GilReleased unlocked;
              c = b.claim(id, a, o);
            }
            return claimed_token(c);
          },
          py::arg("id"), py::kw_only(), py::arg("agent"), py::arg("ttl") = 300.0, py::arg("session_pid") = 0,
          "Claims the task; returns the fencing token. Conflict when someone else holds it or it is done. The claim "
          "ends when ttl runs out or the session process (default: this one) dies.")
      .def(
          "renew",
          [](TaskBoard& b, EventId id, std::uint32_t token, double ttl) {
            const auto t = seconds_to_ms(ttl, "ttl");
            GilReleased unlocked;
            b.renew(id, token, t);
          },
          py::arg("id"), py::arg("token"), py::kw_only(), py::arg("ttl") = 300.0)
      .def(
          "complete",
          [](TaskBoard& b, EventId id, std::uint32_t token, py::handle result) {
            const std::string_view r = payload_view(result);
            GilReleased unlocked;
            return b.complete(id, token, r);
          },
          py::arg("id"), py::arg("token"), py::arg("result") = "",
          "Marks the task done and publishes TASK_DONE; returns that event's id. Conflict for a stale token.")
      .def(
          "release",
          [](TaskBoard& b, EventId id, std::uint32_t token) {
            GilReleased unlocked;
            b.release(id, token);
          },
          py::arg("id"), py::arg("token"))
      .def("state", &TaskBoard::state, py::arg("id"), py::call_guard<GilReleased>(), "NotFound for an unknown id.")
      .def("live_claims", &TaskBoard::live_claims, py::call_guard<GilReleased>())
      .def("counters", [](const TaskBoard& b) {
        py::dict d;
        for (const Counter& c : counter_list(b.counters())) d[py::str(std::string(c.name))] = c.value;
        return d;
      });
}

}  // namespace agentbus::python
