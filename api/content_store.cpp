#include "api/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "events/codec.h"

namespace chorus::api {
namespace {

std::unexpected<ContentError> fail(content_errc code, std::string message) {
  return std::unexpected<ContentError>(ContentError{code, std::move(message)});
}

std::string errno_text(const char* what, const std::filesystem::path& path) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(errno);
}

// A file descriptor closed on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error (a write may only fail at close on some file systems).
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

// A directory's entries (a new file name, a new subdirectory) are durable once it is fsynced.
bool sync_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() >= 0 && ::fsync(fd.get()) == 0;
}

}  // namespace

bool is_sha256_hex(std::string_view v) noexcept {
  return v.size() == 64 && std::all_of(v.begin(), v.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

ContentResult<ContentStore> ContentStore::open(std::filesystem::path dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return fail(content_errc::io_error, "cannot create " + dir.string() + ": " + ec.message());
  return ContentStore(std::move(dir));
}

std::string ContentStore::digest(std::string_view bytes) {
  return events::to_hex(events::sha256(bytes));
}

std::filesystem::path ContentStore::path_of(const std::string& sha256) const {
  return dir_ / sha256.substr(0, 2) / sha256;
}

ContentResult<void> ContentStore::put(std::string_view bytes, const std::string& sha256) const {
  if (!is_sha256_hex(sha256)) return fail(content_errc::invalid_argument, "malformed SHA-256");
  const auto final_path = path_of(sha256);
  const auto shard = final_path.parent_path();
  std::error_code ec;
  {
    // De-duplicated: the same bytes are there already (a file under its final name is whole,
    // being renamed there only once complete and fsynced). Stamped as new under the lock, so a
    // sweep that found it old checks it again before removing it.
    std::lock_guard lock(*names_);
    const auto existing = std::filesystem::file_size(final_path, ec);
    if (!ec && existing == bytes.size()) {
      std::filesystem::last_write_time(final_path, std::filesystem::file_time_type::clock::now(),
                                       ec);
      if (ec) return fail(content_errc::io_error, "cannot stamp " + final_path.string());
      return {};
    }
  }
  if (!std::filesystem::exists(shard, ec)) {
    std::filesystem::create_directories(shard, ec);
    if (ec) return fail(content_errc::io_error, "cannot create " + shard.string());
    if (!sync_dir(dir_)) return fail(content_errc::io_error, errno_text("cannot fsync", dir_));
  }
  // A name no other writer uses, in the same directory so that the rename is atomic.
  static std::atomic<std::uint64_t> counter{0};
  const auto temp = shard / (".tmp-" + sha256 + "-" + std::to_string(::getpid()) + "-" +
                             std::to_string(counter.fetch_add(1)));
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (fd.get() < 0) return fail(content_errc::io_error, errno_text("cannot create", temp));
  auto abandon = [&](const char* what) {
    const std::string message = errno_text(what, temp);
    fd.close();
    ::unlink(temp.c_str());
    return fail(content_errc::io_error, message);
  };
  for (std::size_t written = 0; written < bytes.size();) {
    const ssize_t n = ::write(fd.get(), bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return abandon("cannot write");
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return abandon("cannot fsync");
  if (!fd.close()) {
    ::unlink(temp.c_str());
    return fail(content_errc::io_error, errno_text("cannot close", temp));
  }
  {
    std::lock_guard lock(*names_);
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
      const std::string message = errno_text("cannot rename", temp);
      ::unlink(temp.c_str());
      return fail(content_errc::io_error, message);
    }
  }
  if (!sync_dir(shard)) return fail(content_errc::io_error, errno_text("cannot fsync", shard));
  return {};
}

ContentResult<SweepReport> ContentStore::sweep(
    std::filesystem::file_time_type cutoff,
    const std::function<ContentResult<bool>(const std::string&)>& named) const {
  namespace fs = std::filesystem;
  SweepReport report;
  std::error_code shards_ec;
  for (fs::directory_iterator shards(dir_, shards_ec), end; !shards_ec && shards != end;
       shards.increment(shards_ec)) {
    std::error_code kind_ec;
    if (!shards->is_directory(kind_ec)) continue;
    std::error_code files_ec;
    for (fs::directory_iterator files(shards->path(), files_ec); !files_ec && files != end;
         files.increment(files_ec)) {
      const fs::path path = files->path();
      const std::string name = path.filename().string();
      const bool temporary = name.starts_with(".tmp-");
      if (!temporary && !is_sha256_hex(name)) continue;
      if (!temporary) ++report.examined;
      // Checked and removed under the lock put() keeps or replaces a name under: a file put()
      // stamped since the listing is new again and stays.
      std::lock_guard lock(*names_);
      std::error_code gone;
      const auto written = fs::last_write_time(path, gone);
      if (gone || written >= cutoff) continue;  // removed meanwhile, or too new
      if (!temporary) {
        auto is_named = named(name);
        if (!is_named) return std::unexpected(is_named.error());
        if (*is_named) continue;
      }
      const auto size = fs::file_size(path, gone);
      if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) continue;
        return fail(content_errc::io_error, errno_text("cannot remove", path));
      }
      ++(temporary ? report.temporary_removed : report.removed);
      if (!gone) report.bytes_freed += size;
    }
    if (files_ec) {
      return fail(content_errc::io_error,
                  "cannot list " + shards->path().string() + ": " + files_ec.message());
    }
  }
  if (shards_ec) {
    return fail(content_errc::io_error,
                "cannot list " + dir_.string() + ": " + shards_ec.message());
  }
  return report;
}

ContentResult<std::string> ContentStore::get(const std::string& sha256) const {
  if (!is_sha256_hex(sha256)) return fail(content_errc::invalid_argument, "malformed SHA-256");
  const auto path = path_of(sha256);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return fail(content_errc::not_found, "no content " + sha256);
    return fail(content_errc::io_error, errno_text("cannot open", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(content_errc::io_error, errno_text("stat", path));
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  for (std::size_t got = 0; got < bytes.size();) {
    const ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(content_errc::io_error, errno_text("cannot read", path));
    if (n == 0) return fail(content_errc::corruption, path.string() + " shrank while read");
    got += static_cast<std::size_t>(n);
  }
  // Checked on every read: a flipped bit on disk is reported, never served as the file.
  if (digest(bytes) != sha256) {
    return fail(content_errc::corruption, path.string() + " does not hash to its name");
  }
  return bytes;
}

}  // namespace chorus::api
