// commands_scratch.cpp — scratch set/get/rm/ls: the room's scratchpad, key -> bytes with a
// TTL, for payloads too big for the event stream.
#include "common.hpp"
#include "output.hpp"

#include <cstdio>
#include <memory>
#include <unistd.h>

namespace agentbus::cli {
namespace {

using std::chrono::milliseconds;

struct SetArgs {
  std::string key;
  std::string value;
  CLI::Option* value_opt = nullptr;
  std::string ttl{kForever};
};

struct KeyArgs {
  std::string key;
  bool json = false;
};

// "850ms", "42s", "9m58s", "2h5m".
std::string format_ttl(milliseconds ttl) {
  const auto ms = ttl.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  const auto s = ms / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

// Reading never creates: a bus, room or scratchpad nobody has written to holds no keys.
std::optional<Scratchpad> existing_scratchpad(const Globals& g) {
  std::optional<Room> room = open_existing_room(g);
  if (!room) return std::nullopt;
  ScratchpadOptions options;
  options.create = false;
  try {
    return Scratchpad(*room, options);
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return std::nullopt;
    throw;
  }
}

[[noreturn]] void throw_missing(const std::string& room, const std::string& key, const ScratchValue* expired) {
  if (expired != nullptr) {
    std::string ago;
    if (expired->ttl_left) ago = " " + format_ttl(-*expired->ttl_left) + " ago";
    throw Error(Errc::expired, "key '" + key + "' in room " + room + " expired" + ago);
  }
  throw Error(Errc::not_found, "key '" + key + "' is absent from room " + room);
}

int run_set(const Globals& g, const SetArgs& args) {
  // The scratchpad's ttl 0 means "never expires": only "forever" (or no --ttl) may say so,
  // and the validator refuses a zero duration.
  const milliseconds ttl = validated_duration(args.ttl).value_or(milliseconds(0));
  const bool from_stdin = args.value_opt->count() == 0 || args.value == "-";
  if (from_stdin && args.value_opt->count() == 0 && ::isatty(STDIN_FILENO) == 1) {
    report_error("scratch set: give a value, or pipe it in (\"-\" reads stdin even from a terminal)");
    return kExitUsage;
  }

  Scratchpad pad(open_room(g));
  std::string value = args.value;
  if (from_stdin) {
    // Read at most one byte more than the scratchpad takes, so a huge stream is refused
    // without holding all of it in memory.
    const std::size_t limit = pad.info().max_value_bytes;
    value.clear();
    char buf[1 << 16];
    while (value.size() <= limit) {
      const std::size_t n = std::fread(buf, 1, sizeof buf, stdin);
      value.append(buf, n);
      if (n < sizeof buf) break;
    }
    if (std::ferror(stdin) != 0) throw Error(Errc::system, "cannot read the value from stdin");
    if (value.size() > limit)
      throw Error(Errc::too_large, "the value on stdin is more than " + std::to_string(limit) +
                                       " bytes, the most the scratchpad of room " + pad.room_name() +
                                       " takes");
  }
  pad.write(args.key, value, ttl);
  return 0;
}

int run_get(const Globals& g, const KeyArgs& args) {
  const std::string room = room_name(g);
  std::optional<Scratchpad> pad = existing_scratchpad(g);
  if (!pad) throw_missing(room, args.key, nullptr);
  const ScratchValue got = pad->read(args.key);
  if (got.status == ScratchStatus::absent) throw_missing(room, args.key, nullptr);
  if (got.status == ScratchStatus::expired) throw_missing(room, args.key, &got);
  if (args.json) {
    std::string out = "{\"room\":" + json_string(room) + ",\"key\":" + json_string(args.key) +
                      ",\"bytes\":" + std::to_string(got.value.size()) + ",\"ttl_ms\":" +
                      (got.ttl_left ? std::to_string(got.ttl_left->count()) : "null") +
                      ",\"written\":\"" + iso8601_utc(got.written_ts_ns) +
                      "\",\"value\":" + payload_json(got.value) + "}\n";
    write_out(out, true);
  } else if (::isatty(STDOUT_FILENO) == 1) {
    // A value is untrusted; on a terminal it must not drive it. Pipes get the exact bytes.
    std::string text = sanitize_for_terminal(got.value, Newlines::keep);
    if (!text.empty() && text.back() != '\n') text += '\n';
    write_out(text, true);
  } else {
    write_out(got.value, true);
  }
  return 0;
}

int run_rm(const Globals& g, const KeyArgs& args) {
  const std::string room = room_name(g);
  std::optional<Scratchpad> pad = existing_scratchpad(g);
  const ScratchStatus status = pad ? pad->remove(args.key) : ScratchStatus::absent;
  if (status == ScratchStatus::absent) throw_missing(room, args.key, nullptr);
  if (status == ScratchStatus::expired)
    throw Error(Errc::expired, "key '" + args.key + "' in room " + room + " had already expired (now removed)");
  return 0;
}

int run_ls(const Globals& g, bool json) {
  const std::string room = room_name(g);
  std::optional<Scratchpad> pad = existing_scratchpad(g);
  if (!pad) return 0;
  std::string out;
  for (const ScratchKey& k : pad->keys()) {
    if (json) {
      out += "{\"room\":" + json_string(room) + ",\"key\":" + json_string(k.key) + ",\"bytes\":" +
             std::to_string(k.bytes) + ",\"ttl_ms\":" +
             (k.ttl_left ? std::to_string(k.ttl_left->count()) : "null") + ",\"written\":\"" +
             iso8601_utc(k.written_ts_ns) + "\"}\n";
    } else {
      std::string size = human_bytes(k.bytes);
      std::string ttl = k.ttl_left ? format_ttl(*k.ttl_left) : "-";
      size.insert(0, size.size() < 10 ? 10 - size.size() : 0, ' ');
      ttl.insert(0, ttl.size() < 8 ? 8 - ttl.size() : 0, ' ');
      out += size + "  " + ttl + "  " + sanitize_for_terminal(k.key) + "\n";
    }
  }
  write_out(out, true);
  return 0;
}

}  // namespace

void add_scratch_commands(CLI::App& app, const Globals& g, Commands& commands) {
  auto set = std::make_shared<SetArgs>();
  auto get = std::make_shared<KeyArgs>();
  auto rm = std::make_shared<KeyArgs>();
  auto ls_json = std::make_shared<bool>(false);

  CLI::App* scratch = app.add_subcommand(
      "scratch", "The room's scratchpad: key -> bytes with a TTL, for payloads too big for events.");
  scratch->require_subcommand(1);
  scratch->footer(
      "Keys are 1..128 bytes of printable UTF-8 (no control characters). Values are any bytes,\n"
      "up to 1 MiB by default. Readers see a whole value, the old or the new one, never a mix.\n"
      "Exit codes: 0 ok, 1 error, 2 usage or bad key, 4 the key is absent or expired.\n\n"
      "Examples:\n"
      "  git diff | agentbus scratch set diff:123 --ttl 10m\n"
      "  agentbus post PATCH '{\"scratch\":\"diff:123\"}'\n"
      "  agentbus scratch get diff:123 > patch.diff\n"
      "  agentbus scratch ls\n"
      "  agentbus scratch rm diff:123");

  CLI::App* set_cmd = scratch->add_subcommand("set", "Set a key to a value (replacing any earlier one).");
  set_cmd->footer(
      "Without a value, or with \"-\", the value is read from stdin (exact bytes, no newline\n"
      "stripped). A value starting with '-' goes after \"--\". Without --ttl (or with\n"
      "--ttl forever) it never expires; --ttl 0 is refused, as for every other TTL.\n\n"
      "Examples:\n"
      "  agentbus scratch set plan 'step 1: parse' --ttl 1h\n"
      "  cat report.json | agentbus scratch set report:42\n"
      "  agentbus scratch set flags -- --verbose");
  set_cmd->add_option("key", set->key, "Key")->required();
  set->value_opt = set_cmd->add_option("value", set->value, "Value; \"-\" or none: read stdin");
  set_cmd->add_option("--ttl", set->ttl, "Time to live, 1ms to 24h, e.g. 30s, 10m, 2h; or forever")
      ->check(duration_validator(milliseconds(1), kMaxDuration, true))
      ->capture_default_str();

  CLI::App* get_cmd = scratch->add_subcommand("get", "Print a key's value.");
  get_cmd->footer(
      "Prints the value's exact bytes to a pipe or file; on a terminal, escape sequences and\n"
      "control characters are stripped. An absent or expired key exits with 4 and says which.\n"
      "--json prints one object: room, key, bytes, ttl_ms (null: no expiry), written, value\n"
      "(the value itself when it is JSON, else a string).\n\n"
      "Examples:\n"
      "  agentbus scratch get report:42 > report.json\n"
      "  agentbus scratch get plan --json | jq .ttl_ms\n"
      "  agentbus scratch get plan || echo \"no plan (exit $?)\"");
  get_cmd->add_option("key", get->key, "Key")->required();
  get_cmd->add_flag("--json", get->json, "One JSON object");

  CLI::App* rm_cmd = scratch->add_subcommand("rm", "Remove a key.");
  rm_cmd->footer(
      "Exits with 4 when the key was absent or had already expired.\n\n"
      "Example:\n"
      "  agentbus scratch rm report:42");
  rm_cmd->add_option("key", rm->key, "Key")->required();

  CLI::App* ls_cmd = scratch->add_subcommand("ls", "List keys with a live value: size, TTL left, key.");
  ls_cmd->footer(
      "Text: one line per key, sorted: size, time to live left ('-': no expiry), key.\n"
      "--json: one object per line: room, key, bytes, ttl_ms (null: no expiry), written.\n\n"
      "Examples:\n"
      "  agentbus scratch ls\n"
      "  agentbus --room api/dev scratch ls --json | jq -r .key");
  ls_cmd->add_flag("--json", *ls_json, "One JSON object per line");

  commands.push_back({set_cmd, [&g, set] { return run_set(g, *set); }});
  commands.push_back({get_cmd, [&g, get] { return run_get(g, *get); }});
  commands.push_back({rm_cmd, [&g, rm] { return run_rm(g, *rm); }});
  commands.push_back({ls_cmd, [&g, ls_json] { return run_ls(g, *ls_json); }});
}

}  // namespace agentbus::cli
