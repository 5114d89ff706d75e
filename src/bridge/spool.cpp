#include "bridge/spool.hpp"

#include <agentbus/error.hpp>
#include <agentbus/hash.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace agentbus::bridge {

namespace {

constexpr std::size_t kRecordHead = 8;  // len u32, check u32

std::uint32_t check_of(std::string_view bytes) { return static_cast<std::uint32_t>(fnv1a(bytes)); }

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw Error(Errc::system, what + " spool " + path + ": " + std::strerror(errno));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string read_file(int fd, const std::string& path) {
  std::string data;
  char buf[1 << 16];
  if (::lseek(fd, 0, SEEK_SET) < 0) fail("cannot seek", path);
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read", path);
    if (n == 0) return data;
    data.append(buf, static_cast<std::size_t>(n));
  }
}

// Calls f(record) for each intact record; returns the length of the intact prefix.
template <class F>
std::uint64_t walk(std::string_view data, F&& f) {
  std::uint64_t at = 0;
  while (data.size() - at >= kRecordHead) {
    const std::uint32_t len = get_u32(data.data() + at);
    const std::uint32_t check = get_u32(data.data() + at + 4);
    if (len > data.size() - at - kRecordHead) break;
    const std::string_view rec = data.substr(at + kRecordHead, len);
    if (check_of(rec) != check) break;
    f(rec);
    at += kRecordHead + len;
  }
  return at;
}

}  // namespace

Spool::Spool(std::string path, std::uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("cannot open", path_);
  const std::string data = read_file(fd_, path_);
  const std::uint64_t intact = walk(data, [&](std::string_view) { ++records_; });
  if (intact != data.size()) {
    torn_dropped_ = 1;
    if (::ftruncate(fd_, static_cast<off_t>(intact)) != 0) fail("cannot truncate", path_);
    if (::fsync(fd_) != 0) fail("cannot fsync", path_);
  }
  bytes_ = intact;
}

Spool::~Spool() {
  if (fd_ >= 0) ::close(fd_);
}

bool Spool::append(const std::vector<std::string>& records) {
  std::string out;
  for (const std::string& r : records) {
    put_u32(out, static_cast<std::uint32_t>(r.size()));
    put_u32(out, check_of(r));
    out += r;
  }
  if (bytes_ + out.size() > max_bytes_) return false;
  if (::lseek(fd_, static_cast<off_t>(bytes_), SEEK_SET) < 0) fail("cannot seek", path_);
  for (std::size_t done = 0; done < out.size();) {
    const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write", path_);
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) fail("cannot fsync", path_);
  bytes_ += out.size();
  records_ += records.size();
  return true;
}

std::vector<std::string> Spool::read_all() const {
  const std::string data = read_file(fd_, path_);
  std::vector<std::string> out;
  walk(std::string_view(data).substr(0, bytes_), [&](std::string_view r) { out.emplace_back(r); });
  return out;
}

void Spool::clear() {
  if (::ftruncate(fd_, 0) != 0) fail("cannot truncate", path_);
  if (::fsync(fd_) != 0) fail("cannot fsync", path_);
  bytes_ = 0;
  records_ = 0;
}

}  // namespace agentbus::bridge
