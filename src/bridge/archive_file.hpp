// bridge/archive_file.hpp — one archive file, which appears whole or not at all.
//
// Lines go to a hidden temporary file in the directory; commit() fsyncs it, renames it to its
// name (never over an existing file: a second sweep in the same millisecond gets "-2") and
// fsyncs the directory, so once commit() returns the file survives a crash. Until then a
// failure, or the destructor, removes the temporary file. Errors are Error{system} naming the
// path and errno's text.
#pragma once

#include <string>
#include <string_view>

namespace agentbus::bridge {

class ArchiveFile {
 public:
  // Creates `dir` (and its parents) when absent. `name` without ".jsonl".
  ArchiveFile(std::string dir, std::string name);
  ArchiveFile(const ArchiveFile&) = delete;
  ArchiveFile& operator=(const ArchiveFile&) = delete;
  ~ArchiveFile();

  void append(std::string_view line);
  // The file's final path.
  std::string commit();

 private:
  void flush();
  [[noreturn]] void fail(const std::string& doing, const std::string& path);

  std::string dir_;
  std::string name_;
  std::string temp_;
  std::string buffer_;
  int fd_ = -1;
};

// A stream key as a file name: bytes other than [A-Za-z0-9._-] become '_', at most 160 bytes.
[[nodiscard]] std::string archive_file_stem(std::string_view key);

}  // namespace agentbus::bridge
