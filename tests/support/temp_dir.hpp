// A fresh directory under /tmp for one test (mkdtemp), named after `prefix`.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace agentbus::test {

inline std::string make_temp_dir(std::string_view prefix) {
  std::string path = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) throw std::runtime_error("mkdtemp " + path + " failed");
  return path;
}

}  // namespace agentbus::test
