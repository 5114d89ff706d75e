// binding.hpp — what the files of the Python binding share: one bind_* function per concept
// (each file binds one), and the conversions every one of them needs.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/room.hpp>

#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace agentbus::python {

namespace py = pybind11;

void bind_errors(py::module_& m);
void bind_bus(py::module_& m);
void bind_tail(py::module_& m);
void bind_status(py::module_& m);
void bind_tasks(py::module_& m);
void bind_presence(py::module_& m);
void bind_leases(py::module_& m);
void bind_inbox(py::module_& m);
void bind_groups(py::module_& m);
void bind_orchestration(py::module_& m);

// Raises agentbus.BusFull: a publish gave up because a durable reader keeps the ring full.
[[noreturn]] void throw_bus_full(std::string_view room);

// A payload as bytes to publish: a str (its UTF-8, no copy: CPython caches it in the object)
// or bytes. The view lives as long as `payload` does. Anything else is a TypeError.
[[nodiscard]] std::string_view payload_view(py::handle payload);
// An optional text argument: None gives an empty view.
[[nodiscard]] std::string_view optional_text(py::handle text);
// A str argument (never bytes), viewed without a copy.
[[nodiscard]] std::string_view text_view(py::handle text, const char* what);

// Seconds (int or float, as Python's time APIs take them) to a duration; a negative or
// non-finite value is agentbus.InvalidArgument naming `what`. Longer than kMaxSeconds (about
// 31.7 years) counts as kMaxSeconds, and a timeout that long is no bound (optional_seconds).
inline constexpr double kMaxSeconds = 1e9;
[[nodiscard]] std::chrono::milliseconds seconds_to_ms(double seconds, const char* what);
[[nodiscard]] std::chrono::nanoseconds seconds_to_ns(double seconds, const char* what);
[[nodiscard]] double ms_to_seconds(std::chrono::milliseconds ms);
// A timeout argument: None or >= kMaxSeconds (no bound) or seconds; anything else is a
// TypeError naming `what`.
[[nodiscard]] std::optional<std::chrono::nanoseconds> optional_seconds(py::handle seconds, const char* what);

// Bytes from shared memory as a str: UTF-8, with undecodable bytes replaced (payload_bytes
// keeps the exact bytes).
[[nodiscard]] py::str to_str(std::string_view bytes);

// "latest" | "earliest" | an event id (int) -> where a reader starts.
struct StartPoint {
  StartFrom from = StartFrom::latest;
  EventId id = 0;
};
[[nodiscard]] StartPoint start_point(py::handle from);

// Called without the GIL by a thread about to take it back: once the interpreter is finalising,
// a thread taking the GIL is ended with pthread_exit, whose unwinding through the noexcept
// destructor of gil_scoped_release is std::terminate (a daemon thread waiting in a tail at exit
// aborted the process). Such a thread stays here instead until the process ends.
inline void park_if_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  const bool finalizing = Py_IsFinalizing() != 0;
#else
  const bool finalizing = _Py_IsFinalizing() != 0;
#endif
  if (finalizing)
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// The GIL released, as py::gil_scoped_release does, for every call into the bus that may wait.
// A thread that takes it back once the interpreter is finalising is ended by Python with
// pthread_exit; this destructor may throw, so that the forced unwind passes through (pybind11
// lets it through to the thread's start) instead of ending the process in std::terminate.
// (The waits of wait_released() park such a thread instead, so it does not even unwind; the
// finalising thread itself must never park.)
class GilReleased {
 public:
  GilReleased() : state_(PyEval_SaveThread()) {}
  GilReleased(const GilReleased&) = delete;
  GilReleased& operator=(const GilReleased&) = delete;
  ~GilReleased() noexcept(false) { PyEval_RestoreThread(state_); }

 private:
  PyThreadState* state_;
};

// Waits in slices of at most `slice` with the GIL released, checking for signals (Ctrl-C)
// between slices, until `step(remaining)` returns true or `total` runs out (nullopt: no bound).
// `step` is called without the GIL and returns true when it has its result.
template <class Step>
bool wait_released(Step&& step, std::optional<std::chrono::nanoseconds> total,
                   std::chrono::nanoseconds slice = std::chrono::milliseconds(100)) {
  using clock = std::chrono::steady_clock;
  const auto deadline = total ? clock::now() + *total : clock::time_point::max();
  for (;;) {
    const auto now = clock::now();
    const auto left = deadline == clock::time_point::max() ? slice : std::chrono::nanoseconds(deadline - now);
    const auto this_slice = std::max(std::chrono::nanoseconds(0), std::min(slice, left));
    bool done = false;
    {
      GilReleased unlocked;
      done = step(this_slice);
      park_if_finalizing();
    }
    if (done) return true;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (clock::now() >= deadline) return false;
  }
}

// A Python object that may be dropped on a thread that does not hold the GIL (a C++ callback's
// or provider's last copy dies wherever the C++ side lets go of it): takes the GIL to drop it.
class GilSafeObject {
 public:
  explicit GilSafeObject(py::object object) : object_(new py::object(std::move(object))) {}
  GilSafeObject(const GilSafeObject&) = delete;
  GilSafeObject& operator=(const GilSafeObject&) = delete;
  ~GilSafeObject() {
    if (Py_IsInitialized() == 0) {
      (void)object_.release();  // the interpreter is gone: leak rather than touch it
      return;
    }
    py::gil_scoped_acquire locked;
    object_.reset();
  }
  // Call with the GIL held.
  [[nodiscard]] const py::object& get() const noexcept { return *object_; }

 private:
  std::unique_ptr<py::object> object_;
};

// The text of the Python exception being handled (with the GIL held), for a C++ report.
[[nodiscard]] std::string describe(const py::error_already_set& error);

}  // namespace agentbus::python
