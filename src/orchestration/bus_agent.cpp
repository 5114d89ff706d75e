// bus_agent.cpp — calling an agent that runs in another process, and serving one.
#include <agentbus/clock.hpp>
#include <agentbus/consumer_group.hpp>
#include <agentbus/error.hpp>
#include <agentbus/names.hpp>
#include <agentbus/orchestration/bus_agent.hpp>
#include <agentbus/orchestration/protocol.hpp>

#include "orchestration/json_object.hpp"
#include "orchestration/protocol_dom.hpp"

#include <unistd.h>

namespace agentbus::orchestration {

namespace {

constexpr std::chrono::milliseconds kCancelPoll{20};

std::string agent_room(std::string_view id) { return std::string(kAgentRoomPrefix) + std::string(id); }

bool read_messages(simdjson::dom::object obj, ProviderRequest& r, std::string& why) {
  simdjson::dom::array items;
  if (obj["messages"].get_array().get(items)) return true;
  for (simdjson::dom::element m : items) {
    simdjson::dom::object o;
    Message msg;
    if (m.get_object().get(o) || !json::get_string(o, "role", msg.role, true, why) ||
        !json::get_string(o, "agent", msg.agent, false, why) || !json::get_string(o, "content", msg.content, true, why)) {
      why = "messages: " + why;
      return false;
    }
    r.messages.push_back(std::move(msg));
  }
  return true;
}

bool read_tools(simdjson::dom::object obj, ProviderRequest& r, std::string& why) {
  simdjson::dom::array items;
  if (obj["tools"].get_array().get(items)) return true;
  for (simdjson::dom::element t : items) {
    simdjson::dom::object o;
    ToolSpec spec;
    simdjson::dom::element params;
    if (t.get_object().get(o) || !json::get_string(o, "name", spec.name, true, why) ||
        !json::get_string(o, "description", spec.description, false, why)) {
      why = "tools: " + why;
      return false;
    }
    if (!o["parameters"].get(params)) spec.parameters = simdjson::minify(params);
    r.tools.push_back(std::move(spec));
  }
  return true;
}

std::string reply_payload(const CallResult& r) {
  json::ObjectWriter w;
  w.boolean("ok", r.ok());
  if (r.ok()) w.raw("reply", reply_to_json(r.reply));
  else w.str("status", r.status == CallStatus::timeout ? "timeout" : "failed").str("error", r.error);
  if (!r.stderr_text.empty()) w.str("stderr", r.stderr_text);
  return w.finish();
}

CallResult result_from(std::string_view payload, const std::string& who) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  std::string why;
  bool ok = false;
  if (!json::parse_object(parser, payload, obj, why) || !json::get_bool(obj, "ok", ok, true, why))
    return CallResult::failure(who + " sent an unreadable reply: " + why);
  std::string err_text;
  json::get_string(obj, "stderr", err_text, false, why);
  CallResult result;
  if (ok) {
    simdjson::dom::element reply;
    if (obj["reply"].get(reply)) return CallResult::failure(who + " sent a reply without \"reply\"");
    auto r = reply_from_element(reply, why);
    if (!r) return CallResult::failure(who + " sent a malformed reply: " + why);
    result = CallResult::success(std::move(*r));
  } else {
    std::string error, status;
    json::get_string(obj, "error", error, false, why);
    json::get_string(obj, "status", status, false, why);
    result = CallResult::failure(error, status == "timeout" ? CallStatus::timeout : CallStatus::failed);
  }
  result.stderr_text = std::move(err_text);
  return result;
}

}  // namespace

std::optional<ProviderRequest> request_from_json(std::string_view text, std::string& why) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (!json::parse_value(parser, text, doc, why)) return std::nullopt;
  return request_from_element(doc, why);
}

std::optional<ProviderRequest> request_from_element(simdjson::dom::element value, std::string& why) {
  simdjson::dom::object obj;
  if (!json::as_object(value, obj, why)) return std::nullopt;
  ProviderRequest r;
  std::uint64_t version = 0;
  if (!json::get_uint(obj, "version", version, true, why)) return std::nullopt;
  if (version != std::uint64_t(kProviderProtocolVersion)) {
    why = "protocol version " + std::to_string(version) + " is not supported";
    return std::nullopt;
  }
  simdjson::dom::object agent;
  if (!json::get_string(obj, "run", r.run_id, false, why) || !json::get_uint(obj, "step", r.step, false, why)) return std::nullopt;
  if (!obj["agent"].get_object().get(agent)) {
    if (!json::get_string(agent, "id", r.agent.id, false, why) || !json::get_string(agent, "role", r.agent.role, false, why) ||
        !json::get_string(agent, "description", r.agent.description, false, why))
      return std::nullopt;
  }
  if (!read_messages(obj, r, why) || !read_tools(obj, r, why)) return std::nullopt;
  return r;
}

BusAgentProvider::BusAgentProvider(Bus bus, std::string agent_id, WaitStrategy wait)
    : bus_(std::move(bus)), agent_id_(std::move(agent_id)), wait_(wait) {
  validate_room_name(agent_room(agent_id_));
}

CallResult BusAgentProvider::call(const ProviderRequest& request, std::chrono::milliseconds timeout) {
  const std::string who = "agent '" + agent_id_ + "' (served on bus '" + bus_.name() + "')";
  std::unique_lock lock(mutex_, std::try_to_lock);
  std::optional<Room> own_room;
  std::optional<Subscription> own_sub;
  Room* room = nullptr;
  Subscription* sub = nullptr;
  SubscribeOptions so;
  so.from = StartFrom::latest;
  so.wait = wait_;
  // The driver expects the reply soon: awake for the first half millisecond of each wait, it
  // finds a quick agent's reply without paying a futex wake-up.
  so.yield_before_block = std::chrono::microseconds(500);
  if (lock.owns_lock()) {
    if (!room_) room_ = bus_.room(agent_room(agent_id_));
    if (!sub_) sub_ = room_->subscribe(so);  // before publishing, so the reply cannot slip past
    room = &*room_;
    sub = &*sub_;
  } else {
    own_room = bus_.room(agent_room(agent_id_));
    own_sub = own_room->subscribe(so);
    room = &*own_room;
    sub = &*own_sub;
  }
  const std::int64_t deadline_ns = realtime_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  std::string payload = "{";
  json::append_int(payload, "deadline_ns", deadline_ns);
  json::append_key(payload, "request");
  append_request_json(payload, request);  // in place, not encoded apart and copied in
  payload.push_back('}');
  PublishOptions po;
  po.to = agent_id_;
  const PublishResult sent = room->publish(kAgentRequestEvent, "driver", payload, po);
  if (!sent.ok()) return CallResult::failure(who + ": its room is full (is a server for it stuck?)");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (request.cancel != nullptr && request.cancel->load())
      return CallResult::failure(who + " was cancelled (its server may still finish the request; the reply is ignored)");
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0))
      return CallResult::failure(who + ": no reply within " + std::to_string(timeout.count()) +
                                     " ms (is `agentbus agent --id " + agent_id_ + "` running?)",
                                 CallStatus::timeout);
    // A cancellable call waits in slices, so a cancel is noticed within kCancelPoll.
    ReadResult r = sub->next(request.cancel != nullptr ? std::min<std::chrono::nanoseconds>(left, kCancelPoll) : left);
    if (r.status != ReadStatus::event) continue;  // a kept subscription may be lapped: fine, the reply is ahead
    if (r.event.type != kAgentReplyEvent || !r.event.reply_to || *r.event.reply_to != sent.id) continue;
    return result_from(r.event.payload, who);
  }
}

AgentServerStats serve_agent(Bus& bus, const AgentServerOptions& options, const std::atomic<bool>& stop) {
  if (!options.provider) throw Error(Errc::invalid_argument, "serve_agent: agent '" + options.agent_id + "' has no provider");
  Room room = bus.room(agent_room(options.agent_id));
  GroupOptions go;
  go.interests = {std::string(kAgentRequestEvent)};
  go.from = StartFrom::earliest;  // a request sent before any server started is still served (deadline permitting)
  go.yield_before_block = options.awake;
  const std::string member = options.member.empty() ? options.agent_id + "-" + std::to_string(::getpid()) : options.member;
  ConsumerGroup group(room, "servers", member, go);
  AgentServerStats stats;
  thread_local simdjson::dom::parser parser;
  while (!stop.load()) {
    auto d = group.read(std::chrono::milliseconds(200));
    if (!d) continue;
    simdjson::dom::object obj;
    simdjson::dom::element req;
    std::string why;
    std::uint64_t deadline_ns = 0;
    CallResult result;
    if (!json::parse_object(parser, d->event.payload, obj, why) || !json::get_uint(obj, "deadline_ns", deadline_ns, true, why) ||
        obj["request"].get(req)) {
      result = CallResult::failure("agent '" + options.agent_id + "': unreadable request: " + why);
    } else {
      const std::int64_t left_ns = static_cast<std::int64_t>(deadline_ns) - realtime_ns();
      if (left_ns <= 0) {
        ++stats.expired;  // the driver has given up on it already
        group.ack(*d);
        continue;
      }
      auto request = request_from_element(req, why);
      if (!request) result = CallResult::failure("agent '" + options.agent_id + "': unreadable request: " + why);
      else {
        request->agent = AgentInfo{options.agent_id, options.role.empty() ? request->agent.role : options.role,
                                   options.description.empty() ? request->agent.description : options.description};
        try {
          result = options.provider->call(*request, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(left_ns)));
        } catch (const std::exception& e) {
          // The driver gets the reason instead of waiting for its timeout; the server goes on.
          result = CallResult::failure("agent '" + options.agent_id + "': the provider failed: " + e.what());
        }
      }
    }
    PublishOptions po;
    po.reply_to = d->event.id;
    po.to = d->event.agent;
    room.publish(kAgentReplyEvent, options.agent_id, reply_payload(result), po);
    group.record_receipt(*d);
    group.ack(*d);
    if (result.ok()) ++stats.served;
    else ++stats.failed;
  }
  return stats;
}

}  // namespace agentbus::orchestration
