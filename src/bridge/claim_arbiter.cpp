#include "bridge/claim_arbiter.hpp"

#include "bridge/claim_scripts.hpp"
#include "shm/futex.hpp"

#include <agentbus/error.hpp>
#include <agentbus/json_text.hpp>

#include <simdjson.h>

#include <algorithm>
#include <thread>

namespace agentbus::bridge {

namespace {

using namespace std::chrono_literals;
using coord::ArbiterOp;
using coord::ArbiterReply;
using coord::ArbiterRequest;
using coord::ArbiterVerdict;

constexpr auto kIdle = 200ms;       // longest sleep between looks at the rooms
constexpr auto kCatalogEvery = 1s;  // catalog mirrored this often

ArbiterReply verdict(ArbiterVerdict v) {
  ArbiterReply r;
  r.verdict = v;
  return r;
}

std::uint64_t token_of_reply(ReplyView v) {
  const std::optional<std::string_view> s = v.string();
  if (!s) return 0;
  std::uint64_t t = 0;
  for (char c : *s) {
    if (c < '0' || c > '9') return 0;
    t = t * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return t;
}

}  // namespace

std::string task_def_json(const TaskType& t) {
  return "{\"type\":" + util::json_string(t.type) + ",\"description\":" + util::json_string(t.description) +
         ",\"produces\":" + util::json_string(t.produces) + ",\"requires\":" + util::json_string(t.requires_) + "}";
}

std::optional<TaskType> parse_task_def(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(simdjson::padded_string(json)).get(o) != simdjson::SUCCESS) return std::nullopt;
  TaskType t;
  std::string_view v;
  if (o["type"].get(v) != simdjson::SUCCESS || v.empty() || v.size() > 64) return std::nullopt;
  t.type = v;
  auto text = [&](const char* name, std::string& out, std::size_t max) {
    if (o[name].get(v) == simdjson::SUCCESS) out = v.substr(0, max);
  };
  text("description", t.description, 512);
  text("produces", t.produces, 256);
  text("requires", t.requires_, 256);
  return t;
}

ClaimArbiter::ClaimArbiter(std::string host_id, Link& link, std::uint64_t keep_ms)
    : host_(std::move(host_id)),
      link_(link),
      keep_ms_(keep_ms),
      claim_script_(std::string(kClaimScript)),
      settle_script_(std::string(kSettleScript)) {}

void ClaimArbiter::add_room(Room room, RoomStateRef state, std::string key_prefix) {
  auto a = std::make_unique<Arbitrated>(Arbitrated{std::move(room), state, std::move(key_prefix), {}, {}});
  std::lock_guard lock(mutex_);
  rooms_.push_back(std::move(a));
}

// A room's board is attached as soon as it exists, whoever made it (a local post, or the
// inbound side importing another host's task).
void ClaimArbiter::attach_boards() {
  std::lock_guard lock(mutex_);
  for (auto& a : rooms_) {
    if (a->board) continue;
    try {
      a->board.emplace(a->room, TaskBoardOptions{.create = false});
      coord::attach_arbiter(*a->state);
      link_.log("arbitrating the task claims of room '" + a->room.name() + "' through Redis");
    } catch (const Error& e) {
      if (e.code() != Errc::not_found)
        link_.log("room '" + a->room.name() + "': cannot open its task board: " + e.what());
    }
  }
}

std::string ClaimArbiter::task_key(const Arbitrated& a, const ArbiterRequest& r, std::string_view which) const {
  const std::string& origin = r.origin_host.empty() ? host_ : r.origin_host;
  return a.prefix + ":task:" + origin + ":" + std::to_string(r.origin_id) + ":" + std::string(which);
}

void ClaimArbiter::drop_connection(const std::exception& why) {
  down_because_ = why.what();
  conn_.reset();
  link_.lost(why.what());
  retry_.failed();
}

ArbiterReply ClaimArbiter::decide(Arbitrated& a, const ArbiterRequest& r) {
  if (!conn_) {
    ArbiterReply down = verdict(ArbiterVerdict::unavailable);
    down.detail = "Redis is unreachable (" + down_because_ + ")";
    return down;
  }
  const std::string owner = r.claimant + "@" + host_;
  const std::string keys[] = {task_key(a, r, "owner"), task_key(a, r, "token"), task_key(a, r, "done")};
  const std::string_view key_views[] = {keys[0], keys[1], keys[2]};
  const std::string keep = std::to_string(keep_ms_), ttl = std::to_string(r.ttl_ms),
                    token = std::to_string(r.remote_token);
  try {
    if (r.op == ArbiterOp::claim) {
      const std::string_view args[] = {owner, ttl, token, host_, keep};
      const RedisReply rep = conn_->eval(claim_script_, key_views, args);
      const std::optional<std::string_view> what = rep.at(0).string();
      if (what == "granted") {
        ArbiterReply g = verdict(ArbiterVerdict::granted);
        g.remote_token = token_of_reply(rep.at(1));
        return g;
      }
      if (what == "done") return verdict(ArbiterVerdict::done);
      if (what == "held") {
        ArbiterReply h = verdict(ArbiterVerdict::held);
        h.holder = std::string(rep.at(1).string().value_or(""));
        h.lease_left_ms = rep.at(2).integer().value_or(0);
        h.remote_token = token_of_reply(rep.at(3));
        return h;
      }
      ArbiterReply bad = verdict(ArbiterVerdict::unavailable);
      bad.detail = "the claim script answered " + rep.describe();
      return bad;
    }
    const char* op = r.op == ArbiterOp::renew ? "renew" : r.op == ArbiterOp::complete ? "complete" : "release";
    const std::string_view args[] = {owner, token, op, ttl, r.result, keep};
    const RedisReply rep = conn_->eval(settle_script_, key_views, args);
    const std::optional<std::string_view> what = rep.at(0).string();
    if (what == "ok") return verdict(ArbiterVerdict::granted);
    if (what == "done") return verdict(ArbiterVerdict::done);
    if (what == "stale") {
      ArbiterReply s = verdict(ArbiterVerdict::stale);
      s.holder = std::string(rep.at(1).string().value_or(""));
      s.remote_token = token_of_reply(rep.at(2));
      return s;
    }
    ArbiterReply bad = verdict(ArbiterVerdict::unavailable);
    bad.detail = "the settle script answered " + rep.describe();
    return bad;
  } catch (const RedisDisconnected& e) {
    drop_connection(e);
    ArbiterReply down = verdict(ArbiterVerdict::unavailable);
    down.detail = std::string("Redis went away: ") + e.what();
    return down;
  }
}

// A claim granted in Redis whose asker had given up: let it go, or it would block the task
// until its lease ran out.
void ClaimArbiter::undo_grant(Arbitrated& a, const ArbiterRequest& r, const ArbiterReply& granted) {
  ArbiterRequest release = r;
  release.op = ArbiterOp::release;
  release.remote_token = granted.remote_token;
  (void)decide(a, release);
}

void ClaimArbiter::serve(Arbitrated& a) {
  (void)coord::serve_arbiter_requests(
      *a.board, [&](const ArbiterRequest& r) { return decide(a, r); },
      [&](const ArbiterRequest& r, const ArbiterReply& g) { undo_grant(a, r, g); });
}

// Ours out when it changed; theirs in when we lack a type (or know only its name).
void ClaimArbiter::sync_catalog(Arbitrated& a) {
  const std::string key = a.prefix + ":catalog";
  std::vector<TaskType> mine = a.board->catalog();
  auto same = [](const TaskType& x, const TaskType& y) {
    return x.type == y.type && x.description == y.description && x.produces == y.produces && x.requires_ == y.requires_;
  };
  const bool changed = mine.size() != a.catalog_pushed.size() ||
                       !std::equal(mine.begin(), mine.end(), a.catalog_pushed.begin(), same);
  if (changed && !mine.empty()) {
    // A bare type (a task's import registered only its name) never overwrites a described one.
    for (const TaskType& t : mine)
      conn_->append({t.description.empty() ? "HSETNX" : "HSET", key, t.type, task_def_json(t)});
    if (keep_ms_ > 0) conn_->append({"PEXPIRE", key, std::to_string(keep_ms_)});
    while (conn_->pending() > 0) (void)conn_->read_reply();
  }
  const RedisReply all = conn_->command({"HGETALL", key});
  for (std::size_t i = 0; i + 1 < all.size(); i += 2) {
    const std::optional<std::string_view> json = all.at(i + 1).string();
    const std::optional<TaskType> t = json ? parse_task_def(*json) : std::nullopt;
    if (!t) continue;  // agentroom's Catalog() skips malformed entries too
    const auto here = std::find_if(mine.begin(), mine.end(), [&](const TaskType& m) { return m.type == t->type; });
    if (here != mine.end() && (!here->description.empty() || t->description.empty())) continue;
    try {
      a.board->register_task(*t);
    } catch (const Error& e) {
      link_.log("room '" + a.room.name() + "': type '" + t->type + "' from Redis not registered: " + e.what());
    }
  }
  a.catalog_pushed = a.board->catalog();
}

void ClaimArbiter::run(const std::atomic<bool>& stop) {
  BusState& bus = link_.state();
  auto catalog_due = std::chrono::steady_clock::now();
  while (!stop.load(std::memory_order_relaxed)) {
    const std::uint32_t seen = bus.task_requests.load(std::memory_order_acquire);
    if (!conn_ && retry_.due()) {
      conn_ = link_.connect(retry_);
      if (!conn_) down_because_ = last_error(bus);
    }
    attach_boards();
    std::vector<Arbitrated*> rooms;
    {
      std::lock_guard lock(mutex_);
      for (auto& a : rooms_)
        if (a->board) rooms.push_back(a.get());
    }
    const bool catalogs = std::chrono::steady_clock::now() >= catalog_due;
    if (catalogs) catalog_due = std::chrono::steady_clock::now() + kCatalogEvery;
    for (Arbitrated* a : rooms) {
      try {
        serve(*a);
        if (catalogs && conn_) sync_catalog(*a);
      } catch (const RedisDisconnected& e) {
        drop_connection(e);
      } catch (const std::exception& e) {  // never let the thread die: log and go on
        link_.log("room '" + a->room.name() + "': task arbiter: " + e.what());
      }
    }
    shm::futex_wait(bus.task_requests, seen, kIdle);
  }
}

}  // namespace agentbus::bridge
