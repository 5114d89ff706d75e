#include "bridge/entry_codec.hpp"

#include "bridge/decimal.hpp"
#include <agentbus/names.hpp>

#include <algorithm>
#include <array>
#include <limits>

namespace agentbus::bridge {

namespace {

enum Field : std::size_t {
  kType, kAgent, kTo, kReplyTo, kPayload, kTimestamp, kOriginHost, kOriginId, kReplyToHost, kReplyToId, kTask,
  kFieldCount
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "type", "agent_id", "to", "reply_to", "payload", "timestamp", "origin_host", "origin_id", "reply_to_host",
    "reply_to_id", "task"};

// Untrusted bytes as they may appear in a message: printable ASCII, the rest escaped, cut short.
std::string shown(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out + "'";
}

DecodedEntry rejected(std::string why) { return DecodedEntry{std::nullopt, std::move(why)}; }

std::optional<std::string> too_long(std::string_view name, std::string_view value, std::size_t max) {
  if (value.size() <= max) return std::nullopt;
  return std::string(name) + " is " + std::to_string(value.size()) + " bytes, max " + std::to_string(max);
}

}  // namespace

std::vector<std::string> encode_entry(StreamEvent event) {
  std::vector<std::string> out;
  out.reserve(20);
  const auto field = [&out](const char* name, std::string&& value) {
    out.emplace_back(name);
    out.push_back(std::move(value));
  };
  field("type", std::move(event.type));
  field("agent_id", std::move(event.agent));
  if (!event.to.empty()) field("to", std::move(event.to));
  if (event.reply_to) field("reply_to", std::move(*event.reply_to));
  field("payload", std::move(event.payload));
  field("timestamp", std::to_string(event.ts_ns));
  field("origin_host", std::move(event.origin.host));
  field("origin_id", std::to_string(event.origin.id));
  if (event.reply_to_origin) {
    field("reply_to_host", std::move(event.reply_to_origin->host));
    field("reply_to_id", std::to_string(event.reply_to_origin->id));
  }
  if (event.task) field("task", "1");
  return out;
}

std::optional<std::string_view> entry_origin_host(ReplyView fields) {
  const std::size_t count = std::min<std::size_t>(fields.size(), 2 * kMaxEntryFields);
  for (std::size_t i = 0; i + 1 < count; i += 2)
    if (fields.at(i).string() == kFieldNames[kOriginHost]) return fields.at(i + 1).string();
  return std::nullopt;
}

DecodedEntry decode_entry_fields(ReplyView fields, std::size_t payload_limit) {
  if (fields.kind() != ReplyKind::array) return rejected("the entry's fields are " + fields.describe() + ", not an array");
  const std::size_t count = fields.size();
  if (count % 2 != 0) return rejected("odd number of field names and values (" + std::to_string(count) + ")");
  if (count / 2 > kMaxEntryFields)
    return rejected(std::to_string(count / 2) + " fields, more than " + std::to_string(kMaxEntryFields));

  std::array<std::optional<std::string_view>, kFieldCount> value{};
  for (std::size_t i = 0; i < count; i += 2) {
    const auto name = fields.at(i).string();
    if (!name) return rejected("field name #" + std::to_string(i / 2) + " is " + fields.at(i).describe() + ", not a string");
    std::size_t known = 0;
    while (known < kFieldCount && kFieldNames[known] != *name) ++known;
    if (known == kFieldCount) continue;  // someone else's field
    const auto text = fields.at(i + 1).string();
    if (!text) return rejected("field " + shown(*name) + " is " + fields.at(i + 1).describe() + ", not a string");
    if (value[known]) return rejected("duplicate field " + shown(*name));
    value[known] = *text;
  }

  StreamEvent event;
  if (!value[kType] || value[kType]->empty()) return rejected("no type");
  if (!value[kOriginHost]) return rejected("no origin_host (not written by an agentbus bridge)");
  if (!value[kOriginId]) return rejected("no origin_id");
  if (!value[kTimestamp]) return rejected("no timestamp");
  const std::string_view type = *value[kType];
  const std::string_view agent = value[kAgent].value_or("");
  const std::string_view to = value[kTo].value_or("");
  const std::string_view payload = value[kPayload].value_or("");
  if (auto problem = too_long("type", type, kMaxTypeBytes)) return rejected(*problem);
  if (auto problem = too_long("agent_id", agent, kMaxAgentBytes)) return rejected(*problem);
  if (auto problem = too_long("to", to, kMaxAgentBytes)) return rejected(*problem);
  if (auto problem = too_long("payload", payload, payload_limit)) return rejected(*problem);

  const auto ts = parse_decimal<std::int64_t>(*value[kTimestamp]);
  if (!ts) return rejected("timestamp " + shown(*value[kTimestamp]) + " is not a non-negative 64-bit decimal");
  if (auto problem = host_id_problem(*value[kOriginHost])) return rejected("origin_host: " + *problem);
  const auto origin_id = parse_decimal<std::uint64_t>(*value[kOriginId]);
  if (!origin_id) return rejected("origin_id " + shown(*value[kOriginId]) + " is not an unsigned 64-bit decimal");

  if (value[kReplyToHost].has_value() != value[kReplyToId].has_value())
    return rejected(value[kReplyToHost] ? "reply_to_host without reply_to_id" : "reply_to_id without reply_to_host");
  if (value[kReplyToHost]) {
    if (auto problem = host_id_problem(*value[kReplyToHost])) return rejected("reply_to_host: " + *problem);
    const auto reply_id = parse_decimal<std::uint64_t>(*value[kReplyToId]);
    if (!reply_id) return rejected("reply_to_id " + shown(*value[kReplyToId]) + " is not an unsigned 64-bit decimal");
    event.reply_to_origin = EntryOrigin{std::string(*value[kReplyToHost]), *reply_id};
  }
  if (value[kReplyTo] && !value[kReplyTo]->empty()) {
    if (!StreamId::parse(*value[kReplyTo])) return rejected("reply_to " + shown(*value[kReplyTo]) + " is not a stream id");
    event.reply_to = std::string(*value[kReplyTo]);
  }

  event.type = std::string(type);
  event.agent = std::string(agent);
  event.to = std::string(to);
  event.payload = std::string(payload);
  event.ts_ns = *ts;
  event.origin = EntryOrigin{std::string(*value[kOriginHost]), *origin_id};
  if (value[kTask] && *value[kTask] != "1") return rejected("task " + shown(*value[kTask]) + " is not 1");
  event.task = value[kTask].has_value();
  return DecodedEntry{std::move(event), {}};
}

}  // namespace agentbus::bridge
