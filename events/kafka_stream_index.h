#pragma once
// A persistent index of a Kafka topic's streams, for readers (the replay tool): which offsets
// hold a stream's events, and its head version. Kafka itself can only be read partition by
// partition, so without it finding one ticket's history means reading the whole topic. The
// index is built on first use and then only catches up on what was appended since.
//
// Key layout (one RocksDB directory per topic; stream ids never contain '\0'):
//   m                               -> "<topic>\0<partition count>"  (which topic it indexes)
//   c<partition be64>               -> next offset to index in that partition (be64)
//   h<stream>                       -> head version (be64)
//   o<stream>\0<version be64>       -> offset of that version (be64); the partition is the
//                                      stream's (partition_of)
// Rows and the checkpoint they advance are written in one WriteBatch, so after a crash the
// index resumes from a checkpoint that matches its rows.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "events/errc.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace chorus::events {

class KafkaStreamIndex {
 public:
  // Opens (creating) the index in `dir` for `topic` with `partitions` partitions. An index of
  // another topic or partition count is emptied first (it would point at the wrong records).
  // Fails with io_error when the directory cannot be opened. Not thread-safe with another
  // process holding `dir`.
  [[nodiscard]] static Result<std::unique_ptr<KafkaStreamIndex>> open(const std::string& dir,
                                                                      const std::string& topic,
                                                                      std::uint32_t partitions);
  ~KafkaStreamIndex();

  // The next offset to index in each partition (0 where nothing is indexed). Thread-safe.
  [[nodiscard]] const std::vector<std::uint64_t>& checkpoint() const noexcept { return next_; }

  // Empties the index (when the topic no longer holds what it indexed: recreated, or another
  // cluster). Fails with io_error, leaving the index as it was. Not thread-safe.
  [[nodiscard]] Result<void> reset();

  // Stages one event; nothing is visible until commit(). Not thread-safe.
  void stage(std::string_view stream_id, std::uint64_t version, std::uint64_t offset);
  // Writes the staged events and the new checkpoint `next` atomically. Fails with io_error,
  // leaving the index as it was before the staged events. Not thread-safe.
  [[nodiscard]] Result<void> commit(const std::vector<std::uint64_t>& next);

  // The stream's head version; 0 when the index holds none of its events. Fails with io_error.
  // Thread-safe.
  [[nodiscard]] Result<std::uint64_t> head(std::string_view stream_id) const;
  // The offsets of versions from `from_version` (at least 1) on, at most `max`, in version
  // order. Fails with io_error. Thread-safe.
  [[nodiscard]] Result<std::vector<std::uint64_t>> offsets(std::string_view stream_id,
                                                           std::uint64_t from_version,
                                                           std::size_t max) const;

 private:
  KafkaStreamIndex() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<rocksdb::WriteBatch> staged_;
  std::vector<std::uint64_t> next_;
};

}  // namespace chorus::events
