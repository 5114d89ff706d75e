// JsonlWriter: StatusBusOptions::persist_path. A durable reader of the room on its own thread
// appends each STATUS payload as one line and moves its cursor only after the batch holding
// it has been written (and fdatasync'ed when asked), so producers never overwrite an entry
// that is not on disk yet, and a writer killed at any instant loses nothing:
//  * killed mid-write: the file ends in a torn line; the next writer truncates it away (the
//    entry is still in the ring, behind the cursor) and import_jsonl() skips it with a warning;
//  * killed after writing, before moving the cursor: the next writer re-reads that batch and
//    drops the lines the file already ends with, so nothing is written twice.
#pragma once

#include <agentbus/room.hpp>
#include <agentbus/status_bus.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace agentbus::shm {
struct ReaderSlot;
}

namespace agentbus::status {

class JsonlWriter {
 public:
  // Opens (creating it and its directory) the file and attaches the durable reader; throws
  // Error on failure. New readers start at the room's tail.
  JsonlWriter(Room room, const StatusBusOptions& options, std::atomic<std::uint64_t>& persisted,
              std::atomic<std::uint64_t>& errors);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // Writes what is in the room up to now, then detaches (drops the reader if asked).
  void stop(bool drop_reader) noexcept;

 private:
  void run();
  void prepare_file();
  bool flush(std::string& buf, std::size_t& written, std::uint64_t lines, std::uint64_t pos);

  Room room_;
  std::string path_;
  std::string reader_name_;
  bool fsync_;
  int fd_ = -1;
  shm::ReaderSlot* slot_ = nullptr;
  std::uint64_t cursor_ = 0;
  std::string tail_window_;  // the file's last complete lines when we attached (dedup)
  std::atomic<std::uint64_t>& persisted_;
  std::atomic<std::uint64_t>& errors_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace agentbus::status
