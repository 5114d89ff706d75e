#include "bridge/archive_file.hpp"

#include <agentbus/error.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <system_error>
#include <unistd.h>

namespace agentbus::bridge {
namespace {

constexpr std::size_t kFlushBytes = 256u << 10;
constexpr std::size_t kMaxStem = 160;

bool fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string archive_file_stem(std::string_view key) {
  std::string out;
  for (const char c : key.substr(0, kMaxStem)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '-';
    out += plain ? c : '_';
  }
  return out;
}

ArchiveFile::ArchiveFile(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw Error(Errc::system, "cannot create the archive directory " + dir_ + ": " + ec.message());
  temp_ = dir_ + "/." + name_ + ".jsonl.tmp-" + std::to_string(::getpid());
  // 0600: an archive holds the rooms' messages.
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error(Errc::system, "cannot create " + temp_ + ": " + std::strerror(errno));
}

ArchiveFile::~ArchiveFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_.c_str());
}

void ArchiveFile::fail(const std::string& doing, const std::string& path) {
  const int err = errno;
  ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());
  throw Error(Errc::system, "cannot " + doing + " " + path + ": " + std::strerror(err));
}

void ArchiveFile::append(std::string_view line) {
  buffer_.append(line);
  if (buffer_.size() >= kFlushBytes) flush();
}

void ArchiveFile::flush() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      fail("write", temp_);
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

std::string ArchiveFile::commit() {
  flush();
  if (::fsync(fd_) != 0) fail("fsync", temp_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    const int err = errno;
    ::unlink(temp_.c_str());
    throw Error(Errc::system, "cannot write " + temp_ + ": " + std::strerror(err));
  }
  fd_ = -1;
  for (int n = 1;; ++n) {
    const std::string path = dir_ + "/" + name_ + (n == 1 ? "" : "-" + std::to_string(n)) + ".jsonl";
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
      if (!fsync_dir(dir_)) throw Error(Errc::system, "cannot fsync the directory " + dir_ + ": " + std::strerror(errno));
      return path;
    }
    if (errno != EEXIST || n >= 1000) {
      const int err = errno;
      ::unlink(temp_.c_str());
      throw Error(Errc::system, "cannot rename " + temp_ + " to " + path + ": " + std::strerror(err));
    }
  }
}

}  // namespace agentbus::bridge
