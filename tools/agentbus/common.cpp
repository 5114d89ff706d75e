#include "common.hpp"

#include <atomic>

#include "output.hpp"
#include "session.hpp"

#include <agentbus/process.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <system_error>
#include <unistd.h>

namespace agentbus::cli {

std::atomic<int> g_stop{0};
static_assert(std::atomic<int>::is_always_lock_free, "g_stop is set in a signal handler");

namespace {
extern "C" void request_stop(int) { g_stop.store(1, std::memory_order_relaxed); }
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = request_stop;  // no SA_RESTART: let a blocked wait return early
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void write_out(std::string_view text, bool flush) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() ||
      (flush && std::fflush(stdout) != 0)) {
    if (errno == EPIPE) throw StdoutClosed{};
    throw std::system_error(errno, std::generic_category(), "cannot write to stdout");
  }
}

std::string read_all_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

void report_error(std::string_view message) {
  std::fprintf(stderr, "error: %s\n", sanitize_for_terminal(message).c_str());
}

void report_warning(std::string_view message) {
  std::fprintf(stderr, "warning: %s\n", sanitize_for_terminal(message).c_str());
}

void warn_overrun(std::uint64_t missed) {
  std::fprintf(stderr, "warning: lapped by producers, %llu events missed\n",
               static_cast<unsigned long long>(missed));
}

void warn_unreadable(std::string_view room, std::uint64_t records) {
  if (records == 0) return;
  std::fprintf(stderr, "warning: room %.*s: skipped %llu unreadable record%s (corrupt or never "
               "written); the events after them are shown\n",
               static_cast<int>(room.size()), room.data(), static_cast<unsigned long long>(records),
               records == 1 ? "" : "s");
}

bool DestroyedBusCheck::reported(std::string_view bus) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) return false;
  next_ = now + std::chrono::milliseconds(250);
  if (!room_.bus_destroyed()) return false;
  report_error("bus " + std::string(bus) + " was destroyed while following room " + room_.name() +
               "; nothing more will arrive");
  return true;
}

std::string default_repo() {
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  // The repository's name, so every subdirectory of it shares one room (and the same root
  // that `path:` leases resolve against).
  return repo_name_from_dir(ec ? std::string() : repository_root(cwd).filename().string());
}

std::string room_name(const Globals& g) {
  std::string name = g.room.empty() ? g.repo + "/" + g.branch : g.room;
  validate_room_name(name);
  return name;
}

RoomOptions room_options(const Globals& g, bool create) {
  RoomOptions options;
  // Without --max-record-bytes the library's default applies: 64 KiB, or ring/4 if less.
  if (g.ring_bytes != 0) options.ring_bytes = g.ring_bytes;
  if (g.max_record_bytes != 0) {
    options.max_record_bytes = g.max_record_bytes;
    // Without --ring-bytes, a ring large enough for four such records (the library's ratio).
    if (g.ring_bytes == 0) options.ring_bytes = std::max(options.ring_bytes, std::bit_ceil(4 * g.max_record_bytes));
  }
  options.create = create;
  return options;
}

std::optional<std::string> room_size_problem(const Globals& g) {
  if (g.max_record_bytes == 0) return std::nullopt;
  if (g.max_record_bytes < kMinRecordBytes || g.max_record_bytes > kMaxRecordBytes)
    return "--max-record-bytes must be from 256B to 32MiB, got " + std::to_string(g.max_record_bytes);
  if (g.ring_bytes != 0 && g.max_record_bytes > g.ring_bytes / 4)
    return "--max-record-bytes " + human_bytes(g.max_record_bytes) + " is more than a quarter of --ring-bytes " +
           human_bytes(g.ring_bytes) + "; give a ring at least 4 times the record size (or leave --ring-bytes out)";
  return std::nullopt;
}

namespace {
// Sizes are fixed when a room is created; asking for others later must not pass silently.
void warn_ignored_sizes(const Globals& g, const Room& room) {
  if (g.ring_bytes == 0 && g.max_record_bytes == 0) return;
  const RoomInfo info = room.info();
  const bool ring_differs = g.ring_bytes != 0 && info.ring_bytes != g.ring_bytes;
  const bool record_differs = g.max_record_bytes != 0 && info.max_record_bytes != g.max_record_bytes;
  if (!ring_differs && !record_differs) return;
  report_warning("room " + room.name() + " already exists with a " + human_bytes(info.ring_bytes) +
                 " ring and records up to " + human_bytes(info.max_record_bytes) + "; " +
                 (ring_differs ? "--ring-bytes" : "") + (ring_differs && record_differs ? " and " : "") +
                 (record_differs ? "--max-record-bytes" : "") +
                 " ignored (sizes are fixed when a room is created; use a new --room for other sizes)");
}
}  // namespace

Bus open_bus(const Globals& g) {
  BusOptions options;
  options.name = g.bus;
  options.group = g.group_access;
  if (g.segment_bytes != 0) options.segment_bytes = g.segment_bytes;
  return Bus::open(options);
}

Room open_room(const Globals& g) {
  Room room = open_bus(g).room(room_name(g), room_options(g, true));
  warn_ignored_sizes(g, room);
  return room;
}

std::optional<Room> open_existing_room(const Globals& g) {
  BusOptions options;
  options.name = g.bus;
  options.create = false;
  // No bus at all is an error (exit 4), as `info` says: it is usually a mistyped --bus or
  // $AGENTBUS_BUS, and an empty answer would hide that. A room nobody posted to is just empty.
  Bus bus = Bus::open(options);
  try {
    Room room = bus.room(room_name(g), room_options(g, false));
    warn_ignored_sizes(g, room);
    return room;
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

namespace {

using std::chrono::milliseconds;

struct DurationUnit {
  std::string_view name;
  std::int64_t ms;
};
// Largest first: a duration names its parts in this order. "ms" before "m" when matching.
constexpr DurationUnit kUnits[] = {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}};
// Far past every cap, and small enough that nanoseconds of it still fit in 64 bits.
constexpr std::int64_t kSaturatedMs = std::int64_t{1} << 40;

constexpr const char* kDurationGrammar = "a number with a unit: ms, s, m, h or d, e.g. 500ms, 90s, 10m, 1h30m";

std::string duration_problem(const std::string& text, milliseconds min, milliseconds max, bool forever_ok) {
  const std::string shown = sanitize_for_terminal(text);
  if (forever_ok && text == kForever) return "";
  const std::optional<milliseconds> d = parse_duration(text);
  if (!d) {
    // Is "5" seconds or minutes? Nobody should have to guess: say what to write instead.
    if (parse_decimal(text)) return "'" + shown + "' has no unit: write e.g. " + shown + "s or " + shown + "m (units ms, s, m, h, d)";
    return "not a duration: '" + shown + "' (" + kDurationGrammar + ")";
  }
  if (*d < min || *d > max) {
    std::string why = "must be a duration from " + format_duration(min) + " to " + format_duration(max) +
                      (forever_ok ? ", or forever" : "") + ", got '" + shown + "'";
    if (d->count() == 0 && forever_ok) why += " (no expiry is spelled forever)";
    return why;
  }
  return "";
}

}  // namespace

std::optional<milliseconds> parse_duration(std::string_view text) {
  if (text == "0") return milliseconds(0);
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index into kUnits: parts must come largest first, once each
  while (!text.empty()) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0) return std::nullopt;
    std::int64_t value = 0;
    for (std::size_t i = 0; i < digits; ++i) value = std::min(kSaturatedMs, value * 10 + (text[i] - '0'));
    text.remove_prefix(digits);
    std::size_t unit = next_unit;
    // "ms" must be tried before "m", which is its prefix.
    const auto matches = [&](std::size_t u) {
      return text.substr(0, kUnits[u].name.size()) == kUnits[u].name &&
             !(kUnits[u].name == "m" && text.substr(0, 2) == "ms");
    };
    while (unit < std::size(kUnits) && !matches(unit)) ++unit;
    if (unit == std::size(kUnits)) return std::nullopt;
    text.remove_prefix(kUnits[unit].name.size());
    next_unit = unit + 1;
    const std::int64_t part = value > kSaturatedMs / kUnits[unit].ms ? kSaturatedMs : value * kUnits[unit].ms;
    total = std::min(kSaturatedMs, total + part);
  }
  return milliseconds(total);
}

std::string format_duration(milliseconds d) {
  if (d.count() <= 0) return "0";
  std::string out;
  std::int64_t left = d.count();
  for (const DurationUnit& u : kUnits) {
    if (u.name == "d") continue;  // "24h" reads better than "1d" in a range
    if (left >= u.ms) {
      out += std::to_string(left / u.ms) + std::string(u.name);
      left %= u.ms;
    }
  }
  return out;
}

CLI::Validator duration_validator(milliseconds min, milliseconds max, bool forever_ok) {
  max = std::min(max, kMaxDuration);
  return CLI::Validator(
      [min, max, forever_ok](std::string& text) { return duration_problem(text, min, max, forever_ok); },
      forever_ok ? "DURATION|forever" : "DURATION");
}

std::optional<milliseconds> validated_duration(const std::string& text) {
  if (text == kForever) return std::nullopt;
  return parse_duration(text).value();
}

milliseconds validated_ms(const std::string& text) { return parse_duration(text).value(); }

std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;  // value * 10 + digit would pass max
    value = value * 10 + digit;
  }
  return value;
}

CLI::Validator id_validator(std::uint64_t max, std::uint64_t min) {
  return CLI::Validator(
      [max, min](std::string& text) -> std::string {
        if (const auto v = parse_decimal(text, max); v && *v >= min) return "";
        return "must be decimal digits only, " + std::to_string(min) + " to " + std::to_string(max) + ", got '" +
               sanitize_for_terminal(text) + "'";
      },
      "ID");
}

CLI::Validator token_validator() { return id_validator(UINT32_MAX); }

CLI::Validator power_of_two_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::uint64_t v = std::stoull(text);  // AsSizeValue has made it a number
        return (v != 0 && (v & (v - 1)) == 0) ? "" : "must be a power of two, e.g. 1MiB";
      },
      "");
}

void touch_presence(Room& room, std::string_view agent) {
  try {
    PresenceOptions options;
    options.create = false;
    (void)Presence(room, options).refresh(agent);
  } catch (const Error& e) {
    if (e.code() != Errc::not_found && e.code() != Errc::bad_name) throw;
  }
}

int session_pid(const Globals& g) {
  if (g.session_pid != 0) {
    // Checked here, not only by the library, so the message names the option to fix.
    if (!process_running(g.session_pid))
      throw Error(Errc::invalid_argument, "--session-pid / $AGENTBUS_SESSION_PID " + std::to_string(g.session_pid) +
                                              " is not a running process");
    return g.session_pid;
  }
  static const int resolved = resolve_session(static_cast<int>(::getppid())).pid;
  return resolved;
}

}  // namespace agentbus::cli
