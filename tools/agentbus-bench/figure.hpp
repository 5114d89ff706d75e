// agentbus-bench/figure.hpp — one figure of the --status and --bridge modes: a value beside
// the baseline measured in the same run, their ratio, and the placement probe around both.
#pragma once

#include <cstdio>
#include <string>

namespace bench {

struct Figure {
  double value = 0, baseline = 0;
  double before = 0, after = 0;  // placement probe, ns
  std::string note;
};

// One line (a JSON object with `json`); the ratio printed is value / baseline.
void print_figure(std::FILE* out, bool json, const char* name, const char* unit, const Figure& f,
                  const char* baseline_name);

}  // namespace bench
