// agentbus/orchestration/bus_agent.hpp — agents that live in their own processes on the bus.
//
// A driver calls such an agent through BusAgentProvider: the request is an AGENT_REQUEST event
// in the room "agents/<id>" (payload {"deadline_ns", "request"}, the provider protocol's
// request), and the answer an AGENT_REPLY event with reply_to = the request's id. Any number of
// processes serve one agent id (serve_agent(), `agentbus agent --id ID --provider-cmd CMD`);
// they share a consumer group, so each request goes to one of them, and a request whose server
// died mid-step is handed to another live server (the group reclaims a dead member's pending
// events). A request nobody answers before its deadline FAILs the step on the driver's side
// (CallStatus::timeout); a server skips requests whose deadline has passed.
// The driver waits with the room's blocking wait (a futex): an idle driver costs no CPU.
// Thread safety: BusAgentProvider::call may be used from several threads (each call has its
// own subscription).
#pragma once

#include <agentbus/bus.hpp>
#include <agentbus/orchestration/provider.hpp>
#include <agentbus/subscription.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus::orchestration {

inline constexpr std::string_view kAgentRoomPrefix = "agents/";
inline constexpr std::string_view kAgentRequestEvent = "AGENT_REQUEST";
inline constexpr std::string_view kAgentReplyEvent = "AGENT_REPLY";

class BusAgentProvider : public Provider {
 public:
  BusAgentProvider(Bus bus, std::string agent_id, WaitStrategy wait = WaitStrategy::block);
  CallResult call(const ProviderRequest& request, std::chrono::milliseconds timeout) override;
  [[nodiscard]] std::string describe() const override { return "bus:" + std::string(kAgentRoomPrefix) + agent_id_; }

 private:
  Bus bus_;
  std::string agent_id_;
  WaitStrategy wait_;
  // The room and one subscription kept between calls (a call that finds it in use by another
  // thread subscribes afresh): opening and subscribing are most of a call's fixed cost.
  std::mutex mutex_;
  std::optional<Room> room_;
  std::optional<Subscription> sub_;
};

struct AgentServerOptions {
  std::string agent_id;
  std::string role;
  std::string description;
  std::shared_ptr<Provider> provider;
  std::string member;  // the consumer-group member name; empty: "<agent_id>-<pid>"
  WaitStrategy wait = WaitStrategy::block;
  // After a request, how long the server keeps looking for the next one (yielding the CPU)
  // before it sleeps: in a pipeline the next stage's server is woken while this one still
  // looks, so its CPU has not gone idle, and on a VM an idle CPU takes tens of microseconds
  // to wake.
  std::chrono::microseconds awake{200};
};

struct AgentServerStats {
  std::uint64_t served = 0;    // requests answered
  std::uint64_t expired = 0;   // requests skipped: their deadline had passed
  std::uint64_t failed = 0;    // answered with a failure
};

// Serves requests for one agent until `stop` becomes true (checked at least every 200 ms).
// Throws Error for a bad agent id or a member name held by another live process.
AgentServerStats serve_agent(Bus& bus, const AgentServerOptions& options, const std::atomic<bool>& stop);

// The request a driver sent, decoded (the inverse of request_to_json()).
[[nodiscard]] std::optional<ProviderRequest> request_from_json(std::string_view json, std::string& why);

}  // namespace agentbus::orchestration
