// The exception hierarchy: agentbus.Error, one subclass per agentbus::Errc (error.hpp), each
// also a subclass of the built-in exception a Python user would catch for it (NotFound is a
// LookupError, Timeout a TimeoutError, ...), plus BusFull for a publish that gave up.
// A C++ agentbus::Error raised anywhere under a binding call arrives as its class, with the
// C++ message and `code` (the Errc's name).
#include "binding.hpp"

#include <agentbus/error.hpp>
#include <agentbus/orchestration/run.hpp>

#include <array>

namespace agentbus::python {

namespace {

struct ErrorClass {
  Errc code;
  const char* name;
  const char* code_name;
  PyObject* builtin;  // a second base; nullptr for none
  const char* doc;
};

PyObject* g_classes[16] = {};  // by Errc
PyObject* g_base = nullptr;
PyObject* g_budget = nullptr;

PyObject* new_class(py::module_& m, const char* name, PyObject* bases, const char* doc) {
  const std::string qualified = std::string("agentbus.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (cls == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(cls));  // the module holds the reference
  return cls;
}

}  // namespace

void bind_errors(py::module_& m) {
  PyObject* base = new_class(m, "Error", PyExc_Exception,
                             "Base of every agentbus error; `code` names the C++ error code.");
  PyObject_SetAttrString(base, "code", py::str("error").ptr());
  const std::array<ErrorClass, 12> classes{{
      {Errc::bad_name, "BadName", "bad_name", PyExc_ValueError, "A bus, room, reader or agent name outside the grammar."},
      {Errc::too_large, "TooLarge", "too_large", PyExc_ValueError, "A payload or field longer than the limit."},
      {Errc::incompatible, "Incompatible", "incompatible", nullptr, "A segment of another layout or size."},
      {Errc::corrupt, "Corrupt", "corrupt", nullptr, "Shared memory that fails validation."},
      {Errc::no_space, "NoSpace", "no_space", nullptr, "A table, inbox or segment is full."},
      {Errc::not_found, "NotFound", "not_found", PyExc_LookupError, "No such bus, room, task, key, lease, group or agent."},
      {Errc::timeout, "Timeout", "timeout", PyExc_TimeoutError, "A bounded wait ran out."},
      {Errc::system, "SystemFailure", "system", PyExc_OSError, "An OS call failed."},
      {Errc::invalid_argument, "InvalidArgument", "invalid_argument", PyExc_ValueError, "Any other misuse of the API."},
      {Errc::conflict, "Conflict", "conflict", nullptr, "Lost a race, or a stale fencing token."},
      {Errc::expired, "Expired", "expired", nullptr, "It existed, but its time to live has passed."},
      {Errc::unavailable, "Unavailable", "unavailable", nullptr, "A process this call needs (the bridge) is not answering."},
  }};
  for (const ErrorClass& c : classes) {
    py::tuple bases = c.builtin != nullptr ? py::make_tuple(py::handle(base), py::handle(c.builtin))
                                           : py::make_tuple(py::handle(base));
    PyObject* cls = new_class(m, c.name, bases.ptr(), c.doc);
    PyObject_SetAttrString(cls, "code", py::str(c.code_name).ptr());
    g_classes[static_cast<int>(c.code)] = cls;
  }
  PyObject* bus_full = new_class(m, "BusFull", base,
                                 "A publish gave up: a durable reader keeps the ring full; nothing was published.");
  PyObject_SetAttrString(bus_full, "code", py::str("bus_full").ptr());
  PyObject* budget = new_class(m, "BudgetExceeded", base, "A run's budget (steps, time, tokens) ran out.");
  PyObject_SetAttrString(budget, "code", py::str("budget_exceeded").ptr());

  g_base = base;
  g_budget = budget;
  // A plain function (pybind11 takes no captures): the classes are globals, set once at import.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* cls = g_classes[static_cast<int>(e.code())];
      PyErr_SetString(cls != nullptr ? cls : g_base, e.what());
    } catch (const orchestration::BudgetExceeded& e) {
      PyErr_SetString(g_budget, e.what());
    }
  });
}

}  // namespace agentbus::python
