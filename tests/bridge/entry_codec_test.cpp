// The entry codec: round trips, and every way an untrusted entry can be wrong.
#include "bridge/entry_codec.hpp"

#include <gtest/gtest.h>

#include <random>

namespace agentbus::bridge {
namespace {

constexpr std::size_t kPayloadLimit = 16 * 1024;

// One element of an entry's field array, as Redis would send it.
struct Item {
  enum Kind { bulk, integer, nil, array, status } kind = bulk;
  std::string text;
};

std::string resp(const std::vector<Item>& items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const Item& item : items) {
    switch (item.kind) {
      case Item::bulk: out += "$" + std::to_string(item.text.size()) + "\r\n" + item.text + "\r\n"; break;
      case Item::integer: out += ":42\r\n"; break;
      case Item::nil: out += "$-1\r\n"; break;
      case Item::array: out += "*1\r\n$1\r\nx\r\n"; break;
      case Item::status: out += "+OK\r\n"; break;
    }
  }
  return out;
}

std::vector<Item> items_of(const std::vector<std::string>& flat) {
  std::vector<Item> items;
  for (const std::string& s : flat) items.push_back({Item::bulk, s});
  return items;
}

DecodedEntry decode(const std::vector<Item>& items, std::size_t limit = kPayloadLimit) {
  const std::optional<RedisReply> reply = parse_resp(resp(items));
  EXPECT_TRUE(reply.has_value());
  return decode_entry_fields(reply ? reply->view() : ReplyView(), limit);
}

StreamEvent sample() {
  StreamEvent e;
  e.type = "note";
  e.agent = "alice";
  e.to = "bob";
  e.payload = std::string("bin\0ary\r\n", 9);
  e.ts_ns = 1'764'000'000'123'456'789;
  e.origin = {"host-a:main", 4096};
  e.reply_to_origin = EntryOrigin{"host-b", 128};
  e.reply_to = "1764000000123-7";
  return e;
}

std::vector<Item> with(std::vector<Item> items, const std::string& field, std::string value) {
  for (std::size_t i = 0; i + 1 < items.size(); i += 2)
    if (items[i].text == field) items[i + 1] = {Item::bulk, std::move(value)};
  return items;
}

std::vector<Item> without(std::vector<Item> items, const std::string& field) {
  for (std::size_t i = 0; i + 1 < items.size(); i += 2)
    if (items[i].text == field) {
      items.erase(items.begin() + static_cast<long>(i), items.begin() + static_cast<long>(i) + 2);
      break;
    }
  return items;
}

void expect_rejected(const std::vector<Item>& items, const std::string& reason, std::size_t limit = kPayloadLimit) {
  const DecodedEntry d = decode(items, limit);
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.rejection.find(reason), std::string::npos) << "wanted '" << reason << "', got '" << d.rejection << "'";
}

TEST(EntryCodec, FieldsUseAgentroomNames) {
  const std::vector<std::string> f = encode_entry(sample());
  const std::vector<std::string> names = {"type", "agent_id", "to", "reply_to", "payload", "timestamp",
                                          "origin_host", "origin_id", "reply_to_host", "reply_to_id"};
  ASSERT_EQ(f.size(), names.size() * 2);
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(f[2 * i], names[i]);
  EXPECT_EQ(f[11], "1764000000123456789");  // timestamp: unix ns, decimal
  EXPECT_EQ(f[15], "4096");
}

// Every field costs the ship script and Redis per entry (docs/benchmarks.md, "Bridge"), so an
// empty `to` and a missing `reply_to` are left out; readers, ours and agentroom's, take a
// missing `to` as a broadcast.
TEST(EntryCodec, BroadcastWithoutReplyLeavesToAndReplyToOut) {
  StreamEvent e = sample();
  e.to.clear();
  e.reply_to.reset();
  e.reply_to_origin.reset();
  const std::vector<std::string> f = encode_entry(e);
  const std::vector<std::string> names = {"type", "agent_id", "payload", "timestamp", "origin_host", "origin_id"};
  ASSERT_EQ(f.size(), names.size() * 2);
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(f[2 * i], names[i]);
  const DecodedEntry d = decode(items_of(f));
  ASSERT_TRUE(d.ok()) << d.rejection;
  EXPECT_EQ(*d.event, e);
}

TEST(EntryCodec, RoundTrip) {
  const DecodedEntry d = decode(items_of(encode_entry(sample())));
  ASSERT_TRUE(d.ok()) << d.rejection;
  EXPECT_EQ(*d.event, sample());
}

TEST(EntryCodec, UnknownFieldsAreIgnored) {
  std::vector<Item> items = items_of(encode_entry(sample()));
  items.insert(items.begin(), {{Item::bulk, "agent_handle"}, {Item::integer, ""}});
  items.push_back({Item::bulk, "session_id"});
  items.push_back({Item::bulk, "s-1"});
  const DecodedEntry d = decode(items);
  ASSERT_TRUE(d.ok()) << d.rejection;
  EXPECT_EQ(*d.event, sample());
}

TEST(EntryCodec, MinimalEntry) {
  const DecodedEntry d = decode(items_of({"type", "t", "timestamp", "0", "origin_host", "h", "origin_id", "0"}));
  ASSERT_TRUE(d.ok()) << d.rejection;
  EXPECT_EQ(d.event->agent, "");
  EXPECT_EQ(d.event->payload, "");
  EXPECT_FALSE(d.event->reply_to);
  EXPECT_FALSE(d.event->reply_to_origin);
}

TEST(EntryCodec, MissingFields) {
  const std::vector<Item> good = items_of(encode_entry(sample()));
  expect_rejected(without(good, "type"), "no type");
  expect_rejected(with(good, "type", ""), "no type");
  expect_rejected(without(good, "origin_host"), "no origin_host");
  expect_rejected(without(good, "origin_id"), "no origin_id");
  expect_rejected(without(good, "timestamp"), "no timestamp");
  expect_rejected(without(good, "reply_to_id"), "reply_to_host without reply_to_id");
  expect_rejected(without(good, "reply_to_host"), "reply_to_id without reply_to_host");
}

TEST(EntryCodec, WronglyTypedElements) {
  std::vector<Item> good = items_of(encode_entry(sample()));
  for (const Item::Kind kind : {Item::integer, Item::nil, Item::array, Item::status}) {
    std::vector<Item> bad_value = good;
    bad_value[1] = {kind, ""};
    expect_rejected(bad_value, "field 'type' is ");
    std::vector<Item> bad_name = good;
    bad_name[2] = {kind, ""};
    expect_rejected(bad_name, "field name #1 is ");
  }
  const std::optional<RedisReply> integer = parse_resp(":7\r\n");
  ASSERT_TRUE(integer);
  EXPECT_NE(decode_entry_fields(integer->view(), kPayloadLimit).rejection.find("an integer, not an array"),
            std::string::npos);
  EXPECT_FALSE(decode_entry_fields(ReplyView(), kPayloadLimit).ok());
}

TEST(EntryCodec, BadNumbers) {
  const std::vector<Item> good = items_of(encode_entry(sample()));
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1e9", "0x10", "9223372036854775808", "abc"})
    expect_rejected(with(good, "timestamp", bad), "timestamp");
  EXPECT_TRUE(decode(with(good, "timestamp", "9223372036854775807")).ok());
  for (const char* bad : {"", "-1", "18446744073709551616", "1.5"}) {
    expect_rejected(with(good, "origin_id", bad), "origin_id");
    expect_rejected(with(good, "reply_to_id", bad), "reply_to_id");
  }
  EXPECT_TRUE(decode(with(good, "origin_id", "18446744073709551615")).ok());
  for (const char* bad : {"1", "-", "1-", "-1", "a-b", "1-2-3", "1 -2"})
    expect_rejected(with(good, "reply_to", bad), "is not a stream id");
}

TEST(EntryCodec, Oversized) {
  const std::vector<Item> good = items_of(encode_entry(sample()));
  EXPECT_TRUE(decode(with(good, "type", std::string(kMaxTypeBytes, 't'))).ok());
  expect_rejected(with(good, "type", std::string(kMaxTypeBytes + 1, 't')), "type is 65 bytes, max 64");
  EXPECT_TRUE(decode(with(good, "agent_id", std::string(kMaxAgentBytes, 'a'))).ok());
  expect_rejected(with(good, "agent_id", std::string(kMaxAgentBytes + 1, 'a')), "agent_id is 129 bytes, max 128");
  expect_rejected(with(good, "to", std::string(kMaxAgentBytes + 1, 'a')), "to is 129 bytes");
  EXPECT_TRUE(decode(with(good, "payload", std::string(100, 'p')), 100).ok());
  expect_rejected(with(good, "payload", std::string(101, 'p')), "payload is 101 bytes, max 100", 100);
  std::vector<Item> many = good;
  for (std::size_t i = 0; i < kMaxEntryFields; ++i) {
    many.push_back({Item::bulk, "x" + std::to_string(i)});
    many.push_back({Item::bulk, ""});
  }
  expect_rejected(many, "more than 64");
}

TEST(EntryCodec, DuplicatesOddCountsAndBadHosts) {
  std::vector<Item> good = items_of(encode_entry(sample()));
  std::vector<Item> twice = good;
  twice.push_back({Item::bulk, "origin_host"});
  twice.push_back({Item::bulk, "host-c"});
  expect_rejected(twice, "duplicate field 'origin_host'");
  std::vector<Item> odd = good;
  odd.pop_back();
  expect_rejected(odd, "odd number of field names and values (19)");
  for (const char* bad : {"", "a/b", "a b", "\xff"}) {
    expect_rejected(with(good, "origin_host", bad), "origin_host: host id");
    expect_rejected(with(good, "reply_to_host", bad), "reply_to_host: host id");
  }
  expect_rejected(with(good, "origin_host", std::string(65, 'h')), "65 bytes");
  // Untrusted bytes are escaped in the reason.
  const DecodedEntry d = decode(with(good, "timestamp", std::string("1\n\0", 3)));
  EXPECT_NE(d.rejection.find("'1\\x0a\\x00'"), std::string::npos) << d.rejection;
}

// Mutations of a good entry, thousands of times: decoding never crashes, every rejection
// says why, and whatever it accepts is within the limits and survives a round trip.
TEST(EntryCodec, MutatedEntriesNeverCrashAndEveryRejectionHasAReason) {
  std::mt19937 rng(11);
  const std::vector<Item> good = items_of(encode_entry(sample()));
  const std::vector<std::string> odd_values = {"", "-1", "0", "18446744073709551616", "1-1", "x/y",
                                               std::string(200, 'z'), std::string("\0\xff", 2), "type"};
  int accepted = 0;
  int refused = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::vector<Item> items = good;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !items.empty(); ++m) {
      const std::size_t at = rng() % items.size();
      switch (rng() % 7) {
        case 0: items.erase(items.begin() + static_cast<long>(at)); break;
        case 1: items.insert(items.begin() + static_cast<long>(at), items[at]); break;
        case 2: items[at].kind = static_cast<Item::Kind>(rng() % 5); break;
        case 3: items[at].text = odd_values[rng() % odd_values.size()]; break;
        case 4: items[at].text.resize(rng() % (items[at].text.size() + 2), '\x01'); break;
        case 5: std::swap(items[at], items[rng() % items.size()]); break;
        case 6: items[at].text = std::string(kPayloadLimit + 1, 'p'); break;
      }
    }
    const DecodedEntry d = decode(items);
    if (!d.ok()) {
      ++refused;
      EXPECT_FALSE(d.rejection.empty());
      continue;
    }
    ++accepted;
    const StreamEvent& e = *d.event;
    EXPECT_FALSE(e.type.empty());
    EXPECT_LE(e.type.size(), kMaxTypeBytes);
    EXPECT_LE(e.agent.size(), kMaxAgentBytes);
    EXPECT_LE(e.to.size(), kMaxAgentBytes);
    EXPECT_LE(e.payload.size(), kPayloadLimit);
    EXPECT_GE(e.ts_ns, 0);
    const DecodedEntry again = decode(items_of(encode_entry(e)));
    ASSERT_TRUE(again.ok()) << again.rejection;
    EXPECT_EQ(*again.event, e);
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

TEST(EntryCodec, StreamIds) {
  EXPECT_TRUE(StreamId::parse("0-0"));
  EXPECT_TRUE(StreamId::parse("1764000000123-18446744073709551615"));
  EXPECT_FALSE(StreamId::parse("1764000000123-18446744073709551616"));
  EXPECT_FALSE(StreamId::parse("*"));
  EXPECT_FALSE(StreamId::parse("$"));
}

}  // namespace
}  // namespace agentbus::bridge
