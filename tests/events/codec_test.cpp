#include "events/codec.h"

#include <gtest/gtest.h>

#include "events/chain.h"
#include "tests/events/test_events.h"

namespace chorus::events {
namespace {

using testing::draft_event;

TEST(Codec, RoundTripsEveryEnvelopeField) {
  NewEvent e = draft_event("ticket-1");
  e.meta.actor.on_behalf_of = "structure-9";
  Hash prev{};
  prev[0] = 7;
  auto encoded = encode("ticket-1", 3, prev, e);
  auto decoded = decode(encoded.bytes);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->stream_id, "ticket-1");
  EXPECT_EQ(decoded->version, 3u);
  EXPECT_EQ(decoded->meta, e.meta);
  EXPECT_EQ(decoded->prev_hash, prev);
  EXPECT_EQ(decoded->hash, encoded.hash);
  EXPECT_EQ(decoded->schema_version, TicketDraftSaved::kSchemaVersion);
  EXPECT_EQ(decoded->payload, e.payload);
  EXPECT_STREQ(type_name(decoded->payload), "TicketDraftSaved");
}

TEST(Codec, EveryFlippedByteIsCaught) {
  auto encoded = encode("ticket-1", 1, Hash{}, draft_event("ticket-1"));
  for (std::size_t i = 0; i < encoded.bytes.size(); ++i) {
    std::string damaged = encoded.bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    auto decoded = decode(damaged);
    // Either the structure or the hash check fails; a flip never passes unseen, unless it
    // lands in padding that no field covers, which then changes nothing that is read.
    if (decoded) {
      auto original = decode(encoded.bytes);
      EXPECT_EQ(decoded->payload, original->payload) << "byte " << i;
      EXPECT_EQ(decoded->meta, original->meta) << "byte " << i;
      EXPECT_EQ(decoded->hash, original->hash) << "byte " << i;
    } else {
      EXPECT_EQ(decoded.error().code, errc::corruption);
    }
  }
}

TEST(Codec, GarbageIsCorruptionNotACrash) {
  for (std::string bytes : {std::string(), std::string("abc"), std::string(300, '\xff')}) {
    auto decoded = decode(bytes);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error().code, errc::corruption);
    EXPECT_FALSE(peek(bytes));
  }
}

TEST(Chain, DetectsABrokenLink) {
  std::vector<RecordedEvent> events;
  Hash prev{};
  for (std::uint64_t v = 1; v <= 3; ++v) {
    auto enc = encode("s", v, prev, draft_event("s"));
    events.push_back(RecordedEvent{{0, v - 1}, "s", v, enc.bytes});
    prev = enc.hash;
  }
  auto ok = verify_chain(events);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, prev);

  // Replace version 2 by another, self-consistent, event: its hash is fine, the link is not.
  auto other = encode("s", 2, Hash{}, draft_event("s"));
  events[1].bytes = other.bytes;
  auto broken = verify_chain(events);
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("version 2"), std::string::npos) << broken.error().message;
}

TEST(Position, TokenRoundTripAndCovers) {
  LogPosition p{{3, 0, 17}};
  auto parsed = LogPosition::from_token(p.to_token());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, p);
  EXPECT_TRUE(p.covers(LogPosition{{3, 0, 10}}));
  const LogPosition behind{{1, 5}};
  EXPECT_EQ(behind.distance_to(p), 2u + 0u + 17u);  // partition 1 is ahead: it counts 0
  EXPECT_EQ(p.distance_to(behind), 5u);
  EXPECT_FALSE(p.covers(LogPosition{{4}}));
  for (const char* bad : {"", ".", "1..2", "x", "1.-2", "99999999999999999999999"}) {
    EXPECT_FALSE(LogPosition::from_token(bad)) << bad;
  }
}

TEST(Batch, RejectsMalformedBatches) {
  EXPECT_FALSE(check_batch({}));
  std::vector<StreamAppend> dup{testing::append_to("a", 0), testing::append_to("a", 0)};
  EXPECT_FALSE(check_batch(dup));
  std::vector<StreamAppend> empty{StreamAppend{"a", 0, {}}};
  EXPECT_FALSE(check_batch(empty));
  std::vector<StreamAppend> bad_id{testing::append_to("has space", 0)};
  EXPECT_FALSE(check_batch(bad_id));
}

}  // namespace
}  // namespace chorus::events
