// What a delegation handle shares with its Delegator, and the JSON a delegated task and its
// result carry on the board (the worker, worker.cpp, reads and writes the same).
#pragma once

#include <agentbus/orchestration/delegation.hpp>
#include <agentbus/room.hpp>
#include <agentbus/tasks.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agentbus::orchestration {

// The queue's board is created with room for large results (a TaskBoard's default is 4 KiB).
[[nodiscard]] TaskBoardOptions delegation_board_options();
// The scratchpad key that asks the worker running board task `id` to complete it as cancelled.
[[nodiscard]] std::string cancel_key(EventId id);

struct DelegatedPayload {
  std::string task_id;
  std::string child_room;
  std::string parent_room;
  std::string delegator;
  std::string notify;
  std::string task;
  std::string context = "{}";
  std::string metadata = "{}";
  bool require_structured_result = false;
  std::uint32_t max_result_retries = 3;
};
[[nodiscard]] std::string encode_payload(const DelegatedPayload& p);
[[nodiscard]] std::optional<DelegatedPayload> decode_payload(std::string_view json, std::string& why);

// The board's result: {"status","output"?,"error"?,"duration_ms","worker"}. `max_bytes` bounds
// the encoding: a longer output is cut (at a UTF-8 boundary) and the error says so.
[[nodiscard]] std::string encode_result(const DelegatedTaskResult& r, std::size_t max_bytes);
// Fills status/output/error/duration/worker of `into` from a stored result.
void decode_result(std::string_view json, DelegatedTaskResult& into);

// `text` cut to at most `chars` code points (and `max_bytes` bytes), never inside a character.
[[nodiscard]] std::string cap_utf8(std::string_view text, std::size_t chars, std::size_t max_bytes);

struct DelegationState {
  Bus bus;
  Room queue;
  std::shared_ptr<TaskBoard> shared_board;  // the Delegator's, for every task of the type
  TaskBoard& board;
  EventId board_id = 0;
  std::string delegator;
  std::string task;  // the text, for the cache
  DelegatedTaskResult base;  // ids, rooms, agent, metadata
  WaitStrategy wait = WaitStrategy::block;
  std::shared_ptr<CompletedTaskCache> cache;
  std::atomic<bool> cancelled_here{false};
  std::optional<DelegatedTaskResult> fixed;  // a cache hit: the answer, never on a board

  DelegationState(Bus b, Room q, std::shared_ptr<TaskBoard> t)
      : bus(std::move(b)), queue(std::move(q)), shared_board(std::move(t)), board(*shared_board) {}
};

}  // namespace agentbus::orchestration
