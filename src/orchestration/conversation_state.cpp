// conversation_state.cpp — ConversationState's transitions and its JSON form.
#include <agentbus/orchestration/conversation.hpp>

#include "orchestration/conversation_json.hpp"
#include "orchestration/iso_time.hpp"
#include "orchestration/json_object.hpp"

namespace agentbus::orchestration {

namespace {

std::string optional_json(const std::optional<std::string>& s) {
  return s ? util::json_string(*s) : std::string("null");
}

std::string map_json(const JsonMap& m) {
  json::ObjectWriter w;
  for (const auto& [k, v] : m) w.raw(k, v);
  return w.finish();
}

bool read_optional(simdjson::dom::object obj, std::string_view key, std::optional<std::string>& out, std::string& why) {
  simdjson::dom::element v;
  if (obj[key].get(v) || v.is_null()) {
    out.reset();
    return true;
  }
  std::string_view s;
  if (v.get_string().get(s)) {
    why = "\"" + std::string(key) + "\" must be a string or null";
    return false;
  }
  out = std::string(s);
  return true;
}

// A value as this library writes it: strings (and keys) through append_json_string, which
// escapes U+2028, U+2029 and C1 controls that simdjson::minify leaves raw, so that a state
// read back from the room equals the one committed, byte for byte.
void append_canonical(std::string& out, simdjson::dom::element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view text;
      if (v.get_string().get(text) != simdjson::SUCCESS) return;
      util::append_json_string(out, text);
      return;
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array items;
      if (v.get_array().get(items) != simdjson::SUCCESS) return;
      out.push_back('[');
      bool first = true;
      for (simdjson::dom::element item : items) {
        if (!std::exchange(first, false)) out.push_back(',');
        append_canonical(out, item);
      }
      out.push_back(']');
      return;
    }
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object fields;
      if (v.get_object().get(fields) != simdjson::SUCCESS) return;
      out.push_back('{');
      bool first = true;
      for (auto field : fields) {
        if (!std::exchange(first, false)) out.push_back(',');
        util::append_json_string(out, field.key);
        out.push_back(':');
        append_canonical(out, field.value);
      }
      out.push_back('}');
      return;
    }
    default:
      out += simdjson::minify(v);
  }
}

bool read_map(simdjson::dom::object obj, std::string_view key, JsonMap& out, std::string& why) {
  simdjson::dom::element v;
  if (obj[key].get(v) || v.is_null()) return true;
  simdjson::dom::object m;
  if (v.get_object().get(m)) {
    why = "\"" + std::string(key) + "\" must be an object";
    return false;
  }
  for (auto field : m) {
    std::string value;
    append_canonical(value, field.value);
    out[std::string(field.key)] = std::move(value);
  }
  return true;
}

}  // namespace

ConversationState ConversationState::fresh(std::string phase, std::optional<std::string> active_agent) {
  ConversationState s;
  s.phase = std::move(phase);
  s.active_agent_id = std::move(active_agent);
  s.phase_started_at = iso_now();
  return s;
}

ConversationState ConversationState::transition(std::string to_phase, std::optional<std::string> to_agent,
                                                std::string reason, JsonMap metadata) const {
  ConversationState next = *this;
  const std::string now = iso_now();
  next.phase_history.push_back(
      PhaseTransition{phase, to_phase, active_agent_id, to_agent, std::move(reason), now, std::move(metadata)});
  next.previous_agent_id = active_agent_id;
  if (to_agent != active_agent_id) ++next.handoff_count;
  next.active_agent_id = std::move(to_agent);
  next.phase = std::move(to_phase);
  next.phase_started_at = now;
  return next;
}

ConversationState ConversationState::with_context(std::string key, std::string json_value) const {
  ConversationState next = *this;
  next.context[std::move(key)] = std::move(json_value);
  return next;
}

std::string transition_json(const PhaseTransition& t) {
  return json::ObjectWriter()
      .str("from_phase", t.from_phase)
      .str("to_phase", t.to_phase)
      .raw("from_agent", optional_json(t.from_agent))
      .raw("to_agent", optional_json(t.to_agent))
      .str("reason", t.reason)
      .str("timestamp", t.timestamp)
      .raw("metadata", map_json(t.metadata))
      .finish();
}

std::string history_json(const std::vector<PhaseTransition>& history) { return json::array(history, transition_json); }

std::string state_json(const ConversationState& s, std::string_view history) {
  return json::ObjectWriter()
      .str("phase", s.phase)
      .raw("active_agent_id", optional_json(s.active_agent_id))
      .raw("previous_agent_id", optional_json(s.previous_agent_id))
      .num("handoff_count", std::uint64_t(s.handoff_count))
      .str("phase_started_at", s.phase_started_at)
      .raw("phase_history", history)
      .raw("context", map_json(s.context))
      .finish();
}

std::string ConversationState::to_json() const { return state_json(*this, history_json(phase_history)); }

std::optional<ConversationState> ConversationState::from_json(std::string_view text, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!json::parse_object(parser, text, obj, why)) return std::nullopt;
  ConversationState s;
  std::uint64_t count = 0;
  if (!json::get_string(obj, "phase", s.phase, true, why) || !read_optional(obj, "active_agent_id", s.active_agent_id, why) ||
      !read_optional(obj, "previous_agent_id", s.previous_agent_id, why) ||
      !json::get_uint(obj, "handoff_count", count, false, why) ||
      !json::get_string(obj, "phase_started_at", s.phase_started_at, false, why) || !read_map(obj, "context", s.context, why))
    return std::nullopt;
  if (count > UINT32_MAX) {
    why = "\"handoff_count\" is out of range";
    return std::nullopt;
  }
  s.handoff_count = static_cast<std::uint32_t>(count);
  simdjson::dom::element h;
  if (!obj["phase_history"].get(h) && !h.is_null()) {
    simdjson::dom::array items;
    if (h.get_array().get(items)) {
      why = "\"phase_history\" must be an array";
      return std::nullopt;
    }
    for (simdjson::dom::element item : items) {
      simdjson::dom::object t;
      PhaseTransition pt;
      if (item.get_object().get(t) || !json::get_string(t, "from_phase", pt.from_phase, true, why) ||
          !json::get_string(t, "to_phase", pt.to_phase, true, why) || !read_optional(t, "from_agent", pt.from_agent, why) ||
          !read_optional(t, "to_agent", pt.to_agent, why) || !json::get_string(t, "reason", pt.reason, false, why) ||
          !json::get_string(t, "timestamp", pt.timestamp, false, why) || !read_map(t, "metadata", pt.metadata, why)) {
        why = "phase_history: " + (why.empty() ? std::string("an entry is not an object") : why);
        return std::nullopt;
      }
      s.phase_history.push_back(std::move(pt));
    }
  }
  return s;
}

}  // namespace agentbus::orchestration
