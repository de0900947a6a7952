#pragma once
// The content store of ticket attachments ("pièces jointes"): the files' bytes, addressed by
// their SHA-256, on the server's disk. The log holds only their description (FileAttached);
// a file is stored durably before its event is appended, so an acknowledged event never names
// missing content. One copy per content, whoever sends it again (de-duplicated by hash).
//
// Layout: <dir>/<first two hex digits>/<64 hex digits>. A file is written to a temporary file
// beside its final name, fsynced, renamed, and its directory fsynced. A crash may leave a
// temporary file (".tmp-..."), or content that no event names (stored, then the append
// failed or the decision was refused on a retry); neither is ever served, and sweep() removes
// both once they are old enough that no request still in flight can be about to name them.
//
// With the Kafka log and several servers, every server must open the same directory (a shared
// volume: chorusd --attachments-dir): a file is kept where the server that received it wrote
// it, and a server that does not find it answers 503 attachment.elsewhere. put() is safe across
// processes (atomic renames); sweep() locks out the put() of its own process only, so on a
// shared directory one content already there, unnamed and older than the cutoff (a failed
// upload's), sent again to another server during a sweep, may be removed under it: sweep when
// no upload runs (the operator's endpoint, on one server).
//
// Its own error type (the module boundary of this store; the routes turn it into HTTP).

#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace chorus::api {

enum class content_errc {
  invalid_argument = 1,  // not a SHA-256 in lower-case hex
  not_found,             // no content under this hash
  io_error,              // the disk failed; for put, the content may not be durable
  corruption,            // stored bytes do not hash to their name
};

struct ContentError {
  content_errc code;
  std::string message;
};

template <class T>
using ContentResult = std::expected<T, ContentError>;

// What one sweep did.
struct SweepReport {
  std::uint64_t examined = 0;           // content files looked at
  std::uint64_t removed = 0;            // content no event names, removed
  std::uint64_t temporary_removed = 0;  // leftover temporary files, removed
  std::uint64_t bytes_freed = 0;
};

class ContentStore {
 public:
  // Opens the store in `dir`, creating it when missing. Fails with io_error when the directory
  // cannot be created. Nothing else is read.
  [[nodiscard]] static ContentResult<ContentStore> open(std::filesystem::path dir);

  // The SHA-256 of `bytes`, 64 lower-case hex digits: the name put() stores them under. Pure.
  [[nodiscard]] static std::string digest(std::string_view bytes);

  // Stores `bytes` under `sha256`, which must be digest(bytes) (the caller computed it for the
  // event; not computed twice for files of megabytes). Success: the content is durable (file
  // and directory fsynced) or was already there with the same size, and its file is stamped
  // as written now, so that a sweep started before sees it as new. Fails with
  // invalid_argument for a malformed hash, io_error when writing fails (no file under the final
  // name is left half-written: the rename is atomic). Thread-safe, also across processes.
  [[nodiscard]] ContentResult<void> put(std::string_view bytes, const std::string& sha256) const;

  // The bytes stored under `sha256`, checked against it. Fails with invalid_argument for a
  // malformed hash, not_found, io_error, or corruption when the bytes do not hash to the name.
  // Changes nothing. Thread-safe.
  [[nodiscard]] ContentResult<std::string> get(const std::string& sha256) const;

  // Removes the content files last written before `cutoff` that `named` says no event names,
  // and the temporary files last written before it. The caller makes `named` cover every
  // event appended before the sweep started (views caught up with the log's end) and picks a
  // cutoff older than any request in flight: put() stamps a file it keeps, and a file is
  // checked and removed under the lock put() takes, so content that an event appended after
  // the start names is never removed. Files of other names are left alone.
  // Success: what was done. Fails with io_error when the store cannot be listed or a file
  // cannot be removed, or with `named`'s own error: the sweep then stops, and what it removed
  // before stays removed (each removal is whole). Thread-safe with put() and get() of this
  // object and its copies; one process only (put() in another process is not locked out).
  [[nodiscard]] ContentResult<SweepReport> sweep(
      std::filesystem::file_time_type cutoff,
      const std::function<ContentResult<bool>(const std::string& sha256)>& named) const;

  // Where the content of `sha256` is (or would be) kept; `sha256` must be well-formed.
  [[nodiscard]] std::filesystem::path path_of(const std::string& sha256) const;

 private:
  explicit ContentStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
  // Orders put()'s keep-or-replace of a final name against sweep()'s check-and-remove of it.
  std::shared_ptr<std::mutex> names_ = std::make_shared<std::mutex>();
};

// Whether `v` is 64 lower-case hex digits. Pure.
[[nodiscard]] bool is_sha256_hex(std::string_view v) noexcept;

}  // namespace chorus::api
