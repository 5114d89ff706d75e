// Directed messages, the durable inbox and ask/reply: ordering, cursors, backpressure, crashed
// senders and askers, and real processes (the CLI) on both ends.
#include "bus/room_access.hpp"
#include "coord/inbox_layout.hpp"
#include "shm/process.hpp"
#include "shm/slot_table.hpp"
#include "support/child_process.hpp"
#include "support/expect.hpp"
#include "support/run_cli.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <thread>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::ChildProcess;
using agentbus::test::TestBus;
using agentbus::test::cli;
using agentbus::test::eventually;
using agentbus::test::expect_error;
using agentbus::test::run_cli;

namespace {

// A process that existed and is gone: its pid is dead.
std::uint32_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return static_cast<std::uint32_t>(pid);
}

struct Raw {
  coord::InboxHeader* header;
  coord::Recipient* recipients;
  std::byte* slots;
  coord::MessageSlot& slot(std::uint32_t i) const {
    return *reinterpret_cast<coord::MessageSlot*>(slots + i * header->slot_stride);
  }
  std::uint32_t recipient(std::string_view name) const {
    for (std::uint32_t i = 0; i < header->recipient_capacity; ++i)
      if (recipients[i].state.load() == coord::kRecipientReady &&
          std::string_view(recipients[i].name, recipients[i].name_len) == name)
        return i;
    ADD_FAILURE() << "no recipient " << name;
    return 0;
  }
};

Raw raw(Room& room) {
  auto region = shm::open_region(*RoomAccess::segment(room), room.name() + "#inbox", 0, false, [](std::span<std::byte>) {});
  auto* h = reinterpret_cast<coord::InboxHeader*>(region.data());
  return {h, reinterpret_cast<coord::Recipient*>(region.data() + h->recipients_offset), region.data() + h->slots_offset};
}

std::vector<std::string> payloads(const std::vector<InboxMessage>& msgs) {
  std::vector<std::string> out;
  for (const auto& m : msgs) out.push_back(m.payload);
  return out;
}

}  // namespace

TEST(Directed, ExcludesBroadcastsAndOtherRecipientsNewestFirst) {
  TestBus bus("dir");
  Room room = bus->room("r");
  const EventId a1 = room.publish("note", "x", "a1", {.to = "alice"}).id;
  room.publish("status", "x", "broadcast");
  room.publish("note", "x", "b1", {.to = "bob"});
  room.publish("note", "x", "alice-2 is someone else", {.to = "alice-2"});
  const EventId a2 = room.publish("REPLY", "y", "a2", {.to = "alice", .reply_to = a1}).id;
  const EventId a3 = room.publish("note", "z", "a3", {.to = "alice"}).id;

  const auto all = directed(room, "alice", 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, a3);
  EXPECT_EQ(all[1].id, a2);
  EXPECT_EQ(all[1].reply_to, a1);
  EXPECT_EQ(all[2].id, a1);
  const auto two = directed(room, "alice", 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].payload, "a3");
  EXPECT_EQ(two[1].payload, "a2");
  EXPECT_TRUE(directed(room, "carol", 10).empty());

  std::string out;
  ASSERT_EQ(run_cli(bus, {"directed", "--agent", "bob", "--json"}, &out), 0);
  EXPECT_NE(out.find("\"b1\""), std::string::npos) << out;
  EXPECT_EQ(out.find("broadcast"), std::string::npos) << out;
  EXPECT_EQ(out.find("a1"), std::string::npos) << out;
}

TEST(Inbox, MessageToAnOfflineAgentIsReadWhenItReturns) {
  TestBus bus("inbox-offline");
  {
    Inbox inbox(bus->room("r"));
    inbox.send("alice", "sleeper", "note", "first");
    inbox.send("bob", "sleeper", "note", "second \x1b[31mred");
    inbox.send("alice", "sleeper", "note", R"({"third":3})");
    inbox.send("alice", "someone-else", "note", "not for sleeper");
  }
  // The ring moves on: the inbox keeps its copies regardless.
  Room room = bus->room("r");
  for (int i = 0; i < 50; ++i) room.publish("chatter", "x", std::string(2000, 'c'));

  std::string out;
  ASSERT_EQ(run_cli(bus, {"inbox", "--agent", "sleeper"}, &out), 0);
  const auto p1 = out.find("first"), p2 = out.find("second"), p3 = out.find("third");
  ASSERT_NE(p1, std::string::npos) << out;
  ASSERT_NE(p2, std::string::npos) << out;
  ASSERT_NE(p3, std::string::npos) << out;
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "escape sequences must be stripped";
  EXPECT_EQ(out.find("not for sleeper"), std::string::npos);

  ASSERT_EQ(run_cli(bus, {"inbox", "--agent", "sleeper", "--json", "--ack", "-n", "2"}, &out), 0);
  EXPECT_NE(out.find("\"seq\":1"), std::string::npos) << out;
  EXPECT_NE(out.find("\"seq\":2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"from\":\"bob\""), std::string::npos) << out;
  ASSERT_EQ(run_cli(bus, {"inbox", "--agent", "sleeper", "--json", "--ack"}, &out), 0);
  EXPECT_NE(out.find("{\"third\":3}"), std::string::npos) << out;
  EXPECT_EQ(out.find("first"), std::string::npos) << out;
  ASSERT_EQ(run_cli(bus, {"inbox", "--agent", "sleeper"}, &out), 0);
  EXPECT_EQ(out, "");
  EXPECT_EQ(Inbox(room).cursor("sleeper"), 3u);
}

TEST(Inbox, CursorStartsAtTheBeginningAndAckMovesItForwardOnly) {
  TestBus bus("inbox-cursor");
  Room room = bus->room("r");
  Inbox inbox(room);
  EXPECT_TRUE(inbox.read("bob").empty());
  EXPECT_EQ(inbox.cursor("bob"), 0u);
  const EventId id1 = inbox.send("alice", "bob", "note", "m1");
  inbox.send("alice", "bob", "note", "m2", {.reply_to = id1});
  inbox.send("alice", "bob", "note", "m3");

  auto msgs = inbox.read("bob");
  ASSERT_EQ(payloads(msgs), (std::vector<std::string>{"m1", "m2", "m3"}));
  EXPECT_EQ(msgs[0].id, id1);
  EXPECT_EQ(msgs[0].from, "alice");
  EXPECT_EQ(msgs[0].to, "bob");
  EXPECT_EQ(msgs[1].reply_to, id1);
  EXPECT_EQ(inbox.read("bob").size(), 3u) << "read does not move the cursor";
  EXPECT_EQ(payloads(inbox.read("bob", 1)), std::vector<std::string>{"m1"});

  // The room holds the same event, directed.
  const auto in_room = room.recent(3);
  ASSERT_EQ(in_room.size(), 3u);
  EXPECT_EQ(in_room[0].id, id1);
  EXPECT_EQ(in_room[0].to, "bob");

  EXPECT_EQ(inbox.ack("bob", msgs[1].seq), 2u);
  EXPECT_EQ(payloads(inbox.read("bob")), std::vector<std::string>{"m3"});
  EXPECT_EQ(inbox.ack("bob", 1), 2u) << "never backwards";
  EXPECT_EQ(inbox.ack("bob", 1000), 3u) << "acks only what exists";
  EXPECT_TRUE(inbox.read("bob").empty());
  inbox.send("alice", "bob", "note", "m4");
  msgs = inbox.read("bob");
  ASSERT_EQ(payloads(msgs), std::vector<std::string>{"m4"});
  EXPECT_EQ(msgs[0].seq, 4u);
  EXPECT_EQ(inbox.counters().held, 1u);
  EXPECT_EQ(inbox.counters().stored, 4u);
}

TEST(Inbox, FullInboxIsNoSpaceAndNothingIsPublished) {
  TestBus bus("inbox-full");
  Room room = bus->room("r");
  Inbox inbox(room, {.capacity = 6, .per_recipient = 4, .max_payload_bytes = 64});
  for (int i = 0; i < 4; ++i) inbox.send("alice", "bob", "note", "m" + std::to_string(i));
  const EventId tail = RoomAccess::ring(room).tail();
  expect_error([&] { inbox.send("alice", "bob", "note", "m4"); }, Errc::no_space, "inbox of 'bob' is full");
  EXPECT_EQ(RoomAccess::ring(room).tail(), tail) << "a refused message must not be published";
  expect_error([&] { inbox.send("alice", "bob", "note", std::string(65, 'x')); }, Errc::too_large, "64");
  inbox.send("alice", "carol", "note", "c0");
  inbox.send("alice", "carol", "note", "c1");
  expect_error([&] { inbox.send("alice", "dave", "note", "d0"); }, Errc::no_space, "hold 6 messages");
  EXPECT_EQ(inbox.counters().full_refusals, 2u);
  EXPECT_EQ(inbox.read("bob").size(), 4u) << "nothing dropped";

  inbox.ack("bob", 2);  // frees two
  inbox.send("alice", "dave", "note", "d0");
  inbox.send("alice", "bob", "note", "m4");
  EXPECT_EQ(payloads(inbox.read("bob")), (std::vector<std::string>{"m2", "m3", "m4"}));
  EXPECT_EQ(payloads(inbox.read("dave")), std::vector<std::string>{"d0"});
}

TEST(Inbox, ManySenderThreadsLoseNothingAndKeepPerSenderOrder) {
  TestBus bus("inbox-threads");
  Room room = bus->room("r");
  Inbox inbox(room, {.capacity = 64, .per_recipient = 64});
  constexpr int kSenders = 6, kEach = 300;
  std::atomic<bool> failed{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < kSenders; ++t)
    senders.emplace_back([&, t] {
      Inbox mine(room);
      for (int i = 0; i < kEach && !failed; ++i) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {  // a full inbox is backpressure: retry until the reader makes room
          try {
            mine.send("s" + std::to_string(t), "sink", "n", std::to_string(t) + ":" + std::to_string(i));
            break;
          } catch (const Error& e) {
            if (e.code() != Errc::no_space || std::chrono::steady_clock::now() > deadline) {
              failed = true;
              return;
            }
            std::this_thread::yield();
          }
        }
      }
    });
  std::map<int, int> last;
  int received = 0;
  std::uint64_t last_seq = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (received < kSenders * kEach && !failed && std::chrono::steady_clock::now() < deadline) {
    const auto msgs = inbox.read("sink", 50);
    for (const auto& m : msgs) {
      EXPECT_EQ(m.seq, last_seq + 1) << "seqs are consecutive";
      last_seq = m.seq;
      const int t = std::stoi(m.payload.substr(0, m.payload.find(':')));
      const int i = std::stoi(m.payload.substr(m.payload.find(':') + 1));
      EXPECT_EQ(m.from, "s" + std::to_string(t));
      const auto it = last.find(t);
      EXPECT_EQ(i, it == last.end() ? 0 : it->second + 1) << "per-sender order, nothing lost";
      last[t] = i;
      ++received;
    }
    if (!msgs.empty()) inbox.ack("sink", msgs.back().seq);
    else std::this_thread::yield();
  }
  for (auto& s : senders) s.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(received, kSenders * kEach);
  EXPECT_TRUE(inbox.read("sink").empty());
}

TEST(Inbox, ManySenderProcessesLoseNothingAndKeepPerSenderOrder) {
  TestBus bus("inbox-procs");
  Room room = bus->room("r");
  Inbox inbox(room);  // default capacity: 256 per recipient, so nothing waits here
  constexpr int kProcs = 4, kEach = 60;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      try {
        Bus b = Bus::open({.name = bus.name()});
        Inbox box(b.room("r"));
        for (int i = 0; i < kEach; ++i) box.send("p" + std::to_string(p), "sink", "n", std::to_string(p) + ":" + std::to_string(i));
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(k, &status, 0), k);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto msgs = inbox.read("sink", 1000);
  ASSERT_EQ(msgs.size(), std::size_t(kProcs * kEach));
  std::map<int, int> last;
  for (const auto& m : msgs) {
    const int p = std::stoi(m.payload.substr(0, m.payload.find(':')));
    const int i = std::stoi(m.payload.substr(m.payload.find(':') + 1));
    const auto it = last.find(p);
    EXPECT_EQ(i, it == last.end() ? 0 : it->second + 1);
    last[p] = i;
  }
  EXPECT_EQ(last.size(), std::size_t(kProcs));
}

TEST(Inbox, SenderKilledMidStoreNeitherWedgesASlotNorBlocksTheReader) {
  TestBus bus("inbox-dead");
  Room room = bus->room("r");
  Inbox inbox(room, {.capacity = 2, .per_recipient = 2});
  inbox.send("alice", "bob", "note", "m1");
  Raw r = raw(room);
  const std::uint32_t bob = r.recipient("bob");
  // Slot 1 (the free one) as a sender left it when killed after taking seq 2.
  std::uint32_t free_slot = coord::slot_phase(r.slot(0).state.load()) == coord::SlotPhase::free ? 0 : 1;
  coord::MessageSlot& s = r.slot(free_slot);
  const std::uint64_t gen = coord::slot_gen(s.state.load());
  s.recipient.store(bob + 1);
  s.seq.store(2);
  r.recipients[bob].next_seq.store(3);
  s.state.store(coord::slot_state(coord::SlotPhase::reserved, gen + 1, shm::self_process()));
  // While its (live) sender is storing seq 2, nothing after it is readable or ackable.
  EXPECT_EQ(payloads(inbox.read("bob")), std::vector<std::string>{"m1"});
  EXPECT_EQ(inbox.ack("bob", 5), 1u);
  // The sender dies: seq 2 is skipped, and its slot is taken back by the next sender.
  s.state.store(coord::slot_state(coord::SlotPhase::reserved, gen + 1, {dead_pid()}));
  inbox.send("alice", "bob", "note", "m3");  // takes m1's acknowledged slot
  inbox.send("alice", "bob", "note", "m4");  // needs the dead sender's slot
  const auto msgs = inbox.read("bob");
  ASSERT_EQ(payloads(msgs), (std::vector<std::string>{"m3", "m4"}));
  EXPECT_EQ(msgs[0].seq, 3u);
  EXPECT_EQ(msgs[1].seq, 4u);
  EXPECT_EQ(inbox.counters().dead_writers_reclaimed, 1u);
}

// A sender process killed while it claims a new recipient's entry (the claim table's steps):
// the next sender takes the entry over, and the other recipients keep their messages.
TEST(Inbox, SenderKilledWhileClaimingARecipientLeavesItRecoverable) {
  TestBus bus("inbox-claimcrash");
  Room room = bus->room("r");
  Inbox inbox(room);
  inbox.send("alice", "bob", "note", "kept");
  Raw r = raw(room);
  for (const std::string recipient : {"carol", "dave"}) {
    const std::string step = recipient == "carol" ? "claim_after_cas" : "claim_before_ready";
    ChildProcess sender({cli(), "--bus", bus.name(), "--room", "r", "post", "note", "lost", "--agent", "alice",
                         "--to", recipient},
                        {"AGENTBUS_FAILPOINTS=" + step + "=kill"});
    ASSERT_EQ(sender.wait(10s), 128 + SIGKILL) << step;
    std::uint32_t left = r.header->recipient_capacity;
    for (std::uint32_t i = 0; i < r.header->recipient_capacity; ++i)
      if (shm::ClaimWord::pid(r.recipients[i].state.load()) == static_cast<std::uint32_t>(sender.pid())) left = i;
    ASSERT_LT(left, r.header->recipient_capacity) << "no entry left mid-claim at " << step;
    EXPECT_TRUE(inbox.read(recipient).empty());  // a read neither waits for nor takes it
    EXPECT_EQ(shm::ClaimWord::pid(r.recipients[left].state.load()), static_cast<std::uint32_t>(sender.pid()));
    inbox.send("alice", recipient, "note", "arrived");
    EXPECT_EQ(r.recipient(recipient), left) << "the dead sender's entry was not taken over";
    EXPECT_EQ(payloads(inbox.read(recipient)), std::vector<std::string>{"arrived"});
  }
  EXPECT_EQ(payloads(inbox.read("bob")), std::vector<std::string>{"kept"});
}

TEST(Inbox, CorruptHeaderIsRefused) {
  TestBus bus("inbox-corrupt");
  Room room = bus->room("r");
  { Inbox inbox(room); }
  raw(room).header->capacity = 1u << 30;
  expect_error([&] { Inbox again(room); }, Errc::corrupt, "destroy");
  raw(room).header->magic = 0;
  expect_error([&] { Inbox again(room); }, Errc::corrupt, "bad header");
  TestBus other("inbox-absent");
  expect_error([&] { Inbox none(other->room("r"), {.create = false}); }, Errc::not_found, "no inbox");
}

TEST(Ask, RoundTripWithAnAnsweringProcess) {
  TestBus bus("ask-roundtrip");
  Room room = bus->room("r");
  Presence presence(room);
  const std::string bob = presence.join("bob", "answerer", "questions");
  const std::string base = cli() + " --bus " + bus.name() + " --room r";
  // The answerer: polls its inbox through the CLI until an ASK is there, then replies.
  const std::string script =
      "for i in $(seq 1 1000); do id=$(" + base + " inbox --agent " + bob +
      " --json --ack | sed -n 's/.*\"id\":\\([0-9]*\\).*\"type\":\"ASK\".*/\\1/p' | head -n 1); "
      "[ -n \"$id\" ] && exec " + base + " reply \"$id\" 'forty-two' --agent " + bob + "; sleep 0.01; done; exit 9";
  ChildProcess answerer({"/bin/sh", "-c", script});
  Inbox inbox(room);
  const Event reply = inbox.ask("alice", "bob", "what is the answer?", 10s);
  EXPECT_EQ(reply.type, "REPLY");
  EXPECT_EQ(reply.payload, "forty-two");
  EXPECT_EQ(reply.agent, bob);
  EXPECT_EQ(reply.to, "alice");
  ASSERT_TRUE(reply.reply_to);
  const std::string printed = answerer.read_line(10s);
  EXPECT_EQ(printed, std::to_string(reply.id)) << "reply prints the reply's event id";
  EXPECT_EQ(answerer.wait(10s), 0);
  const auto asks = directed(room, bob, 1);
  ASSERT_EQ(asks.size(), 1u);
  EXPECT_EQ(asks[0].type, "ASK");
  EXPECT_EQ(*reply.reply_to, asks[0].id);

  // The same through the CLI on the asking side.
  ChildProcess answerer2({"/bin/sh", "-c", script});
  std::string out;
  ASSERT_EQ(run_cli(bus, {"ask", "bob", "again?", "--agent", "carol", "--timeout", "10s"}, &out), 0);
  EXPECT_EQ(out, "forty-two\n");
  EXPECT_EQ(answerer2.wait(10s), 0);
}

TEST(Ask, TimesOutWithAClearError) {
  TestBus bus("ask-timeout");
  Room room = bus->room("r");
  const std::string mute = Presence(room).join("mute", "silent", "");
  Inbox inbox(room);
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { (void)inbox.ask("alice", mute, "hello?", 200ms); }, Errc::timeout, "no reply from '" + mute);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(inbox.read(mute).size(), 1u) << "the ASK waits in the inbox";
  std::string out;
  EXPECT_EQ(run_cli(bus, {"ask", "mute", "hello?", "--agent", "alice", "--timeout", "200ms"}, &out), 1);
}

TEST(Ask, AbsentHandleIsNotFound) {
  TestBus bus("ask-absent");
  Room room = bus->room("r");
  Inbox inbox(room);
  expect_error([&] { (void)inbox.ask("alice", "ghost", "anyone?", 1s); }, Errc::not_found, "'ghost'");
  Presence(room).join("someone", "", "");
  expect_error([&] { (void)inbox.ask("alice", "ghost", "anyone?", 1s); }, Errc::not_found, "'ghost' is not present");
  EXPECT_EQ(run_cli(bus, {"ask", "ghost", "anyone?", "--agent", "alice", "--timeout", "1s"}), 4);
  EXPECT_TRUE(inbox.read("ghost").empty()) << "nothing is sent to an absent agent";
}

TEST(Ask, SecondConcurrentAskBySameAgentConflictsAndDeadAskIsReclaimed) {
  TestBus bus("ask-conflict");
  Room room = bus->room("r");
  const std::string mute = Presence(room).join("mute", "", "");
  Inbox inbox(room);
  std::optional<Event> first;
  std::thread asker([&] { first = inbox.ask("alice", mute, "one", 10s); });
  std::vector<InboxMessage> pending;
  ASSERT_TRUE(eventually([&] { return !(pending = inbox.read(mute)).empty(); }));
  expect_error([&] { (void)inbox.ask("alice", mute, "two", 1s); }, Errc::conflict, "already has an ask pending");
  // Another agent may ask meanwhile (it times out here).
  expect_error([&] { (void)inbox.ask("bob", mute, "three", 50ms); }, Errc::timeout, "no reply");
  const EventId reply_id = inbox.reply(mute, pending[0].id, "done");
  asker.join();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, reply_id);
  EXPECT_EQ(first->payload, "done");

  // A dead asker's pending ask does not block the next one.
  Raw r = raw(room);
  r.recipients[r.recipient("alice")].ask_owner.store(shm::pack_owner({dead_pid(), 12345}));
  expect_error([&] { (void)inbox.ask("alice", mute, "four", 50ms); }, Errc::timeout, "no reply");
  EXPECT_EQ(inbox.counters().asks_reclaimed, 1u);
}

TEST(Ask, ReplyRefusesWhatIsNotAnAsk) {
  TestBus bus("ask-reply");
  Room room = bus->room("r");
  Inbox inbox(room);
  const EventId note = inbox.send("alice", "bob", "note", "not a question");
  expect_error([&] { (void)inbox.reply("bob", note, "?"); }, Errc::invalid_argument, "not an ASK");
  expect_error([&] { (void)inbox.reply("bob", note + 8, "?"); }, Errc::not_found, "no event");
  // An ASK found in the room (not in the replier's inbox) is answered too.
  const EventId ask = room.publish("ASK", "carol", "q", {.to = "bob"}).id;
  const EventId rep = inbox.reply("bob", ask, "a");
  const auto got = inbox.read("carol");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, rep);
  EXPECT_EQ(got[0].reply_to, ask);
  std::string out;
  EXPECT_EQ(run_cli(bus, {"reply", std::to_string(note), "x", "--agent", "bob"}, &out), 1);
}

TEST(Inbox, DeliverToInboxStoresAnAlreadyPublishedEvent) {
  TestBus bus("inbox-deliver");
  Room room = bus->room("r");
  // What `agentbus post T P --to bob --reply-to X` does: publish, then store the copy.
  const PublishResult r = room.publish("REVIEW_REQUEST", "fixer-1", "pr 42", {.to = "bob", .reply_to = 8});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(deliver_to_inbox(room, r.id, "fixer-1", "bob", "REVIEW_REQUEST", "pr 42", 8), 1u);
  const auto got = Inbox(room).read("bob");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, r.id);
  EXPECT_EQ(got[0].type, "REVIEW_REQUEST");
  EXPECT_EQ(got[0].from, "fixer-1");
  EXPECT_EQ(got[0].reply_to, 8u);
  expect_error([&] { (void)deliver_to_inbox(room, r.id, "fixer-1", "", "T", "p"); }, Errc::invalid_argument, "empty");
}

// `agentbus post --to` is a directed message: published, and kept in the recipient's inbox.
TEST(Inbox, CliPostToLandsInTheRecipientsInbox) {
  TestBus bus("inbox-post-to");
  std::string id, listing;
  ASSERT_EQ(run_cli(bus, {"post", "NOTE", "review my branch", "--agent", "alice", "--to", "bob"}, &id), 0);
  ASSERT_EQ(run_cli(bus, {"post", "chat", "to everyone", "--agent", "alice"}), 0);  // a broadcast
  Room room = bus->room("r");
  Inbox inbox(room);
  const auto messages = inbox.read("bob", 10);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].payload, "review my branch");
  EXPECT_EQ(messages[0].from, "alice");
  const auto events = room.recent(10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].to, "bob");
  ASSERT_EQ(run_cli(bus, {"inbox", "--agent", "bob"}, &listing), 0);
  EXPECT_NE(listing.find("review my branch"), std::string::npos) << listing;
}

// A name longer than an entry can hold is refused, and reading never writes an entry.
TEST(Inbox, OverlongRecipientNameIsRefusedAndReadsCreateNothing) {
  TestBus bus("inbox-names");
  Room room = bus->room("r");
  Inbox inbox(room);
  expect_error([&] { (void)inbox.read(std::string(200, 'x'), 10); }, Errc::bad_name, "bytes");
  expect_error([&] { (void)inbox.send("alice", std::string(200, 'x'), "NOTE", "hi"); }, Errc::too_large, "limit");
  EXPECT_TRUE(inbox.read("nobody", 10).empty());
  EXPECT_EQ(inbox.counters().stored, 0u);
}
