// Orchestration: an Agent whose provider is a Python callable, run in this process, and the
// strategies that exist (Pipeline, Swarm, Supervisor, Loop) driven as durable runs.
//
// The provider is called with one dict (run_id, step, agent {id, role, description},
// messages [{role, agent, content}], tools [{name, description, parameters}]) and returns the
// reply: a str, or a dict {text, tool_calls: [{name, arguments}], usage: {input_tokens,
// output_tokens}}. The strategy runs with the GIL released; each provider call takes it. A
// callable that raises FAILS that step (the run's error names the agent and the Python error),
// the way a command provider that exits non-zero does. Its time budget (call_timeout) cannot
// interrupt Python code: a provider must return in time itself.
//
// KeyboardInterrupt, SystemExit and the other BaseExceptions that are not Exceptions are not a
// provider's failure but the program's wish to stop: the first one stops the run (that call and
// every later call of the run fail at once, without calling Python) and run()/resume() raise it
// once the strategy has returned, so Ctrl-C ends `bus.run(...)` as it ends any Python call.
#include "binding.hpp"

#include <agentbus/bus.hpp>
#include <agentbus/error.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/orchestration/run.hpp>
#include <agentbus/orchestration/strategies.hpp>

#include <pybind11/stl.h>

#include <map>
#include <mutex>

namespace agentbus::python {

namespace orch = agentbus::orchestration;

namespace {

py::dict request_dict(const orch::ProviderRequest& r) {
  py::dict d;
  d["run_id"] = r.run_id;
  d["step"] = r.step;
  py::dict agent;
  agent["id"] = r.agent.id;
  agent["role"] = r.agent.role;
  agent["description"] = r.agent.description;
  d["agent"] = agent;
  py::list messages;
  for (const orch::Message& msg : r.messages) {
    py::dict md;
    md["role"] = msg.role;
    md["agent"] = msg.agent;
    md["content"] = to_str(msg.content);
    messages.append(md);
  }
  d["messages"] = messages;
  py::list tools;
  for (const orch::ToolSpec& t : r.tools) {
    py::dict td;
    td["name"] = t.name;
    td["description"] = t.description;
    td["parameters"] = py::module_::import("json").attr("loads")(t.parameters);
    tools.append(td);
  }
  d["tools"] = tools;
  return d;
}

std::string json_text(py::handle v) {
  if (PyUnicode_Check(v.ptr())) return py::str(v);
  return py::str(py::module_::import("json").attr("dumps")(v, py::arg("separators") = py::make_tuple(",", ":")));
}

std::string type_name(py::handle v) { return Py_TYPE(v.ptr())->tp_name; }

// `v` as a dict, or a TypeError naming the field and what it should be.
py::dict dict_field(py::handle v, const std::string& field, const char* shape) {
  if (!PyDict_Check(v.ptr())) throw py::type_error(field + " must be a dict " + shape + ", not " + type_name(v));
  return py::reinterpret_borrow<py::dict>(v);
}

std::uint64_t token_count(const py::dict& usage, const char* key) {
  const py::object v = usage[key];
  if (PyBool_Check(v.ptr()) || !PyLong_Check(v.ptr()))
    throw py::type_error(std::string("usage.") + key + " must be an int, not " + type_name(v));
  const long long n = PyLong_AsLongLong(v.ptr());
  if (n == -1 && PyErr_Occurred() != nullptr) {
    PyErr_Clear();
    throw py::value_error(std::string("usage.") + key + " is too large");
  }
  if (n < 0) throw py::value_error(std::string("usage.") + key + " must be >= 0");
  return static_cast<std::uint64_t>(n);
}

orch::Reply reply_from(py::handle r) {
  if (PyUnicode_Check(r.ptr())) return orch::Reply::say(py::str(r));
  if (!PyDict_Check(r.ptr()))
    throw py::type_error("a provider returns a str or a dict {text, tool_calls, usage}, not " + type_name(r));
  py::dict d = py::reinterpret_borrow<py::dict>(r);
  orch::Reply reply;
  if (d.contains("text")) reply.text = py::str(d["text"]);
  if (d.contains("tool_calls")) {
    const py::object calls = d["tool_calls"];
    if (!PyList_Check(calls.ptr()) && !PyTuple_Check(calls.ptr()))
      throw py::type_error("tool_calls must be a list of {name, arguments}, not " + type_name(calls));
    std::size_t i = 0;
    for (py::handle call : calls) {
      const std::string field = "tool_calls[" + std::to_string(i++) + "]";
      py::dict c = dict_field(call, field, "{name, arguments}");
      if (!c.contains("name")) throw py::value_error(field + " has no name");
      const py::object name = c["name"];
      if (!PyUnicode_Check(name.ptr())) throw py::type_error(field + ".name must be a str, not " + type_name(name));
      orch::ToolCall tc;
      tc.name = py::str(name);
      if (c.contains("arguments")) tc.arguments = json_text(c["arguments"]);
      reply.tool_calls.push_back(std::move(tc));
    }
  }
  if (d.contains("usage")) {
    py::dict u = dict_field(d["usage"], "usage", "{input_tokens, output_tokens}");
    if (u.contains("input_tokens")) reply.usage.input_tokens = token_count(u, "input_tokens");
    if (u.contains("output_tokens")) reply.usage.output_tokens = token_count(u, "output_tokens");
  }
  return reply;
}

// The BaseException (not an Exception) that stopped a run, by run id, until run()/resume()
// raise it. Written by providers (any thread of a fan-out) and read by the driver's thread.
class Interrupts {
 public:
  static Interrupts& instance() {
    static auto* all = new Interrupts;  // never destroyed: holds Python objects past finalisation
    return *all;
  }
  [[nodiscard]] bool stopped(const std::string& run_id) {
    std::lock_guard lock(mutex_);
    return stopped_.count(run_id) != 0;
  }
  // The first interrupt of a run is kept; later ones are its echoes. Call with the GIL held.
  void stop(const std::string& run_id, py::error_already_set& error) {
    std::lock_guard lock(mutex_);
    if (stopped_.count(run_id) != 0) return;
    stopped_.emplace(run_id, Caught{error.type(), error.value(), error.trace()});
  }
  // Raises the run's interrupt, if it had one (the GIL held).
  void raise_if_stopped(const std::string& run_id) {
    std::optional<Caught> caught;
    {
      std::lock_guard lock(mutex_);
      auto it = stopped_.find(run_id);
      if (it == stopped_.end()) return;
      caught = std::move(it->second);
      stopped_.erase(it);
    }
    PyErr_Restore(caught->type.release().ptr(), caught->value.release().ptr(), caught->trace.release().ptr());
    throw py::error_already_set();
  }

 private:
  struct Caught {
    py::object type, value, trace;
  };
  std::mutex mutex_;
  std::map<std::string, Caught> stopped_;
};

// After a strategy returned (or threw): a pending signal's handler runs (Ctrl-C between two
// provider calls raises KeyboardInterrupt here), and an interrupt a provider caught is raised.
void raise_interrupts(const std::string& run_id) {
  Interrupts::instance().raise_if_stopped(run_id);
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

class PythonProvider : public orch::Provider {
 public:
  explicit PythonProvider(py::object callable)
      : describe_(py::str(py::repr(callable))), callable_(std::move(callable)) {}

  orch::CallResult call(const orch::ProviderRequest& request, std::chrono::milliseconds) override {
    py::gil_scoped_acquire locked;
    Interrupts& interrupts = Interrupts::instance();
    if (interrupts.stopped(request.run_id))
      return orch::CallResult::failure("agent " + request.agent.id + ": not called, the run was interrupted");
    try {
      // A Ctrl-C that came while no Python code ran (the run's own work) is raised here, on
      // the main thread, before the next provider starts.
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      return orch::CallResult::success(reply_from(callable_.get()(request_dict(request))));
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_Exception)) {
        interrupts.stop(request.run_id, e);
        return orch::CallResult::failure("agent " + request.agent.id + ": interrupted (" + python::describe(e) + ")");
      }
      return orch::CallResult::failure("agent " + request.agent.id + ": the Python provider raised " + python::describe(e));
    } catch (const std::exception& e) {
      return orch::CallResult::failure("agent " + request.agent.id + ": the Python provider's reply: " + e.what());
    }
  }
  [[nodiscard]] std::string describe() const override { return "python " + describe_; }

 private:
  std::string describe_;
  GilSafeObject callable_;
};

struct PyRunResult {
  orch::RunResult result;
  std::string run_id;
};

PyRunResult run(Bus& bus, orch::Strategy& strategy, const std::string& input, py::handle run_id,
                std::uint64_t max_steps, double call_timeout, std::uint64_t max_tokens) {
  orch::RunOptions o;
  if (!run_id.is_none()) o.run_id = py::str(run_id);
  o.budget.max_steps = max_steps;
  o.budget.call_timeout = seconds_to_ms(call_timeout, "call_timeout");
  o.budget.max_tokens = max_tokens;
  PyRunResult out;
  try {
    GilReleased unlocked;
    out.result = orch::drive(bus, strategy, input, o, "{}", &out.run_id);
  } catch (...) {
    raise_interrupts(out.run_id);
    throw;
  }
  raise_interrupts(out.run_id);
  return out;
}

PyRunResult resume(Bus& bus, orch::Strategy& strategy, const std::string& run_id) {
  PyRunResult out;
  out.run_id = run_id;
  try {
    GilReleased unlocked;
    out.result = orch::drive_resume(bus, strategy, run_id);
  } catch (...) {
    raise_interrupts(out.run_id);
    throw;
  }
  raise_interrupts(out.run_id);
  return out;
}

}  // namespace

void bind_orchestration(py::module_& m) {
  py::class_<orch::Agent>(m, "Agent", "An agent {id, role, description} whose provider is a Python callable.")
      .def(py::init([](std::string id, std::string role, py::object provider, std::string description) {
             if (!PyCallable_Check(provider.ptr())) throw py::type_error("provider must be callable");
             return orch::Agent{std::move(id), std::move(role), std::move(description),
                                std::make_shared<PythonProvider>(std::move(provider))};
           }),
           py::arg("id"), py::arg("role") = "", py::kw_only(), py::arg("provider"), py::arg("description") = "")
      .def_readonly("id", &orch::Agent::id)
      .def_readonly("role", &orch::Agent::role)
      .def_readonly("description", &orch::Agent::description)
      .def("__repr__", [](const orch::Agent& a) { return "Agent('" + a.id + "')"; });

  py::class_<orch::Strategy>(m, "Strategy", "A deterministic driver of agents (Pipeline, Swarm, Supervisor, Loop).")
      .def_property_readonly("name", [](const orch::Strategy& s) { return std::string(s.name()); });
  py::class_<orch::Pipeline, orch::Strategy>(m, "Pipeline")
      .def(py::init<std::vector<orch::Agent>, std::optional<orch::Agent>>(), py::arg("agents"),
           py::arg("supervisor") = py::none());
  py::class_<orch::Swarm, orch::Strategy>(m, "Swarm")
      .def(py::init<std::vector<orch::Agent>, std::optional<std::string>>(), py::arg("agents"),
           py::arg("entry") = py::none());
  py::class_<orch::Supervisor, orch::Strategy>(m, "Supervisor")
      .def(py::init([](orch::Agent supervisor, std::vector<orch::Agent> workers, std::optional<std::string> strategy,
                       bool auto_delegate, bool refine_task, double task_timeout, std::uint32_t max_revisions,
                       bool supervised) {
             orch::SupervisorOptions o;
             if (strategy) o.strategy = orch::checked_worker_strategy(*strategy);
             o.auto_delegate = auto_delegate;
             o.refine_task = refine_task;
             o.task_timeout = seconds_to_ms(task_timeout, "task_timeout");
             o.max_revisions = max_revisions;
             o.supervised = supervised;
             return std::make_unique<orch::Supervisor>(std::move(supervisor), std::move(workers), o);
           }),
           py::arg("supervisor"), py::arg("workers"), py::kw_only(), py::arg("strategy") = py::none(),
           py::arg("auto_delegate") = false, py::arg("refine_task") = true, py::arg("task_timeout") = 120.0,
           py::arg("max_revisions") = 3, py::arg("supervised") = false);
  py::class_<orch::Loop, orch::Strategy>(m, "Loop")
      .def(py::init<orch::Agent, std::vector<orch::Agent>, std::optional<orch::Agent>, std::uint32_t,
                    std::optional<std::string>>(),
           py::arg("agent"), py::arg("reviewers") = std::vector<orch::Agent>{}, py::kw_only(),
           py::arg("reviewer") = py::none(), py::arg("max_iterations") = 3, py::arg("strategy") = py::none());

  py::class_<PyRunResult>(m, "RunResult")
      .def_readonly("run_id", &PyRunResult::run_id)
      .def_property_readonly("state", [](const PyRunResult& r) { return std::string(orch::to_string(r.result.state)); })
      .def_property_readonly("output", [](const PyRunResult& r) { return r.result.output; })
      .def_property_readonly("error", [](const PyRunResult& r) { return r.result.error; })
      .def_property_readonly("approved", [](const PyRunResult& r) { return r.result.approved; })
      .def_property_readonly("iterations", [](const PyRunResult& r) { return r.result.iterations; })
      .def_property_readonly("stopped", [](const PyRunResult& r) { return r.result.stopped; })
      .def_property_readonly("detail",
                             [](const PyRunResult& r) { return py::module_::import("json").attr("loads")(r.result.detail); })
      .def("__repr__", [](const PyRunResult& r) {
        return "RunResult(run_id='" + r.run_id + "', state='" + std::string(orch::to_string(r.result.state)) + "')";
      });

  m.def("run", &run, py::arg("bus"), py::arg("strategy"), py::arg("input"), py::kw_only(),
        py::arg("run_id") = py::none(), py::arg("max_steps") = 200, py::arg("call_timeout") = 120.0,
        py::arg("max_tokens") = 0,
        "Starts a durable run of the strategy on input and drives it to the end (the GIL is released; "
        "Python providers take it per call). The run's journal is the room runs/<run_id>.");
  m.def("resume", &resume, py::arg("bus"), py::arg("strategy"), py::arg("run_id"),
        "Resumes a run whose driver died, with the strategy it was started with: finished steps are "
        "replayed from the journal, not called again. NotFound, or Conflict when it finished or its "
        "driver lives.");
}

}  // namespace agentbus::python
