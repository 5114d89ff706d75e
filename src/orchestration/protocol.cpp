// protocol.cpp — the provider protocol's request and reply JSON (docs/orchestration.md).
#include <agentbus/orchestration/protocol.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/protocol_dom.hpp"

#include <charconv>

namespace agentbus::orchestration {

namespace {

// `"key":` then `value` as a JSON string, after a comma unless it opens an object; keys here
// are plain literals. What json::ObjectWriter writes, without a buffer per nested object.
void put_str(std::string& out, std::string_view key, std::string_view value) {
  if (out.back() != '{') out.push_back(',');
  out.push_back('"');
  out.append(key).append("\":");
  util::append_json_string(out, value);
}

void put_raw(std::string& out, std::string_view key, std::string_view value) {
  if (out.back() != '{') out.push_back(',');
  out.push_back('"');
  out.append(key).append("\":").append(value);
}

void put_num(std::string& out, std::string_view key, std::uint64_t value) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
  put_raw(out, key, std::string_view(buf, std::size_t(end - buf)));
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
  put_str(out, "protocol", "agentbus.provider");
  put_num(out, "version", std::uint64_t(kProviderProtocolVersion));
  put_str(out, "run", request.run_id);
  put_num(out, "step", request.step);
  out.append(",\"agent\":{");
  put_str(out, "id", request.agent.id);
  put_str(out, "role", request.agent.role);
  put_str(out, "description", request.agent.description);
  out.append("},\"messages\":[");
  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    const Message& m = request.messages[i];
    out.append(i == 0 ? "{" : ",{");
    put_str(out, "role", m.role);
    put_str(out, "agent", m.agent);
    put_str(out, "content", m.content);
    out.push_back('}');
  }
  out.append("],\"tools\":[");
  for (std::size_t i = 0; i < request.tools.size(); ++i) {
    const ToolSpec& t = request.tools[i];
    out.append(i == 0 ? "{" : ",{");
    put_str(out, "name", t.name);
    put_str(out, "description", t.description);
    put_raw(out, "parameters", t.parameters);
    out.push_back('}');
  }
  out.append("]}");
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
