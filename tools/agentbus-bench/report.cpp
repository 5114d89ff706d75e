#include "report.hpp"

#include <cmath>
#include <string>

namespace bench {

namespace {

const Row* find_row(const std::vector<Row>& all, const Row& like, std::string_view system) {
  for (const Row& r : all) {
    if (r.system == system && r.scenario == like.scenario && r.payload_bytes == like.payload_bytes &&
        r.m.error.empty())
      return &r;
  }
  return nullptr;
}

std::optional<double> divide(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

std::string fmt_rate(std::optional<double> v) {
  if (!v) return "-";
  char buf[32];
  if (*v >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M", *v / 1e6);
  else if (*v >= 1e3) std::snprintf(buf, sizeof buf, "%.1f k", *v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", *v);
  return buf;
}

std::string fmt_us(std::optional<double> ns) {
  if (!ns) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, *ns < 10'000 ? "%.2f" : "%.1f", *ns / 1000.0);
  return buf;
}

std::string fmt_ratio(std::optional<double> v) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, *v >= 100 ? "%.0fx" : "%.2fx", *v);
  return buf;
}

std::string fmt_pct(std::optional<double> v) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", *v);
  return buf;
}

std::string placement_cell(const Row& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s (%.0f/%.0f)", r.placement.c_str(), r.probe_before_ns,
                r.probe_after_ns);
  return buf;
}

std::string notes_cell(const Row& r) {
  std::string s;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += "; ";
    s += part;
  };
  if (r.m.wakeups) add("wakeups=" + std::to_string(*r.m.wakeups));
  if (r.m.min_sub_msgs_per_s && r.subscribers > 1) add("min sub " + fmt_rate(r.m.min_sub_msgs_per_s));
  if (r.m.lost > 0) add("LOST " + std::to_string(r.m.lost));
  if (r.m.overruns > 0) add("overruns " + std::to_string(r.m.overruns));
  if (r.m.order_errors > 0) add("ORDER ERRORS " + std::to_string(r.m.order_errors));
  if (!r.m.error.empty()) add("ERROR: " + r.m.error);
  if (!r.note.empty()) add(r.note);
  return s;
}

std::string group_title(const Row& r) {
  if (r.scenario == "idle") return "idle: CPU of one blocked subscriber with no traffic";
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s, %zu B payload: %d producer%s -> %d subscriber%s%s",
                r.scenario.c_str(), r.payload_bytes, r.producers, r.producers > 1 ? "s" : "",
                r.subscribers, r.subscribers > 1 ? "s" : "",
                r.scenario == "1to1" ? " (producer pinned to CPU 0, subscriber to CPU 1)" : "");
  return buf;
}

void json_number(std::FILE* out, const char* key, std::optional<double> v, bool integer = false) {
  if (!v || std::isnan(*v)) std::fprintf(out, ",\"%s\":null", key);
  else if (integer) std::fprintf(out, ",\"%s\":%.0f", key, *v);
  else std::fprintf(out, ",\"%s\":%.4g", key, *v);
}

void json_string(std::FILE* out, const char* key, const std::string& v) {
  std::fprintf(out, ",\"%s\":\"", key);
  for (const char c : v) {
    if (c == '"' || c == '\\') std::fprintf(out, "\\%c", c);
    else if (static_cast<unsigned char>(c) < 0x20) std::fprintf(out, "\\u%04x", c);
    else std::fputc(c, out);
  }
  std::fputc('"', out);
}

}  // namespace

Ratios ratios_for(const Row& row, const std::vector<Row>& all) {
  Ratios q;
  if (const Row* n = find_row(all, row, "naive-ring")) {
    q.msgs_vs_naive = divide(row.m.msgs_per_s, n->m.msgs_per_s);
    q.p50_vs_naive = divide(row.m.p50_ns, n->m.p50_ns);
  }
  if (const Row* p = find_row(all, row, "redis-pipelined"))
    q.msgs_vs_redis_pipelined = divide(row.m.msgs_per_s, p->m.msgs_per_s);
  if (const Row* r = find_row(all, row, "redis")) {
    q.msgs_vs_redis = divide(row.m.msgs_per_s, r->m.msgs_per_s);
    q.p50_vs_redis = divide(r->m.p50_ns, row.m.p50_ns);
  }
  return q;
}

void print_table(std::FILE* out, const std::vector<Row>& rows, const std::string& header) {
  std::fprintf(out, "%s\n", header.c_str());
  std::string current;
  for (const Row& r : rows) {
    const std::string title = group_title(r);
    if (title != current) {
      current = title;
      std::fprintf(out, "\n== %s\n", title.c_str());
      if (r.scenario == "idle") {
        std::fprintf(out, "%-16s %-5s %10s  %-20s %s\n", "system", "wait", "CPU/core",
                     "placement (probe ns)", "notes");
      } else {
        std::fprintf(out, "%-16s %-5s %11s %8s %9s %8s %9s %9s %9s %8s %9s  %-20s %s\n", "system",
                     "wait", "msgs/s", "x naive", "x redis-p", "x redis", "p50 us", "p99 us",
                     "p99.9 us", "p50/nv", "redis/p50", "placement (probe ns)", "notes");
      }
    }
    if (r.scenario == "idle") {
      std::fprintf(out, "%-16s %-5s %10s  %-20s %s\n", r.system.c_str(),
                   std::string(to_string(r.wait)).c_str(), fmt_pct(r.m.idle_cpu_pct).c_str(),
                   placement_cell(r).c_str(), notes_cell(r).c_str());
      continue;
    }
    const Ratios q = ratios_for(r, rows);
    std::fprintf(out, "%-16s %-5s %11s %8s %9s %8s %9s %9s %9s %8s %9s  %-20s %s\n",
                 r.system.c_str(), std::string(to_string(r.wait)).c_str(),
                 fmt_rate(r.m.msgs_per_s).c_str(), fmt_ratio(q.msgs_vs_naive).c_str(),
                 fmt_ratio(q.msgs_vs_redis_pipelined).c_str(), fmt_ratio(q.msgs_vs_redis).c_str(),
                 fmt_us(r.m.p50_ns).c_str(), fmt_us(r.m.p99_ns).c_str(), fmt_us(r.m.p999_ns).c_str(),
                 fmt_ratio(q.p50_vs_naive).c_str(), fmt_ratio(q.p50_vs_redis).c_str(),
                 placement_cell(r).c_str(), notes_cell(r).c_str());
  }
}

void print_json_line(std::FILE* out, const Row& r, const std::vector<Row>& all) {
  const Ratios q = ratios_for(r, all);
  std::fprintf(out, "{\"system\":\"%s\"", r.system.c_str());
  json_string(out, "scenario", r.scenario);
  json_number(out, "payload_bytes",
              r.payload_bytes ? std::optional<double>(double(r.payload_bytes)) : std::nullopt, true);
  std::fprintf(out, ",\"producers\":%d,\"subscribers\":%d", r.producers, r.subscribers);
  json_string(out, "wait", std::string(to_string(r.wait)));
  json_number(out, "msgs_per_s", r.m.msgs_per_s, true);
  json_number(out, "p50_ns", r.m.p50_ns, true);
  json_number(out, "p99_ns", r.m.p99_ns, true);
  json_number(out, "p999_ns", r.m.p999_ns, true);
  json_string(out, "placement", r.placement);
  json_number(out, "probe_rtt_ns_before", r.probe_before_ns, true);
  json_number(out, "probe_rtt_ns_after", r.probe_after_ns, true);
  json_number(out, "idle_cpu_pct", r.m.idle_cpu_pct);
  json_number(out, "min_sub_msgs_per_s", r.m.min_sub_msgs_per_s, true);
  std::fprintf(out, ",\"runs_msgs_per_s\":[");
  for (std::size_t i = 0; i < r.run_rates.size(); ++i)
    std::fprintf(out, "%s%.0f", i ? "," : "", r.run_rates[i]);
  std::fprintf(out, "]");
  json_number(out, "ratio_msgs_vs_naive", q.msgs_vs_naive);
  json_number(out, "ratio_msgs_vs_redis_pipelined", q.msgs_vs_redis_pipelined);
  json_number(out, "ratio_msgs_vs_redis", q.msgs_vs_redis);
  json_number(out, "ratio_p50_vs_naive", q.p50_vs_naive);
  json_number(out, "wakeups", r.m.wakeups ? std::optional<double>(double(*r.m.wakeups)) : std::nullopt,
              true);
  std::fprintf(out, ",\"sent\":%llu,\"lost\":%llu,\"overruns\":%llu,\"order_errors\":%llu",
               static_cast<unsigned long long>(r.m.sent), static_cast<unsigned long long>(r.m.lost),
               static_cast<unsigned long long>(r.m.overruns),
               static_cast<unsigned long long>(r.m.order_errors));
  if (r.m.error.empty() && r.note.empty()) std::fprintf(out, ",\"error\":null");
  else json_string(out, "error", r.m.error.empty() ? r.note : r.m.error);
  std::fprintf(out, "}\n");
}

}  // namespace bench
