// A parsed JSON document that remembers the line of every value, so that a run file's errors
// can say where they are. Built with simdjson's On-Demand API, which points into the text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentbus::orchestration::json {

struct Node {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean_value = false;
  double number = 0;
  std::string string;
  std::vector<std::pair<std::string, Node>> members;
  std::vector<Node> items;
  int line = 1;

  [[nodiscard]] const Node* find(std::string_view key) const {
    for (const auto& [k, v] : members)
      if (k == key) return &v;
    return nullptr;
  }
};

// Parses `text`; on failure returns false with `why` and the line of the problem.
bool parse_tree(std::string_view text, Node& out, std::string& why, int& line);

// Minified JSON of a node.
[[nodiscard]] std::string to_json(const Node& node);

}  // namespace agentbus::orchestration::json
