// json_tree.cpp — a JSON tree with line numbers, from simdjson On-Demand.
#include <agentbus/json_text.hpp>

#include "orchestration/json_tree.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <type_traits>

namespace agentbus::orchestration::json {

namespace {

namespace od = simdjson::ondemand;

struct Builder {
  const char* begin;
  std::size_t size;
  std::string why;
  const char* where = nullptr;

  int line_of(const char* p) const {
    if (p == nullptr || p < begin || p > begin + size) return 0;
    return 1 + static_cast<int>(std::count(begin, p, '\n'));
  }

  bool fail(simdjson::error_code e, const char* at) {
    why = simdjson::error_message(e);
    where = at;
    // A document that ends early is wrong at its end, not where the open bracket was.
    if (e == simdjson::INCOMPLETE_ARRAY_OR_OBJECT || e == simdjson::TAPE_ERROR || e == simdjson::UNCLOSED_STRING)
      where = begin + size;
    return false;
  }

  template <class V>
  bool build(V& v, Node& out, int depth) {
    if (depth > 64) return fail(simdjson::DEPTH_ERROR, nullptr);
    std::string_view token;
    if constexpr (std::is_same_v<V, od::document>) {
      if (auto e = v.raw_json_token().get(token)) return fail(e, nullptr);
    } else {
      token = v.raw_json_token();
    }
    out.line = line_of(token.data());
    od::json_type type;
    if (auto e = v.type().get(type)) return fail(e, token.data());
    switch (type) {
      case od::json_type::object: {
        out.kind = Node::Kind::object;
        od::object obj;
        if (auto e = v.get_object().get(obj)) return fail(e, token.data());
        for (auto field : obj) {
          std::string_view key;
          if (auto e = field.unescaped_key().get(key)) return fail(e, token.data());
          od::value child;
          if (auto e = field.value().get(child)) return fail(e, token.data());
          Node n;
          if (!build(child, n, depth + 1)) return false;
          out.members.emplace_back(std::string(key), std::move(n));
        }
        return true;
      }
      case od::json_type::array: {
        out.kind = Node::Kind::array;
        od::array arr;
        if (auto e = v.get_array().get(arr)) return fail(e, token.data());
        for (auto item : arr) {
          od::value child;
          if (auto e = item.get(child)) return fail(e, token.data());
          Node n;
          if (!build(child, n, depth + 1)) return false;
          out.items.push_back(std::move(n));
        }
        return true;
      }
      case od::json_type::string: {
        out.kind = Node::Kind::string;
        std::string_view s;
        if (auto e = v.get_string().get(s)) return fail(e, token.data());
        out.string.assign(s);
        return true;
      }
      case od::json_type::number: {
        out.kind = Node::Kind::number;
        if (auto e = v.get_double().get(out.number)) return fail(e, token.data());
        return true;
      }
      case od::json_type::boolean: {
        out.kind = Node::Kind::boolean;
        if (auto e = v.get_bool().get(out.boolean_value)) return fail(e, token.data());
        return true;
      }
      case od::json_type::null: {
        out.kind = Node::Kind::null;
        bool is_null = false;
        if (auto e = v.is_null().get(is_null); e || !is_null) return fail(e ? e : simdjson::INCORRECT_TYPE, token.data());
        return true;
      }
    }
    return fail(simdjson::INCORRECT_TYPE, token.data());
  }
};

}  // namespace

bool parse_tree(std::string_view text, Node& out, std::string& why, int& line) {
  simdjson::padded_string padded(text);
  od::parser parser;
  od::document doc;
  Builder b{padded.data(), padded.size(), {}, nullptr};
  line = 0;
  if (auto e = parser.iterate(padded).get(doc)) {
    // Structural errors are found before any value is read: most are a document that ends
    // early (an unclosed bracket or string), so the place to look is its end.
    why = simdjson::error_message(e);
    line = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    return false;
  }
  bool ok = b.build(doc, out, 0);
  // On-Demand reads only what it is asked for; the DOM parser checks the whole text (trailing
  // content included). Its errors carry no position, so the tree's is used when it has one.
  simdjson::dom::parser whole;
  simdjson::dom::element ignored;
  if (auto e = whole.parse(padded).get(ignored); e && ok) {
    ok = false;
    b.why = simdjson::error_message(e);
    b.where = padded.data() + padded.size();
  }
  if (!ok) {
    why = b.why;
    const char* at = b.where;
    if (at == nullptr) {
      const char* loc = nullptr;
      if (!doc.current_location().get(loc)) at = loc;
    }
    line = b.line_of(at);
    if (line == 0) line = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    return false;
  }
  return true;
}

std::string to_json(const Node& n) {
  switch (n.kind) {
    case Node::Kind::null: return "null";
    case Node::Kind::boolean: return n.boolean_value ? "true" : "false";
    case Node::Kind::number: {
      if (std::floor(n.number) == n.number && std::fabs(n.number) < 9e15) return std::to_string(static_cast<long long>(n.number));
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", n.number);
      return buf;
    }
    case Node::Kind::string: return util::json_string(n.string);
    case Node::Kind::array: {
      std::string out = "[";
      for (const auto& i : n.items) {
        if (out.size() > 1) out.push_back(',');
        out += to_json(i);
      }
      return out + "]";
    }
    case Node::Kind::object: {
      std::string out = "{";
      for (const auto& [k, v] : n.members) {
        if (out.size() > 1) out.push_back(',');
        out += util::json_string(k) + ":" + to_json(v);
      }
      return out + "}";
    }
  }
  return "null";
}

}  // namespace agentbus::orchestration::json
