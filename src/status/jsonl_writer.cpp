// jsonl_writer.cpp — persistence of status entries; see jsonl_writer.hpp.
#include "status/jsonl_writer.hpp"

#include "bus/reader_slots.hpp"
#include "bus/room_access.hpp"

#include <agentbus/error.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace agentbus::status {
namespace {

constexpr std::size_t kBatchBytes = 256 << 10;
constexpr auto kIdleWait = std::chrono::milliseconds(50);

Error sys_error(const std::string& what) { return Error(Errc::system, what + ": " + std::strerror(errno)); }

// A STATUS payload that can be one JSONL line: our canonical object (a foreign writer's
// garbage, or a payload with a raw newline, would corrupt the file).
bool line_ok(std::string_view payload) noexcept {
  return payload.size() >= 8 && payload.substr(0, 7) == "{\"ts\":\"" && payload.back() == '}' &&
         payload.find('\n') == std::string_view::npos;
}

}  // namespace

JsonlWriter::JsonlWriter(Room room, const StatusBusOptions& options, std::atomic<std::uint64_t>& persisted,
                         std::atomic<std::uint64_t>& errors)
    : room_(std::move(room)),
      path_(options.persist_path),
      reader_name_(options.persist_reader),
      fsync_(options.persist_fsync),
      persisted_(persisted),
      errors_(errors) {
  prepare_file();
  try {
    SubscribeOptions so;
    so.from = StartFrom::latest;
    const AttachedReader a = attach_durable(RoomAccess::ring(room_), reader_name_, so);
    slot_ = a.slot;
    cursor_ = a.cursor;
  } catch (...) {
    ::close(fd_);
    throw;
  }
  thread_ = std::thread([this] { run(); });
}

JsonlWriter::~JsonlWriter() { stop(false); }

void JsonlWriter::prepare_file() {
  const std::filesystem::path p(path_);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw sys_error("cannot open status log '" + path_ + "'");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    ::close(fd_);
    throw sys_error("cannot stat '" + path_ + "'");
  }
  // Keep the file's tail: enough to hold the batch a killed writer may have written without
  // moving its cursor, plus a torn line.
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t keep = std::min<std::uint64_t>(size, 2 * kBatchBytes + (64 << 10));
  std::string window(keep, '\0');
  std::size_t got = 0;
  while (got < keep) {
    const ssize_t n = ::pread(fd_, window.data() + got, keep - got, static_cast<off_t>(size - keep + got));
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  window.resize(got);
  const std::size_t last_nl = window.rfind('\n');
  const std::size_t complete = last_nl == std::string::npos ? 0 : last_nl + 1;
  if (complete < window.size() && got == keep) {
    // A torn last line: the writer was killed mid-write. Its entry is still in the ring, behind
    // the durable cursor, and is written again below.
    std::fprintf(stderr, "agentbus: status log '%s': removing a torn last line (%zu bytes) left by a killed writer\n",
                 path_.c_str(), window.size() - complete);
    if (::ftruncate(fd_, static_cast<off_t>(size - (window.size() - complete))) != 0) {
      ::close(fd_);
      throw sys_error("cannot truncate '" + path_ + "'");
    }
    window.resize(complete);
  }
  // Start the window at a line boundary (unless it starts the file).
  if (size > keep) {
    const std::size_t first_nl = window.find('\n');
    window.erase(0, first_nl == std::string::npos ? window.size() : first_nl + 1);
  }
  tail_window_ = std::move(window);
}

bool JsonlWriter::flush(std::string& buf, std::size_t& written, std::uint64_t lines, std::uint64_t pos) {
  while (written < buf.size()) {
    const ssize_t n = ::write(fd_, buf.data() + written, buf.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (errors_.fetch_add(1, std::memory_order_relaxed) == 0)
        std::fprintf(stderr, "agentbus: status log '%s': write failed (%s); retrying, producers wait\n",
                     path_.c_str(), std::strerror(errno));
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  if (fsync_ && !buf.empty() && ::fdatasync(fd_) != 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Only now may producers reuse the space: the lines are in the file.
  slot_->cursor.store(pos, std::memory_order_release);
  persisted_.fetch_add(lines, std::memory_order_relaxed);
  buf.clear();
  written = 0;
  return true;
}

void JsonlWriter::run() {
  shm::Ring& ring = RoomAccess::ring(room_);
  const std::size_t batch = std::min<std::size_t>(kBatchBytes, ring.capacity() / 4);
  std::string buf;
  buf.reserve(batch + ring.max_record());
  std::size_t written = 0;
  std::uint64_t pos = cursor_, acked = cursor_, lines = 0;
  std::uint64_t stall_pos = ~0ull;
  auto stall_since = std::chrono::steady_clock::now();
  bool dedup = !tail_window_.empty();
  std::uint64_t stop_at = ~0ull;
  bool failing = false;

  for (;;) {
    if (stop_at == ~0ull && stop_.load(std::memory_order_acquire)) stop_at = ring.tail();
    // The first batch after attaching may repeat what a killed writer already wrote: read all
    // of it before deciding (the ring holds it all, behind our cursor).
    const std::size_t limit = dedup ? tail_window_.size() + batch : batch;
    bool idle = false;
    while (!failing && buf.size() < limit) {
      const shm::PeekResult p = ring.peek(pos);
      if (p.kind == shm::Peek::padding) {
        pos += p.len;
        continue;
      }
      if (p.kind == shm::Peek::committed) {
        EventView v;
        if (ring.decode(ring.at(pos), p.len, pos, v) && v.type == kStatusEventType && line_ok(v.payload)) {
          buf.append(v.payload);
          buf += '\n';
          ++lines;
        }
        pos += p.len;
        continue;
      }
      if (p.kind == shm::Peek::lapped) {  // only if someone dropped our reader meanwhile
        std::fprintf(stderr, "agentbus: status log '%s': reader was dropped and lapped; entries lost\n",
                     path_.c_str());
        pos = ring.oldest();
        continue;
      }
      if (p.kind == shm::Peek::pending) {
        const auto now = std::chrono::steady_clock::now();
        if (stall_pos != pos) {
          stall_pos = pos;
          stall_since = now;
        } else if (now - stall_since >= ring.timeouts().stall) {
          ring.repair(pos);  // pads it only if its claimer is confirmed dead
          stall_since = now;
        }
      }
      idle = true;
      break;
    }
    if (dedup && (idle || buf.size() >= limit)) {
      // Drop the longest run of leading lines the file already ends with.
      std::size_t skip = 0;
      for (std::size_t end = buf.size(); end > 0;) {
        if (end <= tail_window_.size() &&
            tail_window_.compare(tail_window_.size() - end, end, buf, 0, end) == 0) {
          skip = end;
          break;
        }
        end = buf.rfind('\n', end - 2);
        end = end == std::string::npos ? 0 : end + 1;
      }
      if (skip > 0) {
        std::uint64_t dropped = 0;
        for (std::size_t i = 0; i < skip; ++i) dropped += buf[i] == '\n';
        buf.erase(0, skip);
        lines -= dropped;
      }
      dedup = false;
      tail_window_.clear();
      tail_window_.shrink_to_fit();
    }
    if (!dedup && pos != acked) {
      if (flush(buf, written, lines, pos)) {
        acked = pos;
        lines = 0;
        failing = false;
      } else {
        failing = true;
      }
    }
    if (stop_at != ~0ull && (pos >= stop_at || idle) && !failing) break;
    if (failing) {
      if (stop_at != ~0ull) break;  // give up: the cursor stays before what is unwritten
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // retry a failing disk
      continue;
    }
    if (!idle) continue;
    // Caught up: sleep until a publisher wakes us (bounded, to notice stop and stalls).
    const std::uint32_t seq = ring.publish_seq();
    ring.add_waiter();
    const shm::PeekResult again = ring.peek(pos);
    if (again.kind != shm::Peek::committed && again.kind != shm::Peek::padding && !stop_.load(std::memory_order_acquire))
      ring.wait_for_publish(seq, stall_pos == pos ? ring.timeouts().stall : std::chrono::nanoseconds(kIdleWait));
    ring.remove_waiter();
  }
  cursor_ = acked;
}

void JsonlWriter::stop(bool drop) noexcept {
  if (stopped_) return;
  stopped_ = true;
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  release_reader(*slot_, true, cursor_);
  if (drop) {
    try {
      room_.drop_reader(reader_name_);
    } catch (...) {
    }
  }
  ::close(fd_);
}

}  // namespace agentbus::status
