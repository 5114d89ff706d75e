#include "redis_client.hpp"

#include <stdexcept>
#include <vector>

namespace bench {

RedisClient::RedisClient(int port) : c_(redisConnect("127.0.0.1", port)) {
  if (c_ == nullptr || c_->err != 0) {
    const std::string why = c_ ? c_->errstr : "out of memory";
    redisFree(c_);
    throw std::runtime_error("redis connect: " + why);
  }
}

RedisClient::~RedisClient() { redisFree(c_); }

Reply RedisClient::next_reply() {
  void* raw = nullptr;
  if (redisGetReply(c_, &raw) != REDIS_OK) throw std::runtime_error(std::string("redis: ") + c_->errstr);
  Reply r(static_cast<redisReply*>(raw));
  check(r);
  return r;
}

void RedisClient::check(const Reply& r) const {
  if (!r) throw std::runtime_error(std::string("redis: ") + c_->errstr);
  if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error(std::string("redis: ") + r->str);
}

void PipelinedXadd::add(std::span<const std::byte> payload) {
  redisAppendCommand(client_.get(), "XADD %s * p %b", key_.c_str(), payload.data(), payload.size());
  if (++pending_ == depth_) flush();
}

void PipelinedXadd::add_entry(std::uint64_t maxlen, std::span<const std::string_view> fields) {
  const std::string cap = std::to_string(maxlen);
  std::vector<const char*> argv = {"XADD", key_.c_str(), "MAXLEN", "~", cap.c_str(), "*"};
  std::vector<std::size_t> lens = {4, key_.size(), 6, 1, cap.size(), 1};
  for (const std::string_view f : fields) {
    argv.push_back(f.data());
    lens.push_back(f.size());
  }
  redisAppendCommandArgv(client_.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
  if (++pending_ == depth_) flush();
}

void PipelinedXadd::flush() {
  for (; pending_ > 0; --pending_) client_.next_reply();
}

std::size_t StreamReader::read(std::int64_t block_ms,
                               const std::function<void(std::span<const std::byte>)>& on_value) {
  Reply r = client_.command("XREAD COUNT %d BLOCK %lld STREAMS %s %s", count_, static_cast<long long>(block_ms),
                            key_.c_str(), last_id_.c_str());
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;  // nil: timed out
  const redisReply* entries = r->element[0]->element[1];
  for (std::size_t i = 0; i < entries->elements; ++i) {
    const redisReply* entry = entries->element[i];
    const redisReply* fields = entry->element[1];
    if (fields->elements >= 2) {
      const redisReply* value = fields->element[1];
      on_value(std::span<const std::byte>(reinterpret_cast<const std::byte*>(value->str), value->len));
    }
    if (i + 1 == entries->elements) last_id_.assign(entry->element[0]->str, entry->element[0]->len);
  }
  return entries->elements;
}

}  // namespace bench
