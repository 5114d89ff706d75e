// Building the small JSON objects orchestration writes (requests, run events, state) and
// reading fields of the ones it parses, with one message per kind of wrong field.
#pragma once

#include <agentbus/json_text.hpp>

#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace agentbus::orchestration::json {

// Members written straight into `out`, an object being built: `"key":` after a comma unless
// it opens the object. For nesting objects in one buffer; ObjectWriter is built on them.
inline void append_key(std::string& out, std::string_view key) {
  if (out.back() != '{') out.push_back(',');
  util::append_json_string(out, key);
  out.push_back(':');
}
inline void append_str(std::string& out, std::string_view key, std::string_view value) {
  append_key(out, key);
  util::append_json_string(out, value);
}
inline void append_raw(std::string& out, std::string_view key, std::string_view value) {  // `value` is JSON
  append_key(out, key);
  out.append(value);
}
template <typename Int>
void append_int(std::string& out, std::string_view key, Int value) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
  append_raw(out, key, std::string_view(buf, std::size_t(end - buf)));
}

// "{...}" -> "...", in place: an object's members, to be written into another object.
inline std::string members_of(std::string object) {
  if (object.size() < 2) return {};
  object.pop_back();
  object.erase(0, 1);
  return object;
}

// Appends "key":value pairs; finish() closes the object. Values are escaped unless raw.
class ObjectWriter {
 public:
  // Most objects written per step are a few hundred bytes: one allocation, not a doubling series.
  ObjectWriter() {
    out_.reserve(256);
    out_.push_back('{');
  }
  ObjectWriter& str(std::string_view key, std::string_view value) {
    append_str(out_, key, value);
    return *this;
  }
  ObjectWriter& num(std::string_view key, std::uint64_t value) {
    append_int(out_, key, value);
    return *this;
  }
  ObjectWriter& num(std::string_view key, std::int64_t value) {
    append_int(out_, key, value);
    return *this;
  }
  ObjectWriter& boolean(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
  // Members already encoded ("\"a\":1,\"b\":2", no braces; may be empty), e.g. a run's tags:
  // written in place instead of splicing strings around the finished object.
  ObjectWriter& members(std::string_view encoded) {
    if (encoded.empty()) return *this;
    if (out_.back() != '{') out_.push_back(',');
    out_.append(encoded);
    return *this;
  }
  // `value` must already be valid JSON.
  ObjectWriter& raw(std::string_view key, std::string_view value) {
    append_raw(out_, key, value);
    return *this;
  }
  [[nodiscard]] std::string finish() {
    out_.push_back('}');
    return std::move(out_);
  }

 private:
  std::string out_;
};

// A JSON array of already-encoded values.
template <class Range, class Encode>
std::string array(const Range& items, Encode encode) {
  std::string out = "[";
  for (const auto& item : items) {
    if (out.size() > 1) out.push_back(',');
    out.append(encode(item));
  }
  out.push_back(']');
  return out;
}

// A JSON array of strings.
template <class Range>
std::string string_array(const Range& items) {
  return array(items, [](std::string_view text) { return util::json_string(text); });
}

// Field readers: false with `why` when the field is present with the wrong type, or required
// and absent. `out` is untouched when an optional field is absent.
inline bool get_string(simdjson::dom::object obj, std::string_view key, std::string& out, bool required,
                       std::string& why) {
  simdjson::dom::element v;
  if (obj[key].get(v)) {
    if (required) why = "missing \"" + std::string(key) + "\"";
    return !required;
  }
  std::string_view s;
  if (v.get_string().get(s)) {
    why = "\"" + std::string(key) + "\" must be a string";
    return false;
  }
  out.assign(s);
  return true;
}

inline bool get_uint(simdjson::dom::object obj, std::string_view key, std::uint64_t& out, bool required,
                     std::string& why) {
  simdjson::dom::element v;
  if (obj[key].get(v)) {
    if (required) why = "missing \"" + std::string(key) + "\"";
    return !required;
  }
  if (v.get_uint64().get(out)) {
    why = "\"" + std::string(key) + "\" must be a non-negative integer";
    return false;
  }
  return true;
}

inline bool get_bool(simdjson::dom::object obj, std::string_view key, bool& out, bool required, std::string& why) {
  simdjson::dom::element v;
  if (obj[key].get(v)) {
    if (required) why = "missing \"" + std::string(key) + "\"";
    return !required;
  }
  if (v.get_bool().get(out)) {
    why = "\"" + std::string(key) + "\" must be true or false";
    return false;
  }
  return true;
}

// `value` as an object, or false with why = "not a JSON object".
inline bool as_object(simdjson::dom::element value, simdjson::dom::object& out, std::string& why) {
  if (value.get_object().get(out)) {
    why = "not a JSON object";
    return false;
  }
  return true;
}

// Parses `text` as one JSON value (valid until the parser's next parse).
inline bool parse_value(simdjson::dom::parser& parser, std::string_view text, simdjson::dom::element& out, std::string& why) {
  if (auto err = parser.parse(text.data(), text.size()).get(out)) {
    why = std::string("not valid JSON: ") + simdjson::error_message(err);
    return false;
  }
  return true;
}

// Parses `text` as one JSON object.
inline bool parse_object(simdjson::dom::parser& parser, std::string_view text, simdjson::dom::object& out,
                         std::string& why) {
  simdjson::dom::element doc;
  return parse_value(parser, text, doc, why) && as_object(doc, out, why);
}

}  // namespace agentbus::orchestration::json
