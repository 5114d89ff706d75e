// agentbus._agentbus: the compiled part of the Python package (python/agentbus/__init__.py
// re-exports it and adds the async iterators). docs/python.md describes the API.
#include "binding.hpp"

PYBIND11_MODULE(_agentbus, m) {
  using namespace agentbus::python;
  m.doc() = "agentbus: a lock-free shared-memory bus for AI agents (compiled core)";
  bind_errors(m);  // first: the translators the others' calls raise through
  bind_bus(m);
  bind_tail(m);
  bind_status(m);
  bind_tasks(m);
  bind_presence(m);
  bind_leases(m);
  bind_inbox(m);
  bind_groups(m);
  bind_orchestration(m);
}
