// cli_test.cpp — the `agentbus` binary end to end: exit codes, post/tail/info/destroy, JSON,
// terminal sanitising, room naming, follow mode and signals. Every test uses its own bus and
// destroys it afterwards.
#include "cli_process.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>

namespace {

using namespace std::chrono_literals;
using cli_test::CliCall;
using cli_test::CliProcess;
using cli_test::CliResult;
using cli_test::lines;

// One parsed JSON line; the parser owns the element's storage.
struct Json {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
};

std::unique_ptr<Json> parse_json(const std::string& text) {
  auto json = std::make_unique<Json>();
  const auto error = json->parser.parse(text).get(json->root);
  EXPECT_FALSE(error) << "not JSON: " << text;
  return error ? nullptr : std::move(json);
}

std::vector<std::unique_ptr<Json>> parse_json_lines(const std::string& text) {
  std::vector<std::unique_ptr<Json>> out;
  for (const std::string& line : lines(text)) out.push_back(parse_json(line));
  return out;
}

std::string str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  EXPECT_FALSE(e[key].get(v)) << key << " is not a string";
  return std::string(v);
}

std::uint64_t num(simdjson::dom::element e, const char* key) {
  std::uint64_t v = 0;
  EXPECT_FALSE(e[key].get(v)) << key << " is not an unsigned integer";
  return v;
}

bool is_null(simdjson::dom::element e, const char* key) { return e[key].is_null(); }

std::uint64_t parse_id(const CliResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex("[0-9]+\n"))) << "post printed: " << r.out;
  return r.out.empty() ? 0 : std::stoull(r.out);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { bus_ = agentbus::test::fresh_bus_name("clitest"); }
  void TearDown() override { agentbus::Bus::destroy(bus_); }

  // The CLI on this test's bus, in room `room_` unless the args name another.
  CliResult run(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                std::string stdin_data = {}) {
    return cli_test::run_cli({with_bus(std::move(args)), std::move(env), std::move(stdin_data), {}});
  }
  CliResult in_room(std::vector<std::string> args) {
    args.insert(args.begin(), {"--room", room_});
    return run(std::move(args));
  }
  std::uint64_t post(const std::string& type, const std::string& payload,
                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"post", type, payload};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_id(in_room(std::move(args)));
  }
  std::vector<std::string> with_bus(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--bus", bus_});
    return args;
  }

  std::string bus_;
  std::string room_ = "proj/main";
};

using cli_exit = CliTest;
using cli_post = CliTest;
using cli_tail = CliTest;
using cli_follow = CliTest;
using cli_room = CliTest;
using cli_info = CliTest;
using cli_destroy = CliTest;

// ---- exit codes ---------------------------------------------------------------------------

TEST_F(cli_exit, usage_errors_exit_2) {
  EXPECT_EQ(run({"--no-such-flag", "info"}).exit_code, 2);
  EXPECT_EQ(run({}).exit_code, 2);                        // a command is required
  EXPECT_EQ(run({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(in_room({"post"}).exit_code, 2);              // type is required
  EXPECT_EQ(in_room({"tail", "--count", "-3"}).exit_code, 2);
  EXPECT_EQ(in_room({"tail", "--timeout", "soon"}).exit_code, 2);
  EXPECT_EQ(run({"--ring-bytes", "100000", "--room", "r", "post", "x"}).exit_code, 2);
  const CliResult bad_from = in_room({"tail", "--from", "yesterday"});
  EXPECT_EQ(bad_from.exit_code, 2);
  EXPECT_NE(bad_from.err.find("--from"), std::string::npos) << bad_from.err;
}

TEST_F(cli_exit, bad_names_are_usage_errors_with_one_line) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--room", "a b", "post", "x"},
           {"--room", "../etc", "tail"},
           {"--repo", "r", "--branch", "fix\x1b[31m", "post", "x"}}) {
    const CliResult r = run(args);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  }
  const CliResult r = cli_test::run_cli({{"--bus", "a/b", "info"}, {}, {}, {}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(cli_exit, runtime_errors_exit_1_with_one_error_line) {
  const CliResult no_bus = run({"info"});
  EXPECT_EQ(no_bus.exit_code, 4);  // not found has its own code
  EXPECT_EQ(no_bus.err.rfind("error: ", 0), 0u) << no_bus.err;
  EXPECT_EQ(lines(no_bus.err).size(), 1u) << no_bus.err;
  EXPECT_TRUE(no_bus.out.empty());

  const CliResult too_long = in_room({"post", std::string(agentbus::kMaxTypeBytes + 1, 't')});
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_EQ(too_long.err.rfind("error: ", 0), 0u) << too_long.err;
  EXPECT_EQ(lines(too_long.err).size(), 1u) << too_long.err;
}

TEST_F(cli_exit, help_explains_commands_and_environment) {
  const CliResult top = run({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* word : {"post", "tail", "info", "destroy", "AGENTBUS_BUS", "AGENTBUS_ROOM",
                           "REPO_ID", "BRANCH_NAME", "AGENTBUS_AGENT", "Examples"})
    EXPECT_NE(top.out.find(word), std::string::npos) << word;
  for (const char* command : {"post", "tail", "info", "destroy"}) {
    const CliResult sub = run({command, "--help"});
    EXPECT_EQ(sub.exit_code, 0) << command;
    EXPECT_NE(sub.out.find("agentbus "), std::string::npos) << command << ": no example";
  }
}

TEST_F(cli_exit, full_room_exits_1_with_one_clear_line) {
  // A durable reader that never reads gates producers; fill the ring behind it.
  agentbus::BusOptions bus_options;
  bus_options.name = bus_;
  agentbus::Bus bus = agentbus::Bus::open(bus_options);
  agentbus::RoomOptions room_options;
  room_options.ring_bytes = 64 << 10;
  room_options.max_record_bytes = 16 << 10;
  room_options.publish_timeout = 10ms;
  agentbus::Room room = bus.room(room_, room_options);
  agentbus::SubscribeOptions sub_options;
  sub_options.durable_name = "stuck";
  sub_options.from = agentbus::StartFrom::earliest;
  agentbus::Subscription stuck = room.subscribe(sub_options);
  const std::string chunk(8 << 10, 'x');
  int published = 0;
  while (room.publish("fill", "test", chunk).ok()) ASSERT_LT(++published, 1000);

  const CliResult r = in_room({"post", "more", "payload"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("full"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// ---- post ---------------------------------------------------------------------------------

TEST_F(cli_post, prints_increasing_ids) {
  const std::uint64_t a = post("status", "one");
  const std::uint64_t b = post("status", "two");
  const std::uint64_t c = post("status", "");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(cli_post, dash_reads_payload_from_stdin_and_agent_comes_from_env) {
  const CliResult r = run({"--room", room_, "post", "note", "-"}, {{"AGENTBUS_AGENT", "envy"}},
                          "from stdin\n");
  const std::uint64_t id = parse_id(r);
  const CliResult t = in_room({"tail", "--json"});
  const auto events = parse_json_lines(t.out);
  ASSERT_EQ(events.size(), 1u) << t.out;
  EXPECT_EQ(num(events[0]->root, "id"), id);
  EXPECT_EQ(str(events[0]->root, "agent"), "envy");
  EXPECT_EQ(str(events[0]->root, "payload"), "from stdin\n");
}

// ---- tail (snapshot) ----------------------------------------------------------------------

TEST_F(cli_tail, json_has_every_field_with_iso_utc_timestamp) {
  const std::uint64_t ask = post("ASK", "who?", {"--agent", "alice"});
  const std::uint64_t reply =
      post("REPLY", "me", {"--agent", "bob", "--to", "alice", "--reply-to", std::to_string(ask)});
  const std::time_t now = std::time(nullptr);

  const CliResult r = in_room({"tail", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  ASSERT_EQ(events.size(), 2u) << r.out;
  const simdjson::dom::element first = events[0]->root;
  const simdjson::dom::element second = events[1]->root;
  EXPECT_EQ(num(first, "id"), ask);
  EXPECT_EQ(str(first, "type"), "ASK");
  EXPECT_EQ(str(first, "agent"), "alice");
  EXPECT_EQ(str(first, "room"), room_);
  EXPECT_TRUE(is_null(first, "to"));
  EXPECT_TRUE(is_null(first, "reply_to"));
  EXPECT_EQ(num(second, "id"), reply);
  EXPECT_EQ(str(second, "to"), "alice");
  EXPECT_EQ(num(second, "reply_to"), ask);
  EXPECT_EQ(str(second, "payload"), "me");

  const std::string ts = str(second, "ts");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      ts, m, std::regex(R"((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{9}Z)")))
      << ts;
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  EXPECT_LE(std::abs(static_cast<long>(timegm(&tm) - now)), 60) << ts << " is not UTC now";
}

TEST_F(cli_tail, json_and_text_show_where_an_imported_event_came_from) {
  {
    agentbus::Bus bus = agentbus::Bus::open({.name = bus_, .host_id = "hostB"});
    agentbus::Room room = bus.room(room_);
    agentbus::PublishOptions o;
    o.origin = agentbus::OriginRef{"hostA:main", 4096, {1700000000000, 5}};
    o.reply_to_origin = agentbus::OriginRef{"hostC", 128, {}};
    ASSERT_TRUE(room.publish("ASK", "alice", "from A", o).ok());
  }
  const std::uint64_t local = post("NOTE", "here", {"--agent", "bob"});

  // The snapshot (Room::recent) and the follower (a subscription) decode separately.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"tail", "--json"},
        std::vector<std::string>{"tail", "--json", "-f", "--from", "earliest", "--timeout", "300ms"}}) {
    SCOPED_TRACE(args.size());
    const CliResult r = in_room(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto events = parse_json_lines(r.out);
    ASSERT_EQ(events.size(), 2u) << r.out;
    simdjson::dom::element imported = events[0]->root, mine = events[1]->root;
    EXPECT_EQ(str(imported["origin"], "host"), "hostA:main");
    EXPECT_EQ(num(imported["origin"], "id"), 4096u);
    EXPECT_EQ(str(imported, "stream_id"), "1700000000000-5");
    EXPECT_EQ(str(imported["reply_to_origin"], "host"), "hostC");
    EXPECT_EQ(num(imported["reply_to_origin"], "id"), 128u);
    EXPECT_EQ(str(mine["origin"], "host"), "hostB");
    EXPECT_EQ(num(mine["origin"], "id"), local);
    EXPECT_TRUE(mine["stream_id"].error()) << r.out;
    EXPECT_TRUE(mine["reply_to_origin"].error()) << r.out;
  }
  const CliResult text = in_room({"tail"});
  EXPECT_NE(text.out.find(" alice@hostA:main\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(" bob\n"), std::string::npos) << text.out;
  const auto info = parse_json(run({"info", "--json"}).out);
  ASSERT_TRUE(info);
  EXPECT_EQ(str(info->root, "host_id"), "hostB");
  EXPECT_NE(run({"info"}).out.find("hostB"), std::string::npos);
}

TEST_F(cli_tail, payload_is_a_json_value_when_valid_else_a_string) {
  post("a", R"({"state": "idle", "n": [1, 2]})");
  post("b", "plain words");
  post("c", "17");
  post("d", "bad \x01 \xff bytes");
  const CliResult r = in_room({"tail", "--json"});
  const auto events = parse_json_lines(r.out);
  ASSERT_EQ(events.size(), 4u) << r.out;

  simdjson::dom::object object;
  ASSERT_FALSE(events[0]->root["payload"].get(object)) << r.out;
  std::string_view state;
  EXPECT_FALSE(object["state"].get(state));
  EXPECT_EQ(state, "idle");
  EXPECT_EQ(str(events[1]->root, "payload"), "plain words");
  EXPECT_EQ(num(events[2]->root, "payload"), 17u);
  EXPECT_EQ(str(events[3]->root, "payload"), "bad \x01 \xEF\xBF\xBD bytes");
}

TEST_F(cli_tail, text_mode_strips_escapes_and_controls) {
  const std::uint64_t id =
      post("status", "\x1b[31mred\x1b[0m\x1b]0;owned\x07 over\rwrite\x7f",
           {"--agent", "ev\x1b[2Jil", "--to", "bob"});
  const CliResult r = in_room({"tail"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char bad : {'\x1b', '\x07', '\r', '\x7f'})
    EXPECT_EQ(r.out.find(bad), std::string::npos) << "byte " << int(bad) << " in " << r.out;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 3u) << r.out;
  EXPECT_TRUE(std::regex_match(
      out[0], std::regex(std::to_string(id) + R"( +\d\d:\d\d:\d\d status +evil)")))
      << out[0];
  EXPECT_EQ(out[1], "  To: bob");
  EXPECT_EQ(out[2], "  red overwrite");
}

TEST_F(cli_tail, count_and_from_select_events) {
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(post("n", std::to_string(i)));
  auto ids_of = [](const CliResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::uint64_t> out;
    for (const auto& e : parse_json_lines(r.out)) out.push_back(num(e->root, "id"));
    return out;
  };
  EXPECT_EQ(ids_of(in_room({"tail", "--json", "-n", "2"})),
            (std::vector<std::uint64_t>{ids[3], ids[4]}));
  EXPECT_EQ(ids_of(in_room({"tail", "--json", "--from", "earliest"})), ids);
  EXPECT_EQ(ids_of(in_room({"tail", "--json", "--from", std::to_string(ids[2])})),
            (std::vector<std::uint64_t>{ids[2], ids[3], ids[4]}));
  EXPECT_EQ(ids_of(in_room({"tail", "--json", "--from", "earliest", "-n", "1"})),
            (std::vector<std::uint64_t>{ids[0]}));
  EXPECT_TRUE(ids_of(in_room({"tail", "--json", "--from", "latest"})).empty());
}

TEST_F(cli_tail, missing_bus_or_room_prints_nothing_and_creates_nothing) {
  const CliResult r = in_room({"tail"});
  EXPECT_EQ(r.exit_code, 4) << "no such bus, as info says: " << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + agentbus::segment_object_name(bus_)));

  post("x", "y");
  const CliResult other = run({"--room", "other/room", "tail"});
  EXPECT_EQ(other.exit_code, 0) << other.err;
  EXPECT_TRUE(other.out.empty());
  const CliResult info = run({"info", "--json"});
  EXPECT_NE(info.out.find("\"" + room_ + "\""), std::string::npos) << info.out;
  EXPECT_EQ(info.out.find("other/room"), std::string::npos) << info.out;
}

// ---- rooms --------------------------------------------------------------------------------

std::string room_of_last_event(const CliResult& tail) {
  const auto events = parse_json_lines(tail.out);
  return events.empty() ? std::string("<no event>") : str(events.back()->root, "room");
}

TEST_F(cli_room, repo_and_branch_flags_name_the_room) {
  parse_id(run({"--repo", "api", "--branch", "dev", "post", "x"}));
  EXPECT_EQ(room_of_last_event(run({"--room", "api/dev", "tail", "--json"})), "api/dev");
  EXPECT_TRUE(run({"--room", "api/main", "tail"}).out.empty());
}

TEST_F(cli_room, repo_id_and_branch_name_env) {
  const std::map<std::string, std::string> env{{"REPO_ID", "web"}, {"BRANCH_NAME", "feature/x"}};
  parse_id(run({"post", "x"}, env));
  EXPECT_EQ(room_of_last_event(run({"tail", "--json"}, env)), "web/feature/x");
  EXPECT_EQ(room_of_last_event(run({"--room", "web/feature/x", "tail", "--json"})),
            "web/feature/x");
}

TEST_F(cli_room, room_wins_over_repo_and_branch) {
  parse_id(run({"--room", "explicit", "--repo", "r", "post", "x"}, {{"REPO_ID", "q"}}));
  EXPECT_EQ(room_of_last_event(run({"--room", "explicit", "tail", "--json"})), "explicit");
  parse_id(run({"post", "y"}, {{"AGENTBUS_ROOM", "fromenv"}, {"REPO_ID", "q"}}));
  EXPECT_EQ(room_of_last_event(run({"--room", "fromenv", "tail", "--json"})), "fromenv");
}

TEST_F(cli_room, default_repo_is_the_directory_name_made_valid) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("my proj!" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  CliCall call{with_bus({"post", "x"}), {}, {}, dir.string()};
  parse_id(cli_test::run_cli(call));
  call.args = with_bus({"tail", "--json"});
  const std::string room = room_of_last_event(cli_test::run_cli(call));
  std::filesystem::remove(dir);
  EXPECT_EQ(room, "my-proj-" + std::to_string(getpid()) + "/main");
}

// ---- tail --follow ------------------------------------------------------------------------

auto has_line_with(const std::string& needle) {
  return [needle](const std::string& out) { return out.find(needle) != std::string::npos; };
}

TEST_F(cli_follow, sees_events_posted_after_it_started_and_exits_0_on_sigint) {
  post("before", "backlog-event");
  CliProcess tail({with_bus({"--room", room_, "tail", "--follow", "--timeout", "60s"}), {}, {}, {}});
  // The backlog is printed after subscribing, so seeing it proves the follower is live.
  ASSERT_TRUE(tail.wait_for_output(has_line_with("backlog-event"), 10s)) << tail.out() << tail.err();
  EXPECT_EQ(tail.out().find("live-event"), std::string::npos);
  post("after", "live-event");
  EXPECT_TRUE(tail.wait_for_output(has_line_with("live-event"), 10s)) << tail.out() << tail.err();
  tail.send_signal(SIGINT);
  EXPECT_EQ(tail.wait_exit(10s), std::optional<int>(0)) << tail.err();
  EXPECT_TRUE(tail.err().empty()) << tail.err();
}

TEST_F(cli_follow, from_earliest_json_then_sigterm) {
  const std::uint64_t first = post("one", "1");
  CliProcess tail({with_bus({"--room", room_, "tail", "-f", "--json", "--from", "earliest"}),
                   {}, {}, {}});
  ASSERT_TRUE(tail.wait_for_output(has_line_with("\"type\":\"one\""), 10s)) << tail.out();
  const std::uint64_t second = post("two", "{\"k\":2}");
  ASSERT_TRUE(tail.wait_for_output(has_line_with("\"type\":\"two\""), 10s)) << tail.out();
  tail.send_signal(SIGTERM);
  EXPECT_EQ(tail.wait_exit(10s), std::optional<int>(0)) << tail.err();
  const auto events = parse_json_lines(tail.out());
  ASSERT_EQ(events.size(), 2u) << tail.out();
  EXPECT_EQ(num(events[0]->root, "id"), first);
  EXPECT_EQ(num(events[1]->root, "id"), second);
}

TEST_F(cli_follow, closed_stdout_ends_it_quietly_with_0) {
  post("first", "x");
  CliProcess tail({with_bus({"--room", room_, "tail", "-f", "--timeout", "60s"}), {}, {}, {}});
  ASSERT_TRUE(tail.wait_for_output(has_line_with("first"), 10s)) << tail.out();
  tail.close_stdout();  // like `| head -1` exiting
  post("second", "y");  // the next write hits EPIPE
  EXPECT_EQ(tail.wait_exit(10s), std::optional<int>(0)) << tail.err();
  EXPECT_TRUE(tail.err().empty()) << tail.err();
}

// /proc/<pid>/stat's state field; 'T' once a SIGSTOP has taken effect.
char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  const std::size_t paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? '?' : text[paren + 2];
}

TEST_F(cli_follow, lapped_follower_warns_on_stderr_and_continues) {
  CliProcess tail({with_bus({"--room", room_, "--ring-bytes", "64KiB", "tail", "-f", "--json",
                             "--from", "earliest", "--timeout", "60s"}),
                   {}, {}, {}});
  post("hello", "1", {"--ring-bytes", "64KiB"});  // whichever creates the room, it is small
  ASSERT_TRUE(tail.wait_for_output(has_line_with("\"hello\""), 10s)) << tail.err();

  // Freeze the follower, lap it by publishing more than the ring holds, then let it go on.
  tail.send_signal(SIGSTOP);
  ASSERT_TRUE(tail.wait_until([&] { return process_state(tail.pid()) == 'T'; }, 10s));
  agentbus::BusOptions bus_options;
  bus_options.name = bus_;
  agentbus::Room room = agentbus::Bus::open(bus_options).room(room_);
  const std::string chunk(4 << 10, 'x');
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(room.publish("fill", "test", chunk).ok());
  tail.send_signal(SIGCONT);
  post("final", "2");

  EXPECT_TRUE(tail.wait_for_output(has_line_with("\"final\""), 10s)) << tail.err();
  std::smatch m;
  EXPECT_TRUE(std::regex_search(tail.err(), m,
                                std::regex("^warning: lapped by producers, ([0-9]+) events missed\n")))
      << tail.err();
  if (!m.empty()) {
    EXPECT_GT(std::stoull(m[1]), 0u);
  }
  tail.send_signal(SIGINT);
  EXPECT_EQ(tail.wait_exit(10s), std::optional<int>(0)) << tail.err();
}

TEST_F(cli_follow, timeout_ends_it_with_0) {
  const CliResult r = in_room({"tail", "-f", "--timeout", "200ms", "-n", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// ---- info, destroy ------------------------------------------------------------------------

TEST_F(cli_info, json_lists_the_room_and_its_tail) {
  const std::uint64_t id = post("x", "y");
  const CliResult r = run({"info", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(lines(r.out).size(), 1u) << r.out;
  const auto info = parse_json(r.out);
  ASSERT_TRUE(info);
  EXPECT_EQ(str(info->root, "bus"), bus_);
  EXPECT_GT(num(info->root, "segment_bytes"), 0u);
  EXPECT_GT(num(info->root, "max_rooms"), 0u);
  simdjson::dom::array rooms;
  ASSERT_FALSE(info->root["rooms"].get(rooms));
  bool found = false;
  for (simdjson::dom::element room : rooms) {
    if (str(room, "name") != room_) continue;
    found = true;
    EXPECT_GT(num(room, "tail"), id);
    EXPECT_GT(num(room, "ring_bytes"), 0u);
    simdjson::dom::object counters;
    EXPECT_FALSE(room["counters"].get(counters));
    simdjson::dom::array readers;
    EXPECT_FALSE(room["readers"].get(readers));
  }
  EXPECT_TRUE(found) << r.out;
}

TEST_F(cli_info, json_lists_a_follower_as_a_reader) {
  post("x", "y");
  CliProcess tail({with_bus({"--room", room_, "tail", "-f", "--timeout", "60s"}), {}, {}, {}});
  ASSERT_TRUE(tail.wait_for_output(has_line_with("x"), 10s)) << tail.err();
  const auto info = parse_json(run({"info", "--json"}).out);
  ASSERT_TRUE(info);
  int followers = 0;
  // get_array() throws (failing the test) if the shape is wrong.
  for (simdjson::dom::element room : info->root["rooms"].get_array()) {
    if (str(room, "name") != room_) continue;
    for (simdjson::dom::element reader : room["readers"].get_array()) {
      std::int64_t pid = 0;
      EXPECT_FALSE(reader["pid"].get(pid));
      if (pid != tail.pid()) continue;
      ++followers;
      bool alive = false;
      EXPECT_FALSE(reader["alive"].get(alive));
      EXPECT_TRUE(alive);
      EXPECT_EQ(num(reader, "cursor") + num(reader, "lag_bytes"), num(room, "tail"));
    }
  }
  EXPECT_EQ(followers, 1) << info->root;
  tail.send_signal(SIGINT);
  EXPECT_EQ(tail.wait_exit(10s), std::optional<int>(0));
}

TEST_F(cli_info, text_names_bus_and_room) {
  post("x", "y");
  const CliResult r = run({"info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("bus +" + bus_ + "\n"))) << r.out;
  EXPECT_NE(r.out.find("room " + room_ + "\n"), std::string::npos) << r.out;
}

TEST_F(cli_info, ring_bytes_applies_when_creating_the_room) {
  parse_id(run({"--ring-bytes", "128KiB", "--room", room_, "post", "x"}));
  const auto info = parse_json(run({"info", "--json"}).out);
  ASSERT_TRUE(info);
  simdjson::dom::array rooms;
  ASSERT_FALSE(info->root["rooms"].get(rooms));
  int matches = 0;
  for (simdjson::dom::element room : rooms) {
    if (str(room, "name") != room_) continue;
    ++matches;
    EXPECT_EQ(num(room, "ring_bytes"), 128u << 10);
  }
  EXPECT_EQ(matches, 1);
}

TEST_F(cli_destroy, removes_the_bus_and_says_so) {
  post("x", "y");
  const CliResult gone = run({"destroy"});
  EXPECT_EQ(gone.exit_code, 0) << gone.err;
  EXPECT_EQ(gone.out, "destroyed bus " + bus_ + "\n");
  EXPECT_EQ(run({"info"}).exit_code, 4);  // not found
  const CliResult again = run({"destroy"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "no bus " + bus_ + "\n");
}

}  // namespace
