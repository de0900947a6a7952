#include "projections/reference_views.h"

#include <nlohmann/json.hpp>

#include "projections/json_text.h"

namespace chorus::projections {
namespace {

using nlohmann::json;

std::string object_key(std::string_view type, std::string_view number) {
  std::string key("ro");
  key.push_back('\0');
  key.append(type);
  key.push_back('\0');
  key.append(number);
  return key;
}

}  // namespace

Result<void> ReferenceObjectViews::apply(const events::Event& event, const events::LogAddress&,
                                         ViewBatch& batch) {
  const auto* e = std::get_if<events::ReferenceObjectImported>(&event.payload);
  if (e == nullptr) return {};
  batch.put(object_key(e->object_type, e->object_number),
            json_text(json{{"object_type", e->object_type},
                           {"object_number", e->object_number},
                           {"recipient_structure_id", e->recipient_structure_id},
                           {"recipient_service", e->recipient_service},
                           {"issuer_structure_id", e->issuer_structure_id}}));
  return {};
}

Result<std::optional<ReferenceObject>> reference_object(const ViewStore& store,
                                                        const std::string& type,
                                                        const std::string& number) {
  auto row = store.get(object_key(type, number));
  if (!row) return std::unexpected(row.error());
  if (!row->has_value()) return std::optional<ReferenceObject>{};
  const json j = json::parse(**row, nullptr, false);
  if (!j.is_object()) return fail(errc::poison, "reference object row is not JSON");
  return std::optional<ReferenceObject>{
      ReferenceObject{j.value("object_type", ""), j.value("object_number", ""),
                      j.value("recipient_structure_id", ""), j.value("recipient_service", ""),
                      j.value("issuer_structure_id", "")}};
}

}  // namespace chorus::projections
