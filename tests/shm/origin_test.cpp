// Origins (issue 11, item 1): where an event was first published, carried in the record of an
// imported event and implied for a local one; the host id of a bus; damaged origin blocks.
#include "shm/layout.hpp"
#include "support/expect.hpp"
#include "support/ring_of.hpp"
#include "support/test_bus.hpp"

#include <agentbus/agentbus.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <unistd.h>

using namespace agentbus;
using namespace std::chrono_literals;
using agentbus::test::expect_error;
using agentbus::test::ring_of;
using agentbus::test::TestBus;
using agentbus::test::unique_bus_name;

namespace {

constexpr StreamId kStream{1700000000123, 7};

PublishOptions imported_from_a() {
  PublishOptions o;
  o.to = "bob";
  o.reply_to = 64;
  o.origin = OriginRef{"hostA:main", 4096, kStream};
  o.reply_to_origin = OriginRef{"hostB:other", 512, {}};
  return o;
}

void expect_imported_fields(const EventView& e) {
  EXPECT_EQ(e.type, "ASK");
  EXPECT_EQ(e.agent, "alice");
  EXPECT_EQ(e.to, "bob");
  EXPECT_EQ(e.reply_to, std::optional<EventId>(64));
  EXPECT_EQ(e.payload, "hello from A");
  EXPECT_TRUE(e.imported);
  EXPECT_EQ(e.origin.host, "hostA:main");
  EXPECT_EQ(e.origin.id, 4096u);
  EXPECT_EQ(e.origin.stream, kStream);
  ASSERT_TRUE(e.reply_to_origin.has_value());
  EXPECT_EQ(e.reply_to_origin->host, "hostB:other");
  EXPECT_EQ(e.reply_to_origin->id, 512u);
}

// Restores an environment variable when the test ends.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1); else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string hostname() {
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  return h;
}

}  // namespace

TEST(Origin, ImportedEventCarriesItsOriginToEveryKindOfReader) {
  TestBus bus("origin-read");
  Room room = bus->room("r");
  const PublishResult p = room.publish("ASK", "alice", "hello from A", imported_from_a());
  ASSERT_TRUE(p.ok());

  Subscription tailer = room.subscribe({.from = StartFrom::earliest});
  ReadResult r = tailer.next(1s);
  ASSERT_TRUE(r.has_event());
  EXPECT_EQ(r.event.id, p.id);
  expect_imported_fields(r.event);

  Subscription durable = room.subscribe({.from = StartFrom::earliest, .durable_name = "importer-test"});
  r = durable.next(1s);
  ASSERT_TRUE(r.has_event());
  expect_imported_fields(r.event);
  durable.close();
  room.drop_reader("importer-test");

  const std::vector<Event> recent = room.recent(1);
  ASSERT_EQ(recent.size(), 1u);
  expect_imported_fields(recent[0].view());
  expect_imported_fields(recent[0].view().to_owned().view());  // owned and viewed round trip
}

TEST(Origin, LocalEventsNameThisBusAndTheirOwnId) {
  TestBus bus("origin-local", {.host_id = "local-host.1"});
  EXPECT_EQ(bus->host_id(), "local-host.1");
  EXPECT_EQ(bus->info().host_id, "local-host.1");
  Room room = bus->room("r");
  const PublishResult p = room.publish("NOTE", "carol", "here");
  Subscription sub = room.subscribe({.from = StartFrom::earliest});
  const ReadResult r = sub.next(1s);
  ASSERT_TRUE(r.has_event());
  EXPECT_FALSE(r.event.imported);
  EXPECT_EQ(r.event.origin.host, "local-host.1");
  EXPECT_EQ(r.event.origin.id, p.id);
  EXPECT_TRUE(r.event.origin.stream.empty());
  EXPECT_FALSE(r.event.reply_to_origin.has_value());
  const Event owned = room.recent(1).at(0);
  EXPECT_EQ(owned.origin.host, "local-host.1");
  EXPECT_EQ(owned.origin.id, p.id);
  EXPECT_FALSE(owned.imported);
}

TEST(Origin, LocalRecordsAreNoLargerThanBefore) {
  TestBus bus("origin-size");
  Room room = bus->room("r");
  const PublishResult a = room.publish("T", "ag", "12345678");
  const PublishResult b = room.publish("T", "ag", "12345678");
  EXPECT_EQ(b.id - a.id, shm::align8(shm::kRecordHeaderBytes + 1 + 2 + 8));
  PublishOptions o;
  o.origin = OriginRef{"h", 1, {}};
  const PublishResult c = room.publish("T", "ag", "12345678", o);
  const PublishResult d = room.publish("T", "ag", "12345678");
  EXPECT_EQ(d.id - c.id, shm::align8(shm::kRecordHeaderBytes + shm::kOriginBlockBytes + 1 + 1 + 2 + 8));
}

TEST(Origin, TheOriginCountsAgainstTheRoomsMaxRecord) {
  TestBus bus("origin-max");
  Room room = bus->room("r", {.ring_bytes = 64 << 10, .max_record_bytes = 1024});
  const std::string fits_local(1024 - shm::kRecordHeaderBytes - 1 - 1, 'x');
  EXPECT_TRUE(room.publish("T", "a", fits_local).ok());
  PublishOptions o;
  o.origin = OriginRef{"hostA", 1, {}};
  expect_error([&] { (void)room.publish("T", "a", fits_local, o); }, Errc::too_large,
               "max " + std::to_string(fits_local.size() - shm::kOriginBlockBytes - 5) + " bytes");
}

TEST(Origin, HostIdsAndOriginsAreValidated) {
  expect_error([] { (void)Bus::open({.name = unique_bus_name("h"), .host_id = "has space"}); }, Errc::bad_name,
               "contains ' '");
  expect_error([] { (void)Bus::open({.name = unique_bus_name("h"), .host_id = std::string(65, 'h')}); },
               Errc::bad_name, "65 bytes");
  {
    ScopedEnv env("AGENTBUS_HOST_ID", "bad/host");
    expect_error([] { (void)Bus::open({.name = unique_bus_name("h")}); }, Errc::bad_name, "$AGENTBUS_HOST_ID");
  }
  TestBus bus("origin-valid");
  Room room = bus->room("r");
  PublishOptions o;
  o.origin = OriginRef{"", 1, {}};
  expect_error([&] { (void)room.publish("T", "a", "p", o); }, Errc::bad_name, "host id is empty");
  o.origin = OriginRef{"ok", 1, {}};
  o.reply_to_origin = OriginRef{"not-ok\n", 2, {}};
  expect_error([&] { (void)room.publish("T", "a", "p", o); }, Errc::bad_name, "byte 0x0a");
  PublishOptions reply_only;
  reply_only.reply_to_origin = OriginRef{"ok", 2, {}};
  expect_error([&] { (void)room.publish("T", "a", "p", reply_only); }, Errc::invalid_argument, "with an origin");
  EXPECT_EQ(room.recent(10).size(), 0u);
}

TEST(Origin, HostIdPrecedenceIsOptionThenEnvironmentThenHostnameAndBus) {
  ScopedEnv unset("AGENTBUS_HOST_ID", nullptr);
  {
    TestBus plain("origin-default");
    EXPECT_EQ(plain->host_id(), hostname() + ":" + plain.name());
  }
  ScopedEnv env("AGENTBUS_HOST_ID", "from-env");
  {
    TestBus from_env("origin-env");
    EXPECT_EQ(from_env->host_id(), "from-env");
  }
  TestBus from_option("origin-opt", {.host_id = "from-option"});
  EXPECT_EQ(from_option->host_id(), "from-option");
  // Opening an existing bus never changes its host id.
  const Bus again = Bus::open({.name = from_option.name(), .host_id = "someone-else"});
  EXPECT_EQ(again.host_id(), "from-option");
}

TEST(Origin, DefaultHostIdOfALongBusNameStillFitsAndStaysDistinct) {
  ScopedEnv unset("AGENTBUS_HOST_ID", nullptr);
  const std::string stem(100, 'b');
  TestBus one(stem + "1");
  TestBus two(stem + "2");
  EXPECT_LE(one->host_id().size(), kMaxHostIdBytes);
  EXPECT_NE(one->host_id(), two->host_id());
  EXPECT_NO_THROW(validate_host_id(one->host_id()));
}

// A foreign write into the origin block: every reader skips the record, none crashes, and the
// events after it are read.
TEST(Origin, ADamagedOriginBlockIsAnUnreadableRecordNotACrash) {
  struct Damage {
    const char* what;
    void (*apply)(shm::OriginBlock&);
  };
  const Damage damages[] = {
      {"host longer than the record", [](shm::OriginBlock& b) { b.host_len = 255; }},
      {"reply host longer than the record",
       [](shm::OriginBlock& b) { b.reply_host_len = 64, b.origin_flags = shm::kOriginHasReplyOrigin; }},
      {"empty host", [](shm::OriginBlock& b) { b.host_len = 0; }},
      {"reply flag without a reply host", [](shm::OriginBlock& b) { b.origin_flags = shm::kOriginHasReplyOrigin; }},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    TestBus bus("origin-corrupt");
    Room room = bus->room("r");
    PublishOptions o;
    o.origin = OriginRef{"hostA", 1, {}};
    const PublishResult bad = room.publish("T", "a", "", o);
    const PublishResult good = room.publish("T", "a", "after");
    auto* rec = const_cast<std::byte*>(ring_of(room).at(bad.id));
    shm::OriginBlock block;
    std::memcpy(&block, rec + shm::kRecordHeaderBytes, sizeof block);
    d.apply(block);
    std::memcpy(rec + shm::kRecordHeaderBytes, &block, sizeof block);

    Subscription sub = room.subscribe({.from = StartFrom::earliest});
    ReadResult r = sub.next(1s);
    EXPECT_EQ(r.status, ReadStatus::skipped);
    r = sub.next(1s);
    ASSERT_TRUE(r.has_event());
    EXPECT_EQ(r.event.id, good.id);
    EXPECT_EQ(r.event.payload, "after");

    const RecentEvents recent = room.recent_events(10);
    EXPECT_EQ(recent.unreadable, 1u);
    ASSERT_EQ(recent.events.size(), 1u);
    EXPECT_EQ(recent.events[0].id, good.id);
  }
}

TEST(StreamIdText, ParsesOnlyMsDashSeqAndOrdersByBoth) {
  EXPECT_EQ(StreamId::parse("1700000000123-7"), std::optional<StreamId>(kStream));
  EXPECT_EQ(kStream.to_string(), "1700000000123-7");
  EXPECT_EQ(StreamId::parse("0-0")->empty(), true);
  EXPECT_EQ(StreamId::parse("18446744073709551615-1")->ms, 18446744073709551615ull);
  for (const char* bad : {"", "-", "1-", "-1", "1", "1-2-3", "1-2x", " 1-2", "+1-2", "1--2", "18446744073709551616-0", "a-b"})
    EXPECT_FALSE(StreamId::parse(bad).has_value()) << bad;
  EXPECT_LT((StreamId{1, 9}), (StreamId{2, 0}));
  EXPECT_LT((StreamId{2, 0}), (StreamId{2, 1}));
}
