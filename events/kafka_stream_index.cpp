#include "events/kafka_stream_index.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "events/big_endian.h"

namespace chorus::events {

namespace {

const std::string kMetaKey = "m";

std::string checkpoint_key(std::uint64_t partition) { return "c" + be64(partition); }
std::string head_key(std::string_view stream) { return "h" + std::string(stream); }
std::string offset_prefix(std::string_view stream) {
  return "o" + std::string(stream) + std::string(1, '\0');
}

std::unexpected<Error> io(const std::string& what, const rocksdb::Status& s) {
  return fail(errc::io_error, "Kafka stream index: " + what + ": " + s.ToString());
}

}  // namespace

KafkaStreamIndex::~KafkaStreamIndex() {
  // Flushed now so the next opening does not replay the whole write-ahead log (seconds after a
  // first build over a big topic).
  if (db_) (void)db_->Flush(rocksdb::FlushOptions());
}

Result<std::unique_ptr<KafkaStreamIndex>> KafkaStreamIndex::open(const std::string& dir,
                                                                 const std::string& topic,
                                                                 std::uint32_t partitions) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return io("opening " + dir, s);
  std::unique_ptr<KafkaStreamIndex> index(new KafkaStreamIndex);
  index->db_.reset(raw);
  index->staged_ = std::make_unique<rocksdb::WriteBatch>();
  index->next_.assign(partitions, 0);

  const std::string meta = topic + std::string(1, '\0') + std::to_string(partitions);
  std::string stored;
  s = raw->Get(rocksdb::ReadOptions(), kMetaKey, &stored);
  if (s.ok() && stored != meta) {
    if (auto ok = index->reset(); !ok) return std::unexpected(ok.error());
  } else if (!s.ok() && !s.IsNotFound()) {
    return io("reading its topic", s);
  }
  if (!s.ok() || stored != meta) {
    s = raw->Put(rocksdb::WriteOptions(), kMetaKey, meta);
    if (!s.ok()) return io("writing its topic", s);
  }
  for (std::uint32_t p = 0; p < partitions; ++p) {
    s = raw->Get(rocksdb::ReadOptions(), checkpoint_key(p), &stored);
    if (s.ok()) {
      index->next_[p] = from_be64(stored);
    } else if (!s.IsNotFound()) {
      return io("reading a checkpoint", s);
    }
  }
  return index;
}

Result<void> KafkaStreamIndex::reset() {
  rocksdb::WriteBatch wipe;
  // Every key sorts after "" and before "\xff" (the prefixes are letters).
  wipe.DeleteRange(db_->DefaultColumnFamily(), "", "\xff");
  auto s = db_->Write(rocksdb::WriteOptions(), &wipe);
  if (!s.ok()) return io("emptying it", s);
  staged_->Clear();
  next_.assign(next_.size(), 0);
  return {};
}

void KafkaStreamIndex::stage(std::string_view stream_id, std::uint64_t version,
                             std::uint64_t offset) {
  (void)staged_->Put(offset_prefix(stream_id) + be64(version), be64(offset));
  // Events of a stream come in version order (one partition): the last staged is the head.
  (void)staged_->Put(head_key(stream_id), be64(version));
}

Result<void> KafkaStreamIndex::commit(const std::vector<std::uint64_t>& next) {
  for (std::size_t p = 0; p < next.size() && p < next_.size(); ++p) {
    if (next[p] != next_[p]) (void)staged_->Put(checkpoint_key(p), be64(next[p]));
  }
  // Not synced: a lost tail is re-read from Kafka on the next opening.
  auto s = db_->Write(rocksdb::WriteOptions(), staged_.get());
  staged_->Clear();
  if (!s.ok()) return io("writing", s);
  for (std::size_t p = 0; p < next.size() && p < next_.size(); ++p) next_[p] = next[p];
  return {};
}

Result<std::uint64_t> KafkaStreamIndex::head(std::string_view stream_id) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), head_key(stream_id), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return io("reading a head", s);
  return from_be64(value);
}

Result<std::vector<std::uint64_t>> KafkaStreamIndex::offsets(std::string_view stream_id,
                                                             std::uint64_t from_version,
                                                             std::size_t max) const {
  const std::string prefix = offset_prefix(stream_id);
  std::vector<std::uint64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix + be64(std::max<std::uint64_t>(from_version, 1)));
       it->Valid() && it->key().starts_with(prefix) && out.size() < max; it->Next()) {
    out.push_back(from_be64(std::string_view(it->value().data(), it->value().size())));
  }
  if (!it->status().ok()) return io("reading offsets", it->status());
  return out;
}

}  // namespace chorus::events
