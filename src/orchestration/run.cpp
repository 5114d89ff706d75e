// run.cpp — a run's steps as events: start, resume, call-or-replay, effects, finish.
#include <agentbus/error.hpp>
#include <agentbus/clock.hpp>
#include <agentbus/inbox.hpp>
#include <agentbus/names.hpp>
#include <agentbus/orchestration/delegation.hpp>
#include <agentbus/orchestration/protocol.hpp>
#include <agentbus/orchestration/run.hpp>
#include <agentbus/process.hpp>
#include <agentbus/status_bus.hpp>

#include "orchestration/delegation_state.hpp"
#include "orchestration/json_object.hpp"
#include "orchestration/protocol_dom.hpp"
#include "orchestration/run_failpoint.hpp"
#include "orchestration/run_journal.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <unistd.h>

namespace agentbus::orchestration {

namespace {

std::string driver_members(std::string_view run_id) {
  const auto st = read_process_stat(::getpid());
  return json::members_of(json::ObjectWriter()
                        .str("run", run_id)
                        .num("pid", std::uint64_t(::getpid()))
                        .num("pid_start", st ? st->start_time : 0)
                        .finish());
}

std::string usage_json(const Usage& u) {
  return json::ObjectWriter().num("input_tokens", u.input_tokens).num("output_tokens", u.output_tokens).finish();
}

RoomOptions run_room_options(const RunOptions& o, bool create) {
  RoomOptions r;
  r.ring_bytes = o.ring_bytes;
  r.create = create;
  return r;
}

}  // namespace

void run_failpoint(std::string_view point, std::uint64_t step) noexcept {
  static const char* spec = std::getenv("AGENTBUS_RUN_FAILPOINT");
  if (!spec) return;
  const std::string_view s(spec);
  const auto at = s.find('@');
  if (at == std::string_view::npos || s.substr(0, at) != point) return;
  if (s.substr(at + 1) == std::to_string(step)) ::kill(::getpid(), SIGKILL);
}

std::string_view to_string(RunState state) noexcept {
  switch (state) {
    case RunState::running: return "running";
    case RunState::completed: return "completed";
    case RunState::failed: return "failed";
    case RunState::budget_exceeded: return "budget_exceeded";
  }
  return "unknown";
}

void validate_run_id(std::string_view id) {
  if (id.empty() || id.size() > 64) throw Error(Errc::bad_name, "a run id is 1..64 bytes, got " + std::to_string(id.size()));
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      throw Error(Errc::bad_name, "run id '" + std::string(id) + "' may contain only [A-Za-z0-9._-]");
  if (id == "." || id == "..") throw Error(Errc::bad_name, "run id may not be '.' or '..'");
}

struct Run::Impl {
  Bus bus;
  Room room;
  std::string id, strategy, input, spec;
  RunBudget budget;
  bool resumed = false;
  std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> calls{0};
  mutable std::mutex mutex;
  RunJournal journal;
  std::map<std::string, Usage> usage;
  StatusBus status;
  std::mutex inbox_mutex;      // one reader of the agents' inboxes at a time (fan-out)
  std::optional<Inbox> inbox;  // the run room's, once a worker has created it

  Impl(Bus b, Room r) : bus(std::move(b)), room(r), status(r) {}

  void add_usage(const std::string& agent, const Usage& u) {
    std::lock_guard lock(mutex);
    auto& a = usage[agent];
    a.input_tokens += u.input_tokens;
    a.output_tokens += u.output_tokens;
  }
};

namespace {

constexpr std::string_view kDelegationResults = "DELEGATION_RESULTS";
// Room in a journal record for its fields and tags beside the results.
constexpr std::size_t kJournalHeadroom = 1024;

// Results of tasks `agent` delegated (TASK_RESULT messages in its inbox in the run's room,
// docs/delegation.md) join the prompt of its next call, as user messages. They are journaled
// (DELEGATION_RESULTS, with the inbox position) before they are acknowledged, so a call made
// again after a crash gets the same ones. Only the leading TASK_RESULT messages are taken: the
// inbox cursor cannot skip a message meant for the agent itself to read.
void add_delegation_results(Run& run, Run::Impl& impl, std::uint64_t step, const std::string& agent, ProviderRequest& request) {
  std::vector<std::string> results;
  std::uint64_t upto = 0;
  std::lock_guard lock(impl.inbox_mutex);
  if (!impl.inbox) impl.inbox = Inbox::find(impl.room);
  if (const auto payload = run.recorded(kDelegationResults, step)) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::object obj;
    simdjson::dom::array list;
    std::string why;
    if (!json::parse_object(parser, *payload, obj, why) || !json::get_uint(obj, "upto", upto, true, why) || obj["results"].get(list))
      throw Error(Errc::corrupt, "run '" + run.id() + "': the journaled delegation results of step " + std::to_string(step) +
                                     " are unreadable: " + (why.empty() ? "no \"results\"" : why));
    for (simdjson::dom::element e : list) {
      std::string_view text;
      if (!e.get_string().get(text)) results.emplace_back(text);
    }
  } else {
    if (!impl.inbox) return;
    // The journal event must fit one record of the run room: results past that wait in the
    // inbox for the agent's next call, and a first one too long alone is cut to fit.
    const std::vector<InboxMessage> pending = impl.inbox->read(agent, 64);
    if (pending.empty() || pending.front().type != kTaskResultEvent) return;  // the usual step: no info() read
    const std::size_t room_left = impl.room.info().max_record_bytes;
    const std::size_t budget = room_left > kJournalHeadroom + 64 ? room_left - kJournalHeadroom : 64;
    std::string list = "[";
    for (const InboxMessage& m : pending) {
      if (m.type != kTaskResultEvent) break;
      std::string quoted = util::json_string(m.payload);
      std::string text = m.payload;
      if (results.empty() && quoted.size() + 2 > budget) {
        // Escaping at most sextuples a byte: a sixth of the budget, less the note, always fits.
        const std::size_t keep = budget > 256 ? (budget - 128) / 6 : 16;
        text = cap_utf8(m.payload, m.payload.size(), keep) + " [cut: longer than a record of the run room]";
        quoted = util::json_string(text);
      }
      if (list.size() + quoted.size() + 2 > budget) break;
      if (!results.empty()) list.push_back(',');
      list += quoted;
      results.push_back(std::move(text));
      upto = m.seq;
    }
    if (results.empty()) return;
    list.push_back(']');
    (void)run.record(kDelegationResults, step, agent, json::members_of(json::ObjectWriter().str("agent", agent).num("upto", upto).raw("results", list).finish()));
  }
  if (impl.inbox && upto > 0) (void)impl.inbox->ack(agent, upto);
  for (auto& r : results) request.messages.push_back({"user", "", std::move(r)});
}

}  // namespace

Run::Run(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Run Run::start(Bus& bus, std::string_view strategy, std::string_view input, std::string_view spec_json, const RunOptions& options) {
  std::string id = options.run_id;
  if (id.empty()) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "r-%llx-%d", static_cast<unsigned long long>(realtime_ns() / 1'000'000), ::getpid());
    id = buf;
  }
  validate_run_id(id);
  auto impl = std::make_shared<Impl>(bus, bus.room(std::string(kRunRoomPrefix) + id, run_room_options(options, true)));
  impl->journal = read_journal(impl->room, id);
  if (impl->journal.started)
    throw Error(Errc::conflict, "run '" + id + "' exists already; resume it with `agentbus run --resume " + id + "`");
  impl->id = id;
  impl->strategy = strategy;
  impl->input = input;
  impl->spec = spec_json.empty() ? "{}" : std::string(spec_json);
  impl->budget = options.budget;
  const std::string payload = "{" + driver_members(id) + "," +
                              json::members_of(json::ObjectWriter().str("strategy", strategy).str("input", input).raw("spec", impl->spec).finish()) + "}";
  const PublishResult started = impl->room.publish("RUN_STARTED", "orchestration", payload);
  if (!started.ok()) throw Error(Errc::no_space, "run room '" + impl->room.name() + "' is full");
  // Two drivers may start one run id at once: the first RUN_STARTED on the log wins.
  const RunJournal after = read_journal(impl->room, id);
  if (after.drivers.empty() || after.drivers.front().id != started.id)
    throw Error(Errc::conflict, "run '" + id + "' was started by another process at the same time");
  impl->status.post("run", "run " + id, StatusLevel::pending, std::string(strategy) + " started");
  return Run(std::move(impl));
}

Run Run::resume(Bus& bus, std::string_view run_id, const RunOptions& options) {
  validate_run_id(run_id);
  const std::string id(run_id);
  std::optional<Room> room;
  try {
    room = bus.room(std::string(kRunRoomPrefix) + id, run_room_options(options, false));
  } catch (const Error& e) {
    if (e.code() != Errc::not_found) throw;
    throw Error(Errc::not_found, "no run '" + id + "' on bus '" + bus.name() + "' (see `agentbus runs`)");
  }
  auto impl = std::make_shared<Impl>(bus, *room);
  impl->journal = read_journal(impl->room, id);
  auto& j = impl->journal;
  if (!j.started)
    throw Error(Errc::not_found, "run '" + id + "' has no RUN_STARTED event left in its room (overwritten?); it cannot be resumed");
  if (j.finished) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::object obj;
    std::string why, state = "finished";
    if (json::parse_object(parser, *j.finished, obj, why)) json::get_string(obj, "state", state, false, why);
    throw Error(Errc::conflict, "run '" + id + "' has already finished (" + state + ")");
  }
  if (const auto live = live_driver(j, ::getpid()))
    throw Error(Errc::conflict, "run '" + id + "' is being driven by process " + std::to_string(live->pid) +
                                    " (still alive); stop it before resuming");
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string why;
  if (!json::parse_object(parser, *j.started, obj, why) || !json::get_string(obj, "strategy", impl->strategy, true, why) ||
      !json::get_string(obj, "input", impl->input, true, why))
    throw Error(Errc::corrupt, "run '" + id + "': its RUN_STARTED event is unreadable: " + why);
  simdjson::dom::element spec;
  impl->spec = obj["spec"].get(spec) ? "{}" : simdjson::minify(spec);
  impl->id = id;
  impl->budget = options.budget;
  impl->resumed = true;
  // Two processes may resume at once: of the records after the previous driver's, the first
  // on the log wins, and the others step back before calling anyone.
  const EventId previous = j.drivers.empty() ? 0 : j.drivers.back().id;
  const PublishResult resumed = impl->room.publish("RUN_RESUMED", "orchestration", "{" + driver_members(id) + "}");
  if (!resumed.ok()) throw Error(Errc::no_space, "run room '" + impl->room.name() + "' is full");
  for (const DriverRecord& d : read_journal(impl->room, id).drivers)
    if (d.id > previous && d.id < resumed.id && driver_alive(d.pid, d.start_time))
      throw Error(Errc::conflict, "run '" + id + "' is being resumed by process " + std::to_string(d.pid));
  impl->status.post("run", "run " + id, StatusLevel::info, "resumed after " + std::to_string(j.outcomes) + " finished steps");
  return Run(std::move(impl));
}

const std::string& Run::id() const noexcept { return impl_->id; }
const std::string& Run::strategy() const noexcept { return impl_->strategy; }
const std::string& Run::input() const noexcept { return impl_->input; }
const std::string& Run::spec() const noexcept { return impl_->spec; }
Room& Run::room() noexcept { return impl_->room; }
Bus& Run::bus() noexcept { return impl_->bus; }
bool Run::resumed() const noexcept { return impl_->resumed; }
std::uint64_t Run::calls_made() const noexcept { return impl_->calls.load(); }

std::uint64_t Run::reserve_steps(std::uint64_t n) {
  const std::uint64_t first = impl_->next.fetch_add(n);
  if (first + n > impl_->budget.max_steps)
    throw BudgetExceeded("step limit reached: " + std::to_string(impl_->budget.max_steps) + " steps (max_steps), " +
                         std::to_string(first) + " taken");
  if (impl_->budget.wall_clock.count() > 0) {
    const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - impl_->began);
    if (spent > impl_->budget.wall_clock)
      throw BudgetExceeded("wall-clock limit reached: " + std::to_string(spent.count()) + " ms spent, limit " +
                           std::to_string(impl_->budget.wall_clock.count()) + " ms");
  }
  if (impl_->budget.max_tokens > 0) {
    const Usage u = usage_total();
    const std::uint64_t used = u.input_tokens + u.output_tokens;
    if (used >= impl_->budget.max_tokens)
      throw BudgetExceeded("token limit reached: " + std::to_string(used) + " tokens used (" + std::to_string(u.input_tokens) +
                           " in, " + std::to_string(u.output_tokens) + " out), limit " + std::to_string(impl_->budget.max_tokens));
  }
  return first;
}

std::uint64_t Run::next_step() { return reserve_steps(1); }

void Run::set_budget(const RunBudget& budget) { impl_->budget = budget; }

std::string Run::tags(std::uint64_t step, std::string_view key) const {
  json::ObjectWriter w;
  w.str("run", impl_->id).num("step", step);
  if (!key.empty()) w.str("key", key);
  return json::members_of(w.finish());
}

std::optional<std::string> Run::recorded(std::string_view type, std::uint64_t step, std::string_view key) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->journal.entries.find(journal_key(type, step, key));
  if (it == impl_->journal.entries.end()) return std::nullopt;
  return it->second;
}

bool Run::record(std::string_view type, std::uint64_t step, std::string_view agent, std::string_view members, std::string_view key) {
  const std::string k = journal_key(type, step, key);
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->journal.entries.count(k)) return false;
  }
  std::string payload = json::ObjectWriter().members(tags(step, key)).members(members).finish();
  if (!impl_->room.publish(type, agent.empty() ? "orchestration" : agent, payload).ok())
    throw Error(Errc::no_space, "run room '" + impl_->room.name() + "' is full: step " + std::to_string(step) + " not recorded");
  std::lock_guard lock(impl_->mutex);
  impl_->journal.entries.emplace(k, std::move(payload));
  return true;
}

CallResult Run::call(std::uint64_t step, const Agent& agent, ProviderRequest request, std::chrono::milliseconds timeout) {
  request.run_id = impl_->id;
  request.step = step;
  request.agent = agent.info();
  // The agent's own timeout replaces the run's; a strategy's (a worker's task_timeout) can only
  // shorten it.
  const std::chrono::milliseconds limit = agent.call_timeout.count() > 0 ? agent.call_timeout : impl_->budget.call_timeout;
  if (timeout.count() <= 0 || timeout > limit) timeout = limit;
  thread_local simdjson::dom::parser parser;
  // A replay must take the same steps: a journaled step of another agent means the strategy
  // or its spec changed under the run, and going on would mix two runs.
  auto same_agent = [&](const std::string& payload) {
    simdjson::dom::object obj;
    std::string why, recorded_agent;
    if (json::parse_object(parser, payload, obj, why) && json::get_string(obj, "agent", recorded_agent, true, why) &&
        recorded_agent != agent.id)
      throw Error(Errc::conflict, "run '" + impl_->id + "' does not replay: its step " + std::to_string(step) + " called agent '" +
                                      recorded_agent + "', this driver calls '" + agent.id + "'");
  };
  if (auto payload = recorded("STEP_REPLY", step)) {
    same_agent(*payload);
    simdjson::dom::object obj;
    simdjson::dom::element reply;
    std::string why;
    if (json::parse_object(parser, *payload, obj, why) && !obj["reply"].get(reply)) {
      if (auto r = reply_from_element(reply, why)) {
        impl_->add_usage(agent.id, r->usage);
        return CallResult::success(std::move(*r));
      }
    }
    throw Error(Errc::corrupt, "run '" + impl_->id + "': the journaled reply of step " + std::to_string(step) + " is unreadable: " + why);
  }
  if (auto payload = recorded("STEP_FAILED", step)) {
    same_agent(*payload);
    simdjson::dom::object obj;
    std::string why, error, status, err_text;
    if (!json::parse_object(parser, *payload, obj, why)) throw Error(Errc::corrupt, "run '" + impl_->id + "': step " + std::to_string(step) + ": " + why);
    json::get_string(obj, "error", error, false, why);
    json::get_string(obj, "status", status, false, why);
    json::get_string(obj, "stderr", err_text, false, why);
    CallResult r = CallResult::failure(error, status == "timeout" ? CallStatus::timeout : CallStatus::failed);
    r.stderr_text = err_text;
    return r;
  }
  if (!agent.provider) throw Error(Errc::invalid_argument, "agent '" + agent.id + "' has no provider");
  add_delegation_results(*this, *impl_, step, agent.id, request);
  impl_->room.publish("STEP_CALLED", agent.id,
                      json::ObjectWriter().members(tags(step)).str("agent", agent.id).str("provider", agent.provider->describe()).finish());
  run_failpoint("before_call", step);
  impl_->calls.fetch_add(1);
  CallResult result = agent.provider->call(request, timeout);
  run_failpoint("before_outcome", step);
  if (result.ok()) {
    impl_->add_usage(agent.id, result.reply.usage);
    json::ObjectWriter w;
    w.str("agent", agent.id).raw("reply", reply_to_json(result.reply));
    if (!result.stderr_text.empty()) w.str("stderr", result.stderr_text);
    record("STEP_REPLY", step, agent.id, json::members_of(w.finish()));
  } else {
    const std::string members = json::members_of(json::ObjectWriter()
                                               .str("agent", agent.id)
                                               .str("status", result.status == CallStatus::timeout ? "timeout" : "failed")
                                               .str("error", result.error)
                                               .str("stderr", result.stderr_text)
                                               .finish());
    record("STEP_FAILED", step, agent.id, members);
    impl_->status.post(agent.id, "step " + std::to_string(step), StatusLevel::failed, result.error,
                       json::ObjectWriter().str("run", impl_->id).str("stderr", result.stderr_text).finish());
  }
  run_failpoint("after_outcome", step);
  return result;
}

std::map<std::string, Usage> Run::usage_by_agent() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->usage;
}

Usage Run::usage_total() const {
  Usage total;
  for (const auto& [_, u] : usage_by_agent()) {
    total.input_tokens += u.input_tokens;
    total.output_tokens += u.output_tokens;
  }
  return total;
}

void Run::finish(const RunResult& result) {
  json::ObjectWriter agents;
  for (const auto& [a, u] : usage_by_agent()) agents.raw(a, usage_json(u));
  const std::string usage = json::ObjectWriter().raw("total", usage_json(usage_total())).raw("agents", agents.finish()).finish();
  const std::string payload = json::ObjectWriter()
                                  .str("run", impl_->id)
                                  .str("state", to_string(result.state))
                                  .str("output", result.output)
                                  .str("error", result.error)
                                  .boolean("approved", result.approved)
                                  .num("iterations", std::uint64_t(result.iterations))
                                  .str("stopped", result.stopped)
                                  .raw("detail", result.detail.empty() ? "{}" : result.detail)
                                  .num("steps", impl_->next.load())
                                  .raw("usage", usage)
                                  .finish();
  impl_->room.publish("RUN_FINISHED", "orchestration", payload);
  const StatusLevel level = result.state == RunState::completed ? StatusLevel::completed : StatusLevel::failed;
  impl_->status.post("run", "run " + impl_->id, level,
                     std::string(to_string(result.state)) + (result.error.empty() ? "" : ": " + result.error));
}

std::vector<RunSummary> list_runs(Bus& bus) {
  std::vector<RunSummary> runs;
  for (const auto& name : bus.room_names()) {
    if (name.rfind(kRunRoomPrefix, 0) != 0) continue;
    const std::string id = name.substr(kRunRoomPrefix.size());
    if (id.find('/') != std::string::npos) continue;  // a room of a run's own (a workflow stage's)
    RoomOptions ro;
    ro.create = false;
    Room room = bus.room(name, ro);
    const RunJournal j = read_journal(room, id);
    if (!j.started && j.entries.empty() && !j.finished) continue;  // being created: nothing to show yet
    RunSummary s;
    s.start_lost = !j.started;
    s.run_id = id;
    s.started_ns = j.started_ns;
    s.finished_ns = j.finished_ns;
    s.steps = j.outcomes;
    s.driver_pid = j.driver_pid;
    if (const auto live = live_driver(j)) {
      s.driver_pid = live->pid;
      s.driver_alive = true;
    }
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    std::string why;
    if (j.started && json::parse_object(parser, *j.started, obj, why)) json::get_string(obj, "strategy", s.strategy, false, why);
    if (j.finished && json::parse_object(parser, *j.finished, obj, why)) {
      std::string state;
      json::get_string(obj, "state", state, false, why);
      json::get_string(obj, "output", s.output, false, why);
      if (s.output.size() > 200) s.output = s.output.substr(0, 200);
      s.state = state == "completed" ? RunState::completed : state == "budget_exceeded" ? RunState::budget_exceeded : RunState::failed;
    }
    runs.push_back(std::move(s));
  }
  std::sort(runs.begin(), runs.end(), [](const RunSummary& a, const RunSummary& b) { return a.started_ns > b.started_ns; });
  return runs;
}

}  // namespace agentbus::orchestration
