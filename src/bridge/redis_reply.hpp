// bridge/redis_reply.hpp — a hiredis reply, read without trusting its shape.
//
// What Redis sends is input like any other: a reply of an unexpected type, an array shorter
// than expected, a string where a number should be. ReplyView's accessors therefore never
// dereference blindly: a wrong type gives nothing (std::nullopt, an empty view), and describe()
// names what was there instead, for the caller's message. RedisReply owns the tree.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct redisReply;

namespace agentbus::bridge {

enum class ReplyKind { string, status, error, integer, nil, array, other };

class ReplyView {
 public:
  ReplyView() = default;  // a nil
  explicit ReplyView(const redisReply* reply) : reply_(reply) {}

  [[nodiscard]] ReplyKind kind() const noexcept;
  [[nodiscard]] bool is_error() const noexcept { return kind() == ReplyKind::error; }
  [[nodiscard]] bool is_nil() const noexcept { return kind() == ReplyKind::nil; }

  // A bulk string's bytes (binary-safe), or nothing for any other kind.
  [[nodiscard]] std::optional<std::string_view> string() const noexcept;
  // A status reply ("OK", "PONG"), or nothing.
  [[nodiscard]] std::optional<std::string_view> status() const noexcept;
  // An error reply's text ("WRONGPASS …"), or nothing.
  [[nodiscard]] std::optional<std::string_view> error() const noexcept;
  [[nodiscard]] std::optional<long long> integer() const noexcept;

  // Elements of an array: 0 for anything else; at() past the end is a nil.
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] ReplyView at(std::size_t i) const noexcept;

  // "a bulk string of 5 bytes", "an integer", "an array of 3", "an error (NOSCRIPT …)".
  [[nodiscard]] std::string describe() const;

 private:
  const redisReply* reply_ = nullptr;
};

class RedisReply {
 public:
  RedisReply() = default;
  explicit RedisReply(redisReply* reply) noexcept : reply_(reply) {}  // takes ownership

  [[nodiscard]] ReplyView view() const noexcept { return ReplyView(reply_.get()); }
  [[nodiscard]] const redisReply* get() const noexcept { return reply_.get(); }

  [[nodiscard]] ReplyKind kind() const noexcept { return view().kind(); }
  [[nodiscard]] bool is_error() const noexcept { return view().is_error(); }
  [[nodiscard]] bool is_nil() const noexcept { return view().is_nil(); }
  [[nodiscard]] std::optional<std::string_view> string() const noexcept { return view().string(); }
  [[nodiscard]] std::optional<std::string_view> status() const noexcept { return view().status(); }
  [[nodiscard]] std::optional<std::string_view> error() const noexcept { return view().error(); }
  [[nodiscard]] std::optional<long long> integer() const noexcept { return view().integer(); }
  [[nodiscard]] std::size_t size() const noexcept { return view().size(); }
  [[nodiscard]] ReplyView at(std::size_t i) const noexcept { return view().at(i); }
  [[nodiscard]] std::string describe() const { return view().describe(); }

 private:
  struct Free {
    void operator()(redisReply* reply) const noexcept;
  };
  std::unique_ptr<redisReply, Free> reply_;
};

// Parses one reply from RESP bytes with hiredis's own reader, as if Redis had sent them: how
// the tests build replies of any shape. Nothing when the bytes are not one complete reply.
[[nodiscard]] std::optional<RedisReply> parse_resp(std::string_view bytes);

}  // namespace agentbus::bridge
