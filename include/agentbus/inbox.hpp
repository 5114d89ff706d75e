// agentbus/inbox.hpp — directed messages, a durable per-agent inbox, and ask/reply.
//
// A directed message is an event whose `to` names an agent. The room's ring keeps it only
// until producers lap it, so an agent that is asleep or not yet started would miss it: the
// inbox keeps a copy for the recipient, in shared memory beside the room (region
// "<room>#inbox"), until the recipient acknowledges it.
//
// Guarantees:
//  * send() reserves space in the recipient's inbox *before* publishing, so a message is
//    either published and stored, or neither (Error{no_space} when the inbox is full, never a
//    silent drop). Only a sender killed between publishing and storing leaves an event in the
//    room without its inbox copy.
//  * Each recipient's messages get consecutive sequence numbers (1, 2, ...) in the order their
//    stores completed; messages from one sending thread keep their order. read() returns the
//    messages after the recipient's cursor, oldest first; the cursor starts at 0, so nothing
//    sent before the recipient first looked is skipped. read() never returns a message beyond
//    one that a live sender is still storing, so ack() can never skip a message.
//  * ack(agent, seq) moves the cursor to seq (never backwards) and frees the space of every
//    message up to it.
//  * No lock: each message slot has a 64-bit state word moved by CAS (free -> reserved|pid ->
//    ready -> free). A slot left reserved by a dead sender is taken back by the next sender
//    that needs space; a sequence number it took is skipped by readers.
//  * One pending ask per asking agent, tracked in shared memory by (pid, start time): a second
//    concurrent ask by the same agent is Error{conflict}; the ask of a dead process is
//    reclaimed by the next ask.
//  * Every length, index and offset read from shared memory is bounds-checked; a damaged
//    inbox region is Error{corrupt}.
//
// Thread and process safety: every call is safe from any thread of any process.
#pragma once

#include <agentbus/event.hpp>
#include <agentbus/counter.hpp>
#include <agentbus/room.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus {

// The latest `n` events still in the room's ring addressed to `agent` (event.to == agent),
// newest first. Broadcasts and events to anyone else are excluded.
[[nodiscard]] std::vector<Event> directed(Room& room, std::string_view agent, std::size_t n);

struct InboxOptions {
  // Used only when this call creates the room's inbox region; later openers get the creator's.
  std::uint32_t capacity = 1024;           // messages held at once, all recipients together
  std::uint32_t per_recipient = 256;       // messages held at once for one recipient
  std::uint32_t recipient_capacity = 512;  // distinct recipients (and askers) ever seen
  std::uint32_t max_payload_bytes = 4096;  // larger payloads: put them in the scratchpad
  bool create = true;                      // false: Error{not_found} if the room has no inbox
};

struct SendOptions {
  std::optional<EventId> reply_to{};
};

struct InboxMessage {
  std::uint64_t seq = 0;    // position in the recipient's inbox: 1, 2, ...
  EventId id = 0;           // the event's id in the room
  std::int64_t ts_ns = 0;   // when it was stored (Unix time, ns)
  std::string type;
  std::string from;
  std::string to;
  std::optional<EventId> reply_to;
  std::string payload;
};

struct InboxCounters {
  std::uint32_t held = 0;                  // messages stored and not yet acknowledged
  std::uint64_t stored = 0;                // messages ever stored
  std::uint64_t full_refusals = 0;         // sends refused with no_space
  std::uint64_t dead_writers_reclaimed = 0;  // slots taken back from senders that died storing
  std::uint64_t asks_reclaimed = 0;          // pending asks of dead askers taken over
};
[[nodiscard]] std::vector<Counter> counter_list(const InboxCounters& c);

class Inbox {
 public:
  // The inbox of `room`, created on first use. Throws Error{corrupt} when the region does not
  // hold a valid inbox, Error{invalid_argument} for options out of range.
  explicit Inbox(Room room, const InboxOptions& options = {});
  // The inbox of `room` if one was created, else nullopt (no exception: for a caller that looks
  // on every step, e.g. a run delivering delegation results).
  [[nodiscard]] static std::optional<Inbox> find(Room room);
  ~Inbox();
  Inbox(Inbox&&) noexcept;
  Inbox& operator=(Inbox&&) noexcept;

  // Publishes a directed event (agent = from, to = to) into the room and stores its copy in
  // `to`'s inbox. Returns the event id. Throws Error{no_space} when the inbox is full (nothing
  // is published then) or the room's ring stays full, Error{too_large} for a payload over
  // max_payload_bytes, Error{invalid_argument} for an empty `to` or type.
  EventId send(std::string_view from, std::string_view to, std::string_view type,
               std::string_view payload, const SendOptions& options = {});

  // Stores the copy of an event that was already published with `to` set (for `post --to`).
  // Returns its sequence number in the inbox. Throws like send() (the event stays published).
  std::uint64_t deliver(const EventView& published);

  // Up to `max` messages after the cursor of `agent`, oldest first. Does not move the cursor.
  [[nodiscard]] std::vector<InboxMessage> read(std::string_view agent, std::size_t max = 100) const;
  // Moves the cursor of `agent` to `upto` (a seq from read()); frees those messages. Returns
  // the cursor after the call. Acking beyond the last message stored acks what exists.
  std::uint64_t ack(std::string_view agent, std::uint64_t upto);
  // The cursor of `agent` (0 before any ack).
  [[nodiscard]] std::uint64_t cursor(std::string_view agent) const;

  // Sends an "ASK" to `to` (through the inbox) and waits up to `timeout` for the event that
  // answers it (reply_to == the ask's id, agent == to). `to` is a qualified handle or a short
  // handle naming exactly one live agent in the room's presence table. Throws
  // Error{not_found} when `to` is not present, Error{conflict} when `from` already has an ask
  // pending, Error{timeout} when no reply came in time.
  [[nodiscard]] Event ask(std::string_view from, std::string_view to, std::string_view message,
                          std::chrono::milliseconds timeout);

  // Answers ASK `ask_id`: a "REPLY" with reply_to = ask_id, to = the asker, sent through the
  // asker's inbox. Throws Error{not_found} when the ASK is neither in `from`'s inbox nor still
  // in the room, Error{invalid_argument} when that event is not an ASK.
  EventId reply(std::string_view from, EventId ask_id, std::string_view message);

  [[nodiscard]] InboxCounters counters() const;
  [[nodiscard]] const Room& room() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// For `agentbus post --to`: stores the copy of an already published directed event in the
// recipient's inbox (creating the room's inbox on first use). Returns the message's seq.
std::uint64_t deliver_to_inbox(Room& room, EventId id, std::string_view from, std::string_view to,
                               std::string_view type, std::string_view payload,
                               std::optional<EventId> reply_to = std::nullopt);

}  // namespace agentbus
