#include "events/codec.h"

#include <gtest/gtest.h>

#include <set>

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

// Every payload of the structures issue survives encode/decode field for field, lists and the
// shared StructureData included.
TEST(Codec, RoundTripsEveryStructureAndAccountPayload) {
  StructureData data{"Mairie de Test",
                     "1 place de la Mairie",
                     "Bâtiment B",
                     "75001",
                     "Paris",
                     "FR",
                     true,
                     true,
                     false,
                     true,
                     3,
                     "FR00123456789",
                     "PAC-1",
                     "général",
                     true};
  const std::vector<Payload> payloads{
      StructureCreated{"s1", "SIRET", "73282932000074", true, true, true, "2024-01-02", "s0", data},
      StructureDataChanged{"s1", data},
      StructureDeactivated{"s1", "s2", "Changement de SIRET"},
      ServiceAdded{"s1", "ACHATS", "Achats", "Service des achats", "2024-01-01", "2025-01-01",
                   true},
      ServiceChanged{"s1", "ACHATS", "Achats publics", "", "2024-01-01", "", false},
      ServiceRemoved{"s1", "ACHATS"},
      AccountCreated{"u1", "u1@example.fr", "Jeanne", "Martin", "pigp", true},
      AccountCreated{"t1", "api@example.fr", "", "ERP", "portal", true, "s1"},
      AccountActivated{"u1"},
      ActivationResent{"u1"},
      AccountDeactivated{"u1", 1'700'000'000'000'000},
      AccountReactivated{"u1"},
      PasswordResetRecorded{"s1", "u1"},
      AttachmentRequested{"s1", "r1", "u1", "ACHATS", "Merci"},
      AttachmentValidated{"s1", "r1", "u1", "gs", {"ACHATS", "VENTES"}, "ok"},
      AttachmentValidated{"s1", "r2", "u1", "user", {}, ""},
      AttachmentRefused{"s1", "r1", "u1", "Inconnu"},
      UserAttached{"s1", "u2", "user", {"ACHATS"}, "2024-02-01", "Arrivée", true},
      AttachmentRemoved{"s1", "u2"},
      MainManagerTransferred{"s1", "u1", "u3", true},
      MainManagerRoleChanged{"u3", "s1", true},
      MainManagerRoleChanged{"u1", "s1", false},
      EspaceEnabled{"s1", "Factures reçues", "ACHATS", true, false},
      SubscriptionRequested{"s1", "q1", "u2", "Factures reçues", "", true, true, "svp"},
      SubscriptionValidated{"s1", "q1", "u2", "Factures reçues", "", true, false, "lecture"},
      SubscriptionRefused{"s1", "q1", "u2", "Non"},
      IdentifierReserved{"SIRET", "73282932000074", "s1"},
      ReferenceObjectImported{"facture", "FAC-2024-001", "s1", "ACHATS", "s2"},
  };
  std::uint64_t version = 0;
  for (const auto& payload : payloads) {
    NewEvent e = draft_event("structure-s1");
    e.payload = payload;
    auto decoded = decode(encode("structure-s1", ++version, Hash{}, e).bytes);
    ASSERT_TRUE(decoded) << type_name(payload) << ": " << decoded.error().message;
    EXPECT_EQ(decoded->payload, payload) << type_name(payload);
    EXPECT_EQ(decoded->payload.index(), payload.index());
    EXPECT_EQ(decoded->schema_version,
              std::visit([](const auto& p) { return std::decay_t<decltype(p)>::kSchemaVersion; },
                         payload))
        << type_name(payload);
  }
  // Each alternative of the variant appears once by name: the list above misses none.
  std::set<std::string> names;
  for (const auto& p : payloads) names.insert(type_name(p));
  EXPECT_EQ(names.size() + 15, std::variant_size_v<Payload>);  // + the 15 ticket payloads
}

// A ticket's file ("pièce jointe"): every field, the 64-bit size included.
TEST(Codec, RoundTripsAFileAttached) {
  NewEvent e = draft_event("ticket-1");
  e.payload = FileAttached{
      "t1", "a1", "facture été.pdf", "application/pdf", 5'000'000'000ULL, std::string(64, 'e')};
  auto decoded = decode(encode("ticket-1", 2, Hash{}, e).bytes);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->payload, e.payload);
  EXPECT_STREQ(type_name(decoded->payload), "FileAttached");
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

// Where a flipped byte passes decode() (padding and sizes of the envelope around the hashed
// body, read by no field), check_envelope() catches it: no byte of a stored event changes
// unseen by both. The original passes.
TEST(Codec, EveryFlippedByteIsCaughtByDecodeOrTheEnvelopeCheck) {
  for (const auto& encoded : {encode("ticket-1", 1, Hash{}, draft_event("ticket-1")),
                              encode("ticket-22", 7, Hash{}, draft_event("ticket-22", 300))}) {
    EXPECT_TRUE(check_envelope(encoded.bytes));
    std::size_t passing_decode = 0;
    for (std::size_t i = 0; i < encoded.bytes.size(); ++i) {
      for (const int mask : {0x01, 0x80}) {
        std::string damaged = encoded.bytes;
        damaged[i] = static_cast<char>(damaged[i] ^ mask);
        if (!decode(damaged)) continue;
        ++passing_decode;
        auto envelope = check_envelope(damaged);
        ASSERT_FALSE(envelope) << "byte " << i << " mask " << mask;
        EXPECT_EQ(envelope.error().code, errc::corruption);
      }
    }
    EXPECT_GT(passing_decode, 0u) << "no envelope byte left to test";
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

// view() reads in place what decode() copies, and agrees with it field for field.
TEST(CodecView, ReadsTheCoordinatesInPlaceAndThePayloadOnDemand) {
  NewEvent e = draft_event("ticket-1");
  Hash prev{};
  prev[31] = 9;
  auto encoded = encode("ticket-1", 4, prev, e);
  auto viewed = view(encoded.bytes);
  ASSERT_TRUE(viewed) << viewed.error().message;
  EXPECT_EQ(viewed->stream_id, "ticket-1");
  // In place: the id points into the bytes given (8-aligned, as a std::string's heap is).
  EXPECT_GE(viewed->stream_id.data(), encoded.bytes.data());
  EXPECT_LT(viewed->stream_id.data(), encoded.bytes.data() + encoded.bytes.size());
  EXPECT_EQ(viewed->version, 4u);
  EXPECT_EQ(viewed->event_id, e.meta.event_id);
  EXPECT_EQ(viewed->prev_hash, prev);
  EXPECT_EQ(viewed->hash, encoded.hash);
  auto payload = decode_payload(*viewed);
  ASSERT_TRUE(payload) << payload.error().message;
  EXPECT_EQ(*payload, e.payload);
}

// Bytes at an odd address (a Kafka message's) still view, through the per-thread copy.
TEST(CodecView, ViewsMisalignedBytes) {
  auto encoded = encode("ticket-2", 1, Hash{}, draft_event("ticket-2"));
  std::string shifted = "x" + encoded.bytes;
  auto viewed = view(std::string_view(shifted).substr(1));
  ASSERT_TRUE(viewed) << viewed.error().message;
  EXPECT_EQ(viewed->stream_id, "ticket-2");
  EXPECT_EQ(viewed->hash, encoded.hash);
}

// A damaged record: view() fails exactly where decode() does, with the same message, so that a
// walk on views misses nothing decode() would catch.
TEST(CodecView, EveryFlippedByteGetsDecodesVerdict) {
  auto encoded = encode("ticket-1", 1, Hash{}, draft_event("ticket-1"));
  std::size_t failures = 0;
  for (std::size_t i = 0; i < encoded.bytes.size(); ++i) {
    std::string damaged = encoded.bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    auto decoded = decode(damaged);
    auto viewed = view(damaged);
    ASSERT_EQ(decoded.has_value(), viewed.has_value()) << "byte " << i;
    if (viewed) {
      EXPECT_EQ(viewed->hash, decoded->hash) << "byte " << i;
      EXPECT_EQ(decode_payload(*viewed).value(), decoded->payload) << "byte " << i;
    } else {
      ++failures;
      EXPECT_EQ(viewed.error().code, errc::corruption);
      EXPECT_EQ(viewed.error().message, decoded.error().message) << "byte " << i;
    }
  }
  EXPECT_GT(failures, encoded.bytes.size() / 2);
}

TEST(CodecView, GarbageAndEmptyViewsFail) {
  for (std::string bytes : {std::string(), std::string("abc"), std::string(300, '\xff')}) {
    auto viewed = view(bytes);
    ASSERT_FALSE(viewed);
    EXPECT_EQ(viewed.error().code, errc::corruption);
  }
  auto payload = decode_payload(EventView{});
  ASSERT_FALSE(payload);
  EXPECT_EQ(payload.error().code, errc::invalid_argument);
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
