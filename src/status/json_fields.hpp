// Reading one string field of a JSON object read from untrusted text (a JSONL line, an
// archive line), with the one message for a field that is missing or of another type.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace agentbus::status_json {

enum class Null { is_absent, is_wrong };

// False (with `why`) when the field is required and missing, or present and not a string.
inline bool read_string(simdjson::dom::object& obj, std::string_view key, std::string& out, bool required,
                        std::string& why, Null null = Null::is_wrong) {
  simdjson::dom::element value;
  if (obj[key].get(value) || (null == Null::is_absent && value.is_null())) {
    if (!required) return true;
    why = "missing \"" + std::string(key) + "\"";
    return false;
  }
  std::string_view s;
  if (value.get_string().get(s)) {
    why = "\"" + std::string(key) + "\" must be a string";
    return false;
  }
  out.assign(s);
  return true;
}

}  // namespace agentbus::status_json
