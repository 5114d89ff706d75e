// The JSON of delegated tasks and their results, the cache, and the small helpers both the
// delegating side and the worker use.
#include "orchestration/delegation_state.hpp"
#include "orchestration/json_object.hpp"

#include <agentbus/hash.hpp>
#include <agentbus/utf8.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace agentbus::orchestration {

std::string_view to_string(TaskStatus s) noexcept {
  switch (s) {
    case TaskStatus::pending: return "pending";
    case TaskStatus::in_progress: return "in_progress";
    case TaskStatus::completed: return "completed";
    case TaskStatus::failed: return "failed";
    case TaskStatus::cancelled: return "cancelled";
  }
  return "pending";
}

bool is_child_task_room(std::string_view room) noexcept {
  const auto slash = room.rfind('/');
  const std::string_view last = slash == std::string_view::npos ? room : room.substr(slash + 1);
  if (last.size() != 17 || last.substr(0, 5) != "task-") return false;
  return std::all_of(last.begin() + 5, last.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

TaskBoardOptions delegation_board_options() {
  TaskBoardOptions o;
  o.task_capacity = 256;
  o.catalog_capacity = 8;
  o.max_payload_bytes = 16384;
  return o;
}

std::string cancel_key(EventId id) { return "cancel-" + std::to_string(id); }

std::string cap_utf8(std::string_view text, std::size_t chars, std::size_t max_bytes) {
  std::size_t i = 0, n = 0;
  while (i < text.size() && n < chars) {
    const auto c = util::decode_utf8(text, i);
    if (i + c.len > max_bytes) break;
    i += c.len;
    ++n;
  }
  return std::string(text.substr(0, i));
}

std::string encode_payload(const DelegatedPayload& p) {
  return json::ObjectWriter()
      .str("task_id", p.task_id)
      .str("child_room", p.child_room)
      .str("parent_room", p.parent_room)
      .str("delegator", p.delegator)
      .str("notify", p.notify)
      .str("task", p.task)
      .raw("context", p.context)
      .raw("metadata", p.metadata)
      .boolean("require_structured_result", p.require_structured_result)
      .num("max_result_retries", static_cast<std::uint64_t>(p.max_result_retries))
      .finish();
}

namespace {
bool get_object_text(simdjson::dom::object obj, std::string_view key, std::string& out, std::string& why) {
  simdjson::dom::element v;
  if (obj[key].get(v)) return true;
  simdjson::dom::object o;
  if (v.get_object().get(o)) {
    why = "\"" + std::string(key) + "\" must be a JSON object";
    return false;
  }
  out = simdjson::minify(v);
  return true;
}
}  // namespace

std::optional<DelegatedPayload> decode_payload(std::string_view json_text, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!json::parse_object(parser, json_text, obj, why)) return std::nullopt;
  DelegatedPayload p;
  std::uint64_t retries = 3;
  if (!json::get_string(obj, "task_id", p.task_id, true, why) || !json::get_string(obj, "child_room", p.child_room, true, why) ||
      !json::get_string(obj, "parent_room", p.parent_room, true, why) ||
      !json::get_string(obj, "delegator", p.delegator, false, why) || !json::get_string(obj, "notify", p.notify, false, why) ||
      !json::get_string(obj, "task", p.task, true, why) || !get_object_text(obj, "context", p.context, why) ||
      !get_object_text(obj, "metadata", p.metadata, why) ||
      !json::get_bool(obj, "require_structured_result", p.require_structured_result, false, why) ||
      !json::get_uint(obj, "max_result_retries", retries, false, why))
    return std::nullopt;
  p.max_result_retries = static_cast<std::uint32_t>(std::min<std::uint64_t>(retries, 100));
  return p;
}

std::string encode_result(const DelegatedTaskResult& r, std::size_t max_bytes) {
  auto encode = [&](std::string_view output, std::string_view error) {
    json::ObjectWriter w;
    w.str("status", to_string(r.status));
    if (r.output) w.str("output", output);
    if (r.error || error.size()) w.str("error", error);
    return w.num("duration_ms", r.duration_ms).str("worker", r.worker).finish();
  };
  const std::string error = r.error.value_or("");
  std::string out = encode(r.output.value_or(""), error);
  if (out.size() <= max_bytes || !r.output) return out;
  // Escaping can grow text up to 6x; halve the output until the whole object fits.
  const std::string note = (error.empty() ? "" : error + "; ") + "output truncated to fit the task board";
  std::size_t keep = r.output->size();
  while (keep > 0) {
    keep /= 2;
    out = encode(cap_utf8(*r.output, keep, keep), note);
    if (out.size() <= max_bytes) return out;
  }
  return encode("", note);
}

void decode_result(std::string_view json_text, DelegatedTaskResult& into) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string why, status, output, error;
  std::uint64_t duration = 0;
  if (!json::parse_object(parser, json_text, obj, why) || !json::get_string(obj, "status", status, true, why) ||
      !json::get_uint(obj, "duration_ms", duration, false, why) || !json::get_string(obj, "worker", into.worker, false, why)) {
    into.status = TaskStatus::failed;
    into.error = "unreadable task result: " + why;
    return;
  }
  if (status == "completed") into.status = TaskStatus::completed;
  else if (status == "cancelled") into.status = TaskStatus::cancelled;
  else into.status = TaskStatus::failed;
  simdjson::dom::element v;
  if (!obj["output"].get(v) && json::get_string(obj, "output", output, false, why)) into.output = output;
  if (!obj["error"].get(v) && json::get_string(obj, "error", error, false, why)) into.error = error;
  into.duration_ms = duration;
}

// ---- CompletedTaskCache ----

CompletedTaskCache::CompletedTaskCache(std::chrono::milliseconds ttl) : ttl_(ttl) {}

std::string CompletedTaskCache::task_key(std::string_view task) {
  const auto first = task.find_first_not_of(" \t\r\n\f\v");
  const auto last = task.find_last_not_of(" \t\r\n\f\v");
  std::string norm = first == std::string_view::npos ? std::string() : std::string(task.substr(first, last - first + 1));
  for (char& c : norm) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(norm)));
  return hex;
}

namespace {
std::string cache_key(const std::string& room, const std::string& agent, std::string_view task) {
  std::string k = room;
  k.push_back('\0');
  k += agent;
  k.push_back('\0');
  k += CompletedTaskCache::task_key(task);
  return k;
}
}  // namespace

void CompletedTaskCache::put(const std::string& room, const std::string& agent, std::string_view task,
                             DelegatedTaskResult result) {
  std::lock_guard lock(mutex_);
  entries_[cache_key(room, agent, task)] = Entry{std::string(task), std::move(result), std::chrono::steady_clock::now()};
}

std::optional<DelegatedTaskResult> CompletedTaskCache::get(const std::string& room, const std::string& agent,
                                                           std::string_view task) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(cache_key(room, agent, task));
  if (it == entries_.end()) return std::nullopt;
  if (std::chrono::steady_clock::now() - it->second.stored >= ttl_) {
    entries_.erase(it);
    return std::nullopt;
  }
  DelegatedTaskResult r = it->second.result;
  r.from_cache = true;
  return r;
}

std::vector<std::string> CompletedTaskCache::recent_context(const std::string& room, std::size_t limit) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<const Entry*> live;
  const std::string prefix = room + '\0';
  for (const auto& [key, e] : entries_)
    if (key.compare(0, prefix.size(), prefix) == 0 && now - e.stored < ttl_) live.push_back(&e);
  std::sort(live.begin(), live.end(), [](const Entry* a, const Entry* b) { return a->stored > b->stored; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < live.size() && i < limit; ++i) out.push_back(live[i]->task);
  return out;
}

std::size_t CompletedTaskCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace agentbus::orchestration
