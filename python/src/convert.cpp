// Conversions between Python values and the library's arguments (binding.hpp).
#include "binding.hpp"

#include <agentbus/error.hpp>

#include <cmath>

namespace agentbus::python {

void throw_bus_full(std::string_view room) {
  static const py::handle bus_full = py::module_::import("agentbus._agentbus").attr("BusFull");
  const std::string message = "room '" + std::string(room) +
                              "' is full: a durable reader is behind (nothing was published; "
                              "drain or drop it, `agentbus info` names it)";
  PyErr_SetString(bus_full.ptr(), message.c_str());
  throw py::error_already_set();
}

std::string_view payload_view(py::handle payload) {
  PyObject* p = payload.ptr();
  if (PyUnicode_Check(p)) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(p, &size);
    if (data == nullptr) throw py::error_already_set();
    return {data, static_cast<std::size_t>(size)};
  }
  if (PyBytes_Check(p)) return {PyBytes_AS_STRING(p), static_cast<std::size_t>(PyBytes_GET_SIZE(p))};
  throw py::type_error("a payload is str or bytes, not " + std::string(Py_TYPE(p)->tp_name));
}

std::string_view text_view(py::handle text, const char* what) {
  PyObject* p = text.ptr();
  if (!PyUnicode_Check(p))
    throw py::type_error(std::string(what) + " must be a str, not " + Py_TYPE(p)->tp_name);
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(p, &size);
  if (data == nullptr) throw py::error_already_set();
  return {data, static_cast<std::size_t>(size)};
}

std::string_view optional_text(py::handle text) {
  if (text.is_none()) return {};
  return text_view(text, "the argument");
}

namespace {

// Checked, then clamped to kMaxSeconds: past ~9.2e9 s a count of nanoseconds no longer fits
// an int64 (llround overflows, to a negative count on x86), and a deadline `now + d` must not
// overflow either.
double checked_seconds(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds < 0)
    throw Error(Errc::invalid_argument, std::string(what) + " must be a finite number of seconds >= 0");
  return std::min(seconds, kMaxSeconds);
}

}  // namespace

std::chrono::milliseconds seconds_to_ms(double seconds, const char* what) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(checked_seconds(seconds, what) * 1e3)));
}

std::chrono::nanoseconds seconds_to_ns(double seconds, const char* what) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(checked_seconds(seconds, what) * 1e9)));
}

std::optional<std::chrono::nanoseconds> optional_seconds(py::handle seconds, const char* what) {
  if (seconds.is_none()) return std::nullopt;
  PyObject* p = seconds.ptr();
  if (PyBool_Check(p) || !(PyFloat_Check(p) || PyLong_Check(p)))
    throw py::type_error(std::string(what) + " is a number of seconds or None, not " + Py_TYPE(p)->tp_name);
  const double s = PyFloat_AsDouble(p);  // an int too large for a double raises OverflowError
  if (s == -1.0 && PyErr_Occurred() != nullptr) throw py::error_already_set();
  // A wait as long as the longest time we can count is no bound at all.
  if (std::isfinite(s) && s >= kMaxSeconds) return std::nullopt;
  return seconds_to_ns(s, what);
}

double ms_to_seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1e3; }

py::str to_str(std::string_view bytes) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "replace");
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

StartPoint start_point(py::handle from) {
  if (PyUnicode_Check(from.ptr())) {
    const std::string_view s = text_view(from, "from_");
    if (s == "latest") return {StartFrom::latest, 0};
    if (s == "earliest") return {StartFrom::earliest, 0};
    throw Error(Errc::invalid_argument, "from_ is \"latest\", \"earliest\" or an event id, not \"" +
                                            std::string(s.substr(0, 64)) + "\"");
  }
  if (PyLong_Check(from.ptr()) && !PyBool_Check(from.ptr())) {
    const auto id = from.cast<long long>();
    if (id < 0) throw Error(Errc::invalid_argument, "from_ must be an event id >= 0");
    return {StartFrom::id, static_cast<EventId>(id)};
  }
  throw py::type_error("from_ is \"latest\", \"earliest\" or an event id (int)");
}

std::string describe(const py::error_already_set& error) { return error.what(); }

}  // namespace agentbus::python
