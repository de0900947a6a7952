#pragma once
// The reference objects (invoices, TIC refund requests, court-fee statements) a ticket may be
// about, keyed by type and number: what the ticket form's command side looks up to route an
// object-bound ticket to the object's recipient (domain/reference_object.h).
//
// Key layout:
//   ro\0<object_type>\0<object_number>  -> {"object_type", "object_number",
//                                           "recipient_structure_id", "recipient_service",
//                                           "issuer_structure_id"}
// A row written before issuers were recorded has none: read as "", which no emitting structure
// matches, so no layout change was needed.
// The last ReferenceObjectImported of an object holds.

#include <optional>
#include <string>

#include "projections/projector.h"

namespace chorus::projections {

class ReferenceObjectViews final : public Projector {
 public:
  Result<void> apply(const events::Event& event, const events::LogAddress& at,
                     ViewBatch& batch) override;
};

// An object's recipient, as the last import recorded it.
struct ReferenceObject {
  std::string object_type;
  std::string object_number;
  std::string recipient_structure_id;
  std::string recipient_service;    // empty: the whole structure
  std::string issuer_structure_id;  // the only structure whose users may name the object
};

// The object of `type` and `number`; nullopt when no import brought it. Fails with io_error
// when the store fails, poison when its row is malformed. Thread-safe; anyone may look an
// object up (the answer routes a ticket, the caller decides what to show).
[[nodiscard]] Result<std::optional<ReferenceObject>> reference_object(const ViewStore& store,
                                                                      const std::string& type,
                                                                      const std::string& number);

}  // namespace chorus::projections
