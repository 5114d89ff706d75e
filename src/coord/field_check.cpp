#include "coord/field_check.hpp"

#include <agentbus/error.hpp>

#include <string>

namespace agentbus::coord {

void refuse_len(std::string_view what, std::size_t size, std::size_t max) {
  if (size == 0) throw Error(Errc::invalid_argument, std::string(what) + " is empty");
  throw Error(Errc::too_large, std::string(what) + " is " + std::to_string(size) + " bytes; the limit is " +
                                   std::to_string(max));
}

}  // namespace agentbus::coord
