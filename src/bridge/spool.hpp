// Spool: the on-disk queue of one room's outgoing entries while Redis is away.
//
// Local publishers are never gated by the bridge: when Redis cannot take a batch, the batch
// goes here, is fsynced, and only then does the bridge move its durable cursor past it. On
// reconnect the spool is shipped in order through the same idempotent script, then cleared.
// Records are [len u32 | check u32 | bytes]; a torn last record (the bridge killed mid-
// write) fails its check and is dropped on open: its events were never acknowledged in the
// ring, so they are read again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agentbus::bridge {

class Spool {
 public:
  // Opens (creating) `path`; keeps the intact prefix of what is there. `max_bytes` bounds it.
  Spool(std::string path, std::uint64_t max_bytes);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends records, then fsyncs. False (nothing written) when they would pass max_bytes.
  // Throws Error{system} when the disk refuses.
  bool append(const std::vector<std::string>& records);

  // Every record, oldest first.
  [[nodiscard]] std::vector<std::string> read_all() const;

  // Empties the spool (after everything in it was shipped).
  void clear();

  [[nodiscard]] bool empty() const noexcept { return bytes_ == 0; }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  [[nodiscard]] std::uint64_t torn_dropped() const noexcept { return torn_dropped_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  std::uint64_t max_bytes_;
  int fd_ = -1;
  std::uint64_t bytes_ = 0;
  std::uint64_t records_ = 0;
  std::uint64_t torn_dropped_ = 0;
};

}  // namespace agentbus::bridge
