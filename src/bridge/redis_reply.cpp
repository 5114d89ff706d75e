#include "bridge/redis_reply.hpp"

#include <hiredis/hiredis.h>

namespace agentbus::bridge {

ReplyKind ReplyView::kind() const noexcept {
  if (reply_ == nullptr) return ReplyKind::nil;
  switch (reply_->type) {
    case REDIS_REPLY_STRING: return ReplyKind::string;
    case REDIS_REPLY_STATUS: return ReplyKind::status;
    case REDIS_REPLY_ERROR: return ReplyKind::error;
    case REDIS_REPLY_INTEGER: return ReplyKind::integer;
    case REDIS_REPLY_NIL: return ReplyKind::nil;
    case REDIS_REPLY_ARRAY: return ReplyKind::array;
    default: return ReplyKind::other;
  }
}

namespace {
std::string_view text_of(const redisReply* reply) noexcept {
  return reply->str == nullptr ? std::string_view{} : std::string_view(reply->str, reply->len);
}
}  // namespace

std::optional<std::string_view> ReplyView::string() const noexcept {
  if (kind() != ReplyKind::string) return std::nullopt;
  return text_of(reply_);
}

std::optional<std::string_view> ReplyView::status() const noexcept {
  if (kind() != ReplyKind::status) return std::nullopt;
  return text_of(reply_);
}

std::optional<std::string_view> ReplyView::error() const noexcept {
  if (kind() != ReplyKind::error) return std::nullopt;
  return text_of(reply_);
}

std::optional<long long> ReplyView::integer() const noexcept {
  if (kind() != ReplyKind::integer) return std::nullopt;
  return reply_->integer;
}

std::size_t ReplyView::size() const noexcept {
  if (kind() != ReplyKind::array || reply_->element == nullptr) return 0;
  return reply_->elements;
}

ReplyView ReplyView::at(std::size_t i) const noexcept {
  if (i >= size()) return ReplyView();
  return ReplyView(reply_->element[i]);
}

std::string ReplyView::describe() const {
  switch (kind()) {
    case ReplyKind::string: return "a bulk string of " + std::to_string(reply_->len) + " bytes";
    case ReplyKind::status: return "a status (" + std::string(text_of(reply_)) + ")";
    case ReplyKind::error: return "an error (" + std::string(text_of(reply_)) + ")";
    case ReplyKind::integer: return "an integer";
    case ReplyKind::nil: return "a nil";
    case ReplyKind::array: return "an array of " + std::to_string(size());
    case ReplyKind::other: return "a reply of type " + std::to_string(reply_->type);
  }
  return "a reply";
}

void RedisReply::Free::operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }

std::optional<RedisReply> parse_resp(std::string_view bytes) {
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return std::nullopt;
  void* raw = nullptr;
  const bool fed = redisReaderFeed(reader, bytes.data(), bytes.size()) == REDIS_OK;
  const bool read = fed && redisReaderGetReply(reader, &raw) == REDIS_OK;
  redisReaderFree(reader);
  if (!read || raw == nullptr) {
    if (raw != nullptr) freeReplyObject(raw);
    return std::nullopt;
  }
  return RedisReply(static_cast<redisReply*>(raw));
}

}  // namespace agentbus::bridge
