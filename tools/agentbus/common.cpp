#include "common.hpp"

#include "output.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <unistd.h>

namespace agentbus::cli {

volatile std::sig_atomic_t g_stop = 0;

namespace {
extern "C" void request_stop(int) { g_stop = 1; }
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

void report_error(std::string_view message) {
  std::fprintf(stderr, "error: %s\n", sanitize_for_terminal(message).c_str());
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

std::string default_repo() {
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  const std::string base = ec ? std::string() : cwd.filename().string();
  std::string repo;
  for (const char ch : base) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      repo += ch;
    } else if ((c & 0xC0) != 0x80) {  // one '-' per character, not per UTF-8 byte
      repo += '-';
    }
  }
  return (repo.empty() || repo == "." || repo == "..") ? "default" : repo;
}

std::string room_name(const Globals& g) {
  std::string name = g.room.empty() ? g.repo + "/" + g.branch : g.room;
  validate_room_name(name);
  return name;
}

std::optional<std::chrono::nanoseconds> parse_duration(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else if (unit == "m") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  if (scale == 0 || !(value >= 0) || value * scale > 1e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(value * scale));
}

RoomOptions room_options(const Globals& g, bool create) {
  RoomOptions options;
  if (g.ring_bytes != 0) {
    options.ring_bytes = g.ring_bytes;
    // A small ring must still accept records: cap them at the library's ring/4 limit.
    options.max_record_bytes = std::min<std::size_t>(options.max_record_bytes, g.ring_bytes / 4);
  }
  options.create = create;
  return options;
}

Bus open_bus(const Globals& g) {
  BusOptions options;
  options.name = g.bus;
  options.group = g.group_access;
  if (g.segment_bytes != 0) options.segment_bytes = g.segment_bytes;
  return Bus::open(options);
}

Room open_room(const Globals& g) { return open_bus(g).room(room_name(g), room_options(g, true)); }

std::optional<Room> open_existing_room(const Globals& g) {
  try {
    BusOptions options;
    options.name = g.bus;
    options.create = false;
    return Bus::open(options).room(room_name(g), room_options(g, false));
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return parse_duration(text) ? "" : "not a duration (e.g. 500ms, 10s, 5m): '" + text + "'";
      },
      "DURATION");
}

CLI::Validator duration_range_validator(std::chrono::milliseconds min, std::chrono::milliseconds max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        const auto d = parse_duration(text);
        if (d && *d >= min && *d <= max) return "";
        return "must be a duration from " + std::to_string(min.count()) + "ms to " +
               std::to_string(max.count() / 3'600'000) + "h, got '" + text + "'";
      },
      "DURATION");
}

std::chrono::milliseconds validated_ms(const std::string& text) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(text).value());
}

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

int session_pid(const Globals& g) { return g.session_pid != 0 ? g.session_pid : static_cast<int>(::getppid()); }

}  // namespace agentbus::cli
