#include "shm/failpoint.hpp"

#include <array>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>

namespace agentbus::shm {
namespace {

enum class Action { none, exit, kill, stop, sleep };

struct Config {
  Action action = Action::none;
  unsigned on_hit = 0;  // 0: every hit
  unsigned sleep_ms = 0;
  std::atomic<unsigned> hits{0};
};

constexpr std::size_t kCount = static_cast<std::size_t>(Failpoint::count_);
constexpr std::array<std::string_view, kCount> kNames{"before_stamp",      "after_claim",
                                                      "before_commit",     "scratch_mid_write",
                                                      "group_before_receipt", "group_before_ack",
                                                      "group_mid_dispatch", "group_mid_reclaim",
                                                      "claim_after_cas",   "claim_mid_write",
                                                      "claim_before_ready", "bridge_after_ship",
                                                      "bridge_after_spool_write", "bridge_after_spool_shipped",
                                                      "bridge_after_import_publish", "exclusive_before_write",
                                                      "exclusive_before_commit", "exclusive_before_tail"};
std::array<Config, kCount> configs;

bool parse(std::string_view rest) {
  for (Config& c : configs) {
    c.action = Action::none;
    c.on_hit = 0;
    c.hits.store(0, std::memory_order_relaxed);
  }
  bool any = false;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = item.substr(0, eq), action = item.substr(eq + 1);
    unsigned on_hit = 0;
    if (auto at = name.find('@'); at != std::string_view::npos) {
      on_hit = static_cast<unsigned>(std::strtoul(std::string(name.substr(at + 1)).c_str(), nullptr, 10));
      name = name.substr(0, at);
    }
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      if (kNames[i] != name) continue;
      Config& c = configs[i];
      c.on_hit = on_hit;
      if (action == "exit") c.action = Action::exit;
      else if (action == "kill") c.action = Action::kill;
      else if (action == "stop") c.action = Action::stop;
      else if (action.starts_with("sleep:")) {
        c.action = Action::sleep;
        c.sleep_ms = static_cast<unsigned>(std::strtoul(std::string(action.substr(6)).c_str(), nullptr, 10));
      }
      any = any || c.action != Action::none;
    }
  }
  return any;
}

}  // namespace

namespace detail {

std::atomic<bool> failpoints_armed{[] {
  const char* env = std::getenv("AGENTBUS_FAILPOINTS");
  return env != nullptr && parse(env);
}()};

void failpoint_hit(Failpoint point) noexcept {
  Config& c = configs[static_cast<std::size_t>(point)];
  unsigned hit = c.hits.fetch_add(1, std::memory_order_relaxed) + 1;
  if (c.on_hit != 0 && hit != c.on_hit) return;
  switch (c.action) {
    case Action::none: return;
    case Action::exit: ::_exit(137);
    case Action::kill: ::kill(::getpid(), SIGKILL); ::pause(); return;
    case Action::stop: ::kill(::getpid(), SIGSTOP); return;
    case Action::sleep: std::this_thread::sleep_for(std::chrono::milliseconds(c.sleep_ms)); return;
  }
}

}  // namespace detail

void set_failpoints(std::string_view spec) {
  detail::failpoints_armed.store(parse(spec), std::memory_order_relaxed);
}

}  // namespace agentbus::shm
