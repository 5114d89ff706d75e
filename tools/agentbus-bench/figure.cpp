#include "figure.hpp"

#include "probe.hpp"

namespace bench {

void print_figure(std::FILE* out, bool json, const char* name, const char* unit, const Figure& f,
                  const char* baseline_name) {
  const std::string placement = classify_placement(f.before, f.after);
  if (json) {
    std::fprintf(out,
                 "{\"system\":\"agentbus\",\"scenario\":\"%s\",\"value\":%.1f,\"unit\":\"%s\",\"baseline\":\"%s\","
                 "\"baseline_value\":%.1f,\"ratio\":%.3f,\"placement\":\"%s\",\"probe_ns\":[%.0f,%.0f],\"note\":\"%s\"}\n",
                 name, f.value, unit, baseline_name, f.baseline, f.value / f.baseline, placement.c_str(), f.before,
                 f.after, f.note.c_str());
  } else {
    std::fprintf(out, "%-34s %12.1f %-9s | %-30s %12.1f  ratio %5.2f | %s (probe %.0f/%.0f ns) %s\n", name, f.value,
                 unit, baseline_name, f.baseline, f.value / f.baseline, placement.c_str(), f.before, f.after,
                 f.note.c_str());
  }
  std::fflush(out);
}

}  // namespace bench
