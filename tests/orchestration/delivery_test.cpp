// Delivery strategies (RoomKit's core/delivery.py) over the inbox, idleness from presence.
#include <agentbus/inbox.hpp>
#include <agentbus/orchestration/delivery.hpp>
#include <agentbus/presence.hpp>

#include "support/expect.hpp"
#include "support/test_bus.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace agentbus;
using namespace agentbus::orchestration;
using namespace std::chrono_literals;

class orch_delivery : public ::testing::Test {
 protected:
  test::TestBus bus{"orch-delivery"};
  Room room = bus->room("team");
  Presence presence{room};
  std::string writer = presence.join("writer", "Writer", "drafting chapter 2");
  DeliveryContext to_writer(std::string content) { return DeliveryContext{room, "lead", writer, std::move(content)}; }
  std::vector<InboxMessage> writer_inbox() { return Inbox(room).read(writer); }
};

TEST_F(orch_delivery, immediate_delivers_now_even_to_a_busy_agent) {
  ASSERT_FALSE(agent_idle(room, writer));
  const DeliveryReport r = Immediate().deliver(to_writer("result ready"));
  EXPECT_TRUE(r.delivered);
  EXPECT_FALSE(r.timed_out);
  ASSERT_EQ(writer_inbox().size(), 1u);
  EXPECT_EQ(writer_inbox()[0].payload, "result ready");
  EXPECT_EQ(writer_inbox()[0].type, kDeliveryEvent);
  EXPECT_EQ(writer_inbox()[0].from, "lead");
}

TEST_F(orch_delivery, idleness_comes_from_presence_by_qualified_or_short_handle) {
  EXPECT_FALSE(agent_idle(room, writer));
  EXPECT_FALSE(agent_idle(room, "writer"));
  ASSERT_TRUE(presence.set_working_on(writer, ""));
  EXPECT_TRUE(agent_idle(room, writer));
  EXPECT_TRUE(agent_idle(room, "writer"));
  EXPECT_TRUE(agent_idle(room, "nobody"));  // absent: busy with nothing
}

TEST_F(orch_delivery, wait_for_idle_holds_the_message_until_the_agent_is_idle) {
  WaitForIdle strategy(0ms, 10s);
  DeliveryReport r;
  std::thread t([&] { r = strategy.deliver(to_writer("after your step")); });
  // Still busy: nothing delivered yet, however long we look (bounded by the check below).
  std::this_thread::sleep_for(30ms);  // a window in which a wrong strategy would deliver
  EXPECT_TRUE(writer_inbox().empty());
  ASSERT_TRUE(presence.set_working_on(writer, ""));
  t.join();
  EXPECT_TRUE(r.delivered);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.note.empty());
  ASSERT_EQ(writer_inbox().size(), 1u);
}

TEST_F(orch_delivery, wait_for_idle_delivers_anyway_after_the_timeout_and_says_so) {
  const DeliveryReport r = WaitForIdle(0ms, 30ms).deliver(to_writer("urgent"));
  EXPECT_TRUE(r.delivered);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.note, "agent '" + writer + "' still busy after 30 ms: delivered anyway");
  ASSERT_EQ(writer_inbox().size(), 1u);
  EXPECT_EQ(writer_inbox()[0].payload, "urgent");
}

TEST_F(orch_delivery, queued_joins_everything_sent_while_busy_into_one_message) {
  Queued strategy(0ms, 10s, "\n--\n");
  DeliveryReport first;
  std::thread t([&] { first = strategy.deliver(to_writer("one")); });
  ASSERT_TRUE(test::eventually([&] { return strategy.queued("team", writer) == 1; }));
  const DeliveryReport second = strategy.deliver(to_writer("two"));
  const DeliveryReport third = strategy.deliver(to_writer("three"));
  EXPECT_TRUE(second.queued);
  EXPECT_FALSE(second.delivered);
  EXPECT_TRUE(third.queued);
  EXPECT_TRUE(writer_inbox().empty());
  ASSERT_TRUE(presence.set_working_on(writer, ""));
  t.join();
  EXPECT_TRUE(first.delivered);
  EXPECT_EQ(first.joined, 3u);
  ASSERT_EQ(writer_inbox().size(), 1u);
  EXPECT_EQ(writer_inbox()[0].payload, "one\n--\ntwo\n--\nthree");
  EXPECT_EQ(strategy.queued("team", writer), 0u);
  // The next one, to an idle agent, goes alone.
  EXPECT_EQ(strategy.deliver(to_writer("four")).joined, 1u);
  EXPECT_EQ(writer_inbox().size(), 2u);
}

TEST_F(orch_delivery, queued_delivers_after_the_timeout_too) {
  const DeliveryReport r = Queued(0ms, 20ms).deliver(to_writer("x"));
  EXPECT_TRUE(r.delivered);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(writer_inbox().size(), 1u);
}

TEST(orch_delivery_resolve, names_resolve_and_anything_else_is_a_clear_error) {
  EXPECT_EQ(resolve_strategy("immediate")->name(), "immediate");
  EXPECT_EQ(resolve_strategy("wait_for_idle")->name(), "wait_for_idle");
  EXPECT_EQ(resolve_strategy("queued")->name(), "queued");
  test::expect_error([] { (void)resolve_strategy("later"); }, Errc::invalid_argument,
                     "unknown delivery strategy 'later' (expected immediate, wait_for_idle or queued)");
  test::expect_error([] { (void)resolve_strategy(""); }, Errc::invalid_argument, "unknown delivery strategy ''");
}
