// protocol.cpp — the provider protocol's request and reply JSON (docs/orchestration.md).
#include <agentbus/orchestration/protocol.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/protocol_dom.hpp"

namespace agentbus::orchestration {

namespace {

// `[{...},...]`: one object per item, its members written by `members(out, item)`.
template <class Items, class Members>
void append_objects(std::string& out, const Items& items, Members members) {
  out.push_back('[');
  for (const auto& item : items) {
    if (out.back() != '[') out.push_back(',');
    out.push_back('{');
    members(out, item);
    out.push_back('}');
  }
  out.push_back(']');
}

}  // namespace

void append_request_json(std::string& out, const ProviderRequest& request) {
  // One buffer for the whole request: it is rebuilt at every step, transcript and tool
  // schemas included, and per-object temporaries were most of its cost.
  std::size_t size = 256 + request.run_id.size() + request.agent.id.size() + request.agent.role.size() + request.agent.description.size();
  for (const Message& m : request.messages) size += 48 + m.role.size() + m.agent.size() + m.content.size();
  for (const ToolSpec& t : request.tools) size += 48 + t.name.size() + t.description.size() + t.parameters.size();
  out.reserve(out.size() + size);
  out.push_back('{');
  json::append_str(out, "protocol", "agentbus.provider");
  json::append_int(out, "version", std::uint64_t(kProviderProtocolVersion));
  json::append_str(out, "run", request.run_id);
  json::append_int(out, "step", request.step);
  out.append(",\"agent\":{");
  json::append_str(out, "id", request.agent.id);
  json::append_str(out, "role", request.agent.role);
  json::append_str(out, "description", request.agent.description);
  out.push_back('}');
  json::append_key(out, "messages");
  append_objects(out, request.messages, [](std::string& o, const Message& m) {
    json::append_str(o, "role", m.role);
    json::append_str(o, "agent", m.agent);
    json::append_str(o, "content", m.content);
  });
  json::append_key(out, "tools");
  append_objects(out, request.tools, [](std::string& o, const ToolSpec& t) {
    json::append_str(o, "name", t.name);
    json::append_str(o, "description", t.description);
    json::append_raw(o, "parameters", t.parameters);
  });
  out.push_back('}');
}

std::string request_to_json(const ProviderRequest& request) {
  std::string out;
  append_request_json(out, request);
  return out;
}

std::string reply_to_json(const Reply& reply) {
  const std::string calls = json::array(reply.tool_calls, [](const ToolCall& c) {
    return json::ObjectWriter().str("name", c.name).raw("arguments", c.arguments.empty() ? "{}" : c.arguments).finish();
  });
  const std::string usage = json::ObjectWriter()
                                .num("input_tokens", reply.usage.input_tokens)
                                .num("output_tokens", reply.usage.output_tokens)
                                .finish();
  return json::ObjectWriter()
      .num("version", std::uint64_t(kProviderProtocolVersion))
      .str("text", reply.text)
      .raw("tool_calls", calls)
      .raw("usage", usage)
      .finish();
}

namespace {

bool read_tool_calls(simdjson::dom::object obj, Reply& reply, std::string& why) {
  simdjson::dom::element v;
  if (obj["tool_calls"].get(v) || v.is_null()) return true;
  simdjson::dom::array calls;
  if (v.get_array().get(calls)) {
    why = "\"tool_calls\" must be an array";
    return false;
  }
  std::size_t i = 0;
  for (simdjson::dom::element item : calls) {
    const std::string where = "tool_calls[" + std::to_string(i++) + "]";
    simdjson::dom::object call;
    if (item.get_object().get(call)) {
      why = where + " must be an object";
      return false;
    }
    ToolCall tc;
    if (!json::get_string(call, "name", tc.name, true, why) || tc.name.empty()) {
      why = where + ": " + (why.empty() ? "\"name\" must not be empty" : why);
      return false;
    }
    simdjson::dom::element args;
    if (!call["arguments"].get(args) && !args.is_null()) {
      if (!args.is_object()) {
        why = where + ": \"arguments\" must be an object";
        return false;
      }
      tc.arguments = simdjson::minify(args);
    }
    reply.tool_calls.push_back(std::move(tc));
  }
  return true;
}

}  // namespace

std::optional<Reply> reply_from_json(std::string_view text, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (!json::parse_value(parser, text, doc, why)) return std::nullopt;
  return reply_from_element(doc, why);
}

std::optional<Reply> reply_from_element(simdjson::dom::element value, std::string& why) {
  simdjson::dom::object obj;
  if (!json::as_object(value, obj, why)) return std::nullopt;
  std::uint64_t version = 0;
  if (!json::get_uint(obj, "version", version, true, why)) return std::nullopt;
  if (version != std::uint64_t(kProviderProtocolVersion)) {
    why = "protocol version " + std::to_string(version) + " is not supported (this agentbus speaks version " +
          std::to_string(kProviderProtocolVersion) + ")";
    return std::nullopt;
  }
  Reply reply;
  if (!json::get_string(obj, "text", reply.text, true, why)) return std::nullopt;
  if (!read_tool_calls(obj, reply, why)) return std::nullopt;
  simdjson::dom::element u;
  if (!obj["usage"].get(u) && !u.is_null()) {
    simdjson::dom::object usage;
    if (u.get_object().get(usage)) {
      why = "\"usage\" must be an object";
      return std::nullopt;
    }
    if (!json::get_uint(usage, "input_tokens", reply.usage.input_tokens, false, why) ||
        !json::get_uint(usage, "output_tokens", reply.usage.output_tokens, false, why)) {
      why = "usage: " + why;
      return std::nullopt;
    }
  }
  return reply;
}

}  // namespace agentbus::orchestration
