#include "events/codec.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "event_generated.h"

namespace chorus::events {
namespace {

std::string_view str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view{} : std::string_view{s->data(), s->size()};
}

template <std::size_t N>
bool copy_fixed(const flatbuffers::Vector<std::uint8_t>* v, std::array<std::uint8_t, N>& out) {
  if (v == nullptr || v->size() != N) return false;
  std::memcpy(out.data(), v->data(), N);
  return true;
}

// The (ticket id, text) events share one shape; `create` is the table's generated builder.
template <class Table>
flatbuffers::Offset<void> text_event(
    flatbuffers::FlatBufferBuilder& fbb,
    flatbuffers::Offset<Table> (*create)(flatbuffers::FlatBufferBuilder&, const char*, const char*),
    const std::string& ticket_id, const std::string& text, fb::Payload& type) {
  type = fb::PayloadTraits<Table>::enum_value;
  return create(fbb, ticket_id.c_str(), text.c_str()).Union();
}

// Strings of a list field; `strings()` reads one back (absent: empty).
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> string_list(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<std::string>& values) {
  return fbb.CreateVectorOfStrings(values);
}

std::vector<std::string> strings(
    const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* s : *v) out.emplace_back(str(s));
  return out;
}

flatbuffers::Offset<fb::StructureData> structure_data(flatbuffers::FlatBufferBuilder& fbb,
                                                      const StructureData& d) {
  return fb::CreateStructureDataDirect(
      fbb, d.designation.c_str(), d.address_line1.c_str(), d.address_line2.c_str(),
      d.postal_code.c_str(), d.city.c_str(), d.country.c_str(), d.payment_status_hidden,
      d.service_code_required, d.commitment_required, d.commitment_or_service_required, d.moa_mode,
      d.vat_number.c_str(), d.pacage_number.c_str(), d.social_regime.c_str(), d.billing_mandate);
}

StructureData read_structure_data(const fb::StructureData* d) {
  if (d == nullptr) return {};
  return StructureData{std::string(str(d->designation())),
                       std::string(str(d->address_line1())),
                       std::string(str(d->address_line2())),
                       std::string(str(d->postal_code())),
                       std::string(str(d->city())),
                       std::string(str(d->country())),
                       d->payment_status_hidden(),
                       d->service_code_required(),
                       d->commitment_required(),
                       d->commitment_or_service_required(),
                       d->moa_mode(),
                       std::string(str(d->vat_number())),
                       std::string(str(d->pacage_number())),
                       std::string(str(d->social_regime())),
                       d->billing_mandate()};
}

// The payloads that name nothing but their account share one shape.
template <class Table>
flatbuffers::Offset<void> id_event(
    flatbuffers::FlatBufferBuilder& fbb,
    flatbuffers::Offset<Table> (*create)(flatbuffers::FlatBufferBuilder&, const char*),
    const std::string& id, fb::Payload& type) {
  type = fb::PayloadTraits<Table>::enum_value;
  return create(fbb, id.c_str()).Union();
}

flatbuffers::Offset<void> build_payload(flatbuffers::FlatBufferBuilder& fbb, const Payload& p,
                                        fb::Payload& type) {
  return std::visit(
      Overloaded{
          [&](const TicketDraftSaved& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_TicketDraftSaved;
            return fb::CreateTicketDraftSavedDirect(
                       fbb, e.ticket_id.c_str(), e.emitter_user_id.c_str(),
                       e.emitting_structure_id.c_str(), e.category.c_str(), e.sub_category.c_str(),
                       e.title.c_str(), e.description.c_str(), e.destination_structure_id.c_str(),
                       e.destination_service.c_str(), e.object_type.c_str(),
                       e.object_number.c_str())
                .Union();
          },
          [&](const TicketSubmitted& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_TicketSubmitted;
            return fb::CreateTicketSubmittedDirect(
                       fbb, e.ticket_id.c_str(), e.number.c_str(), e.emitter_user_id.c_str(),
                       e.emitting_structure_id.c_str(), e.category.c_str(), e.sub_category.c_str(),
                       e.title.c_str(), e.description.c_str(), e.destination_structure_id.c_str(),
                       e.destination_service.c_str(), e.emitter_email.c_str(),
                       e.object_type.c_str(), e.object_number.c_str())
                .Union();
          },
          [&](const TicketDraftDeleted& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_TicketDraftDeleted;
            return fb::CreateTicketDraftDeletedDirect(fbb, e.ticket_id.c_str()).Union();
          },
          [&](const SolutionAccepted& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_SolutionAccepted;
            return fb::CreateSolutionAcceptedDirect(fbb, e.ticket_id.c_str()).Union();
          },
          // The text events share one shape: ticket id and one text.
          [&](const InformationRequested& e) {
            return text_event(fbb, &fb::CreateInformationRequestedDirect, e.ticket_id, e.text,
                              type);
          },
          [&](const InformationProvided& e) {
            return text_event(fbb, &fb::CreateInformationProvidedDirect, e.ticket_id, e.text, type);
          },
          [&](const SolutionProposed& e) {
            return text_event(fbb, &fb::CreateSolutionProposedDirect, e.ticket_id, e.text, type);
          },
          [&](const SolutionRefused& e) {
            return text_event(fbb, &fb::CreateSolutionRefusedDirect, e.ticket_id, e.reason, type);
          },
          [&](const TicketClosed& e) {
            return text_event(fbb, &fb::CreateTicketClosedDirect, e.ticket_id, e.reason, type);
          },
          [&](const CommentAdded& e) {
            return text_event(fbb, &fb::CreateCommentAddedDirect, e.ticket_id, e.text, type);
          },
          [&](const TicketAssigned& e) {
            return text_event(fbb, &fb::CreateTicketAssignedDirect, e.ticket_id, e.agent_user_id,
                              type);
          },
          [&](const FileAttached& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_FileAttached;
            return fb::CreateFileAttachedDirect(fbb, e.ticket_id.c_str(), e.attachment_id.c_str(),
                                                e.name.c_str(), e.media_type.c_str(), e.size,
                                                e.sha256.c_str())
                .Union();
          },
          [&](const IdentifierReserved& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_IdentifierReserved;
            return fb::CreateIdentifierReservedDirect(fbb, e.identifier_type.c_str(),
                                                      e.identifier_value.c_str(),
                                                      e.structure_id.c_str())
                .Union();
          },
          [&](const ReferenceObjectImported& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_ReferenceObjectImported;
            return fb::CreateReferenceObjectImportedDirect(
                       fbb, e.object_type.c_str(), e.object_number.c_str(),
                       e.recipient_structure_id.c_str(), e.recipient_service.c_str(),
                       e.issuer_structure_id.c_str())
                .Union();
          },
          [&](const TicketEscalated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_TicketEscalated;
            return fb::CreateTicketEscalatedDirect(fbb, e.ticket_id.c_str()).Union();
          },
          [&](const NotificationSent& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_NotificationSent;
            return fb::CreateNotificationSentDirect(fbb, e.notification_id.c_str()).Union();
          },
          [&](const PrioritySet& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_PrioritySet;
            return fb::CreatePrioritySetDirect(fbb, e.ticket_id.c_str(), e.impact.c_str(),
                                               e.severity.c_str(), e.recommended, e.priority,
                                               e.reason.c_str())
                .Union();
          },
          [&](const StructureCreated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_StructureCreated;
            auto data = structure_data(fbb, e.data);
            return fb::CreateStructureCreatedDirect(
                       fbb, e.structure_id.c_str(), e.identifier_type.c_str(),
                       e.identifier_value.c_str(), e.is_public, e.is_state, e.pigp_managed,
                       e.created_on.c_str(), e.origin_structure_id.c_str(), data)
                .Union();
          },
          [&](const StructureDataChanged& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_StructureDataChanged;
            auto data = structure_data(fbb, e.data);
            return fb::CreateStructureDataChangedDirect(fbb, e.structure_id.c_str(), data).Union();
          },
          [&](const StructureDeactivated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_StructureDeactivated;
            return fb::CreateStructureDeactivatedDirect(fbb, e.structure_id.c_str(),
                                                        e.successor_structure_id.c_str(),
                                                        e.reason.c_str())
                .Union();
          },
          [&](const ServiceAdded& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_ServiceAdded;
            return fb::CreateServiceAddedDirect(fbb, e.structure_id.c_str(), e.code.c_str(),
                                                e.label.c_str(), e.description.c_str(),
                                                e.valid_from.c_str(), e.valid_to.c_str(),
                                                e.commitment_required)
                .Union();
          },
          [&](const ServiceChanged& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_ServiceChanged;
            return fb::CreateServiceChangedDirect(fbb, e.structure_id.c_str(), e.code.c_str(),
                                                  e.label.c_str(), e.description.c_str(),
                                                  e.valid_from.c_str(), e.valid_to.c_str(),
                                                  e.commitment_required)
                .Union();
          },
          [&](const ServiceRemoved& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_ServiceRemoved;
            return fb::CreateServiceRemovedDirect(fbb, e.structure_id.c_str(), e.code.c_str())
                .Union();
          },
          [&](const AccountCreated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_AccountCreated;
            // Absent when empty, as in every event stored before the field existed: their
            // bytes stay what encode() writes (check_envelope).
            return fb::CreateAccountCreatedDirect(
                       fbb, e.user_id.c_str(), e.login_email.c_str(), e.first_name.c_str(),
                       e.last_name.c_str(), e.origin.c_str(), e.technical,
                       e.structure_id.empty() ? nullptr : e.structure_id.c_str())
                .Union();
          },
          [&](const AccountActivated& e) {
            return id_event(fbb, &fb::CreateAccountActivatedDirect, e.user_id, type);
          },
          [&](const ActivationResent& e) {
            return id_event(fbb, &fb::CreateActivationResentDirect, e.user_id, type);
          },
          [&](const AccountReactivated& e) {
            return id_event(fbb, &fb::CreateAccountReactivatedDirect, e.user_id, type);
          },
          [&](const AccountDeactivated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_AccountDeactivated;
            return fb::CreateAccountDeactivatedDirect(fbb, e.user_id.c_str(), e.at_us).Union();
          },
          [&](const PasswordResetRecorded& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_PasswordResetRecorded;
            return fb::CreatePasswordResetRecordedDirect(fbb, e.structure_id.c_str(),
                                                         e.user_id.c_str())
                .Union();
          },
          [&](const AttachmentRequested& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_AttachmentRequested;
            return fb::CreateAttachmentRequestedDirect(fbb, e.structure_id.c_str(),
                                                       e.request_id.c_str(), e.user_id.c_str(),
                                                       e.service.c_str(), e.comment.c_str())
                .Union();
          },
          [&](const AttachmentValidated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_AttachmentValidated;
            auto services = string_list(fbb, e.services);
            return fb::CreateAttachmentValidated(
                       fbb, fbb.CreateString(e.structure_id), fbb.CreateString(e.request_id),
                       fbb.CreateString(e.user_id), fbb.CreateString(e.role), services,
                       fbb.CreateString(e.comment))
                .Union();
          },
          [&](const AttachmentRefused& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_AttachmentRefused;
            return fb::CreateAttachmentRefusedDirect(fbb, e.structure_id.c_str(),
                                                     e.request_id.c_str(), e.user_id.c_str(),
                                                     e.reason.c_str())
                .Union();
          },
          [&](const UserAttached& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_UserAttached;
            auto services = string_list(fbb, e.services);
            return fb::CreateUserAttached(fbb, fbb.CreateString(e.structure_id),
                                          fbb.CreateString(e.user_id), fbb.CreateString(e.role),
                                          services, fbb.CreateString(e.start_date),
                                          fbb.CreateString(e.comment), e.direct)
                .Union();
          },
          [&](const AttachmentRemoved& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_AttachmentRemoved;
            return fb::CreateAttachmentRemovedDirect(fbb, e.structure_id.c_str(), e.user_id.c_str())
                .Union();
          },
          [&](const MainManagerTransferred& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_MainManagerTransferred;
            return fb::CreateMainManagerTransferredDirect(fbb, e.structure_id.c_str(),
                                                          e.from_user_id.c_str(),
                                                          e.to_user_id.c_str(), e.by_support)
                .Union();
          },
          [&](const MainManagerRoleChanged& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_MainManagerRoleChanged;
            return fb::CreateMainManagerRoleChangedDirect(fbb, e.user_id.c_str(),
                                                          e.structure_id.c_str(), e.held)
                .Union();
          },
          [&](const EspaceEnabled& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_EspaceEnabled;
            return fb::CreateEspaceEnabledDirect(fbb, e.structure_id.c_str(), e.espace.c_str(),
                                                 e.service.c_str(), e.read, e.write)
                .Union();
          },
          [&](const SubscriptionRequested& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_SubscriptionRequested;
            return fb::CreateSubscriptionRequestedDirect(
                       fbb, e.structure_id.c_str(), e.request_id.c_str(), e.user_id.c_str(),
                       e.espace.c_str(), e.service.c_str(), e.read, e.write, e.comment.c_str())
                .Union();
          },
          [&](const SubscriptionValidated& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_SubscriptionValidated;
            return fb::CreateSubscriptionValidatedDirect(
                       fbb, e.structure_id.c_str(), e.request_id.c_str(), e.user_id.c_str(),
                       e.espace.c_str(), e.service.c_str(), e.read, e.write, e.comment.c_str())
                .Union();
          },
          [&](const SubscriptionRefused& e) -> flatbuffers::Offset<void> {
            type = fb::Payload_SubscriptionRefused;
            return fb::CreateSubscriptionRefusedDirect(fbb, e.structure_id.c_str(),
                                                       e.request_id.c_str(), e.user_id.c_str(),
                                                       e.reason.c_str())
                .Union();
          },
      },
      p);
}

Result<Payload> read_payload(const fb::EventBody& body) {
  switch (body.payload_type()) {
    case fb::Payload_TicketDraftSaved: {
      const auto* e = body.payload_as_TicketDraftSaved();
      return TicketDraftSaved{std::string(str(e->ticket_id())),
                              std::string(str(e->emitter_user_id())),
                              std::string(str(e->emitting_structure_id())),
                              std::string(str(e->category())),
                              std::string(str(e->sub_category())),
                              std::string(str(e->title())),
                              std::string(str(e->description())),
                              std::string(str(e->destination_structure_id())),
                              std::string(str(e->destination_service())),
                              std::string(str(e->object_type())),
                              std::string(str(e->object_number()))};
    }
    case fb::Payload_TicketSubmitted: {
      const auto* e = body.payload_as_TicketSubmitted();
      return TicketSubmitted{std::string(str(e->ticket_id())),
                             std::string(str(e->number())),
                             std::string(str(e->emitter_user_id())),
                             std::string(str(e->emitting_structure_id())),
                             std::string(str(e->category())),
                             std::string(str(e->sub_category())),
                             std::string(str(e->title())),
                             std::string(str(e->description())),
                             std::string(str(e->destination_structure_id())),
                             std::string(str(e->destination_service())),
                             std::string(str(e->emitter_email())),
                             std::string(str(e->object_type())),
                             std::string(str(e->object_number()))};
    }
    case fb::Payload_TicketDraftDeleted:
      return TicketDraftDeleted{
          std::string(str(body.payload_as_TicketDraftDeleted()->ticket_id()))};
    case fb::Payload_SolutionAccepted:
      return SolutionAccepted{std::string(str(body.payload_as_SolutionAccepted()->ticket_id()))};
    case fb::Payload_InformationRequested: {
      const auto* t = body.payload_as_InformationRequested();
      return InformationRequested{std::string(str(t->ticket_id())), std::string(str(t->text()))};
    }
    case fb::Payload_InformationProvided: {
      const auto* t = body.payload_as_InformationProvided();
      return InformationProvided{std::string(str(t->ticket_id())), std::string(str(t->text()))};
    }
    case fb::Payload_SolutionProposed: {
      const auto* t = body.payload_as_SolutionProposed();
      return SolutionProposed{std::string(str(t->ticket_id())), std::string(str(t->text()))};
    }
    case fb::Payload_SolutionRefused: {
      const auto* t = body.payload_as_SolutionRefused();
      return SolutionRefused{std::string(str(t->ticket_id())), std::string(str(t->reason()))};
    }
    case fb::Payload_TicketClosed: {
      const auto* t = body.payload_as_TicketClosed();
      return TicketClosed{std::string(str(t->ticket_id())), std::string(str(t->reason()))};
    }
    case fb::Payload_CommentAdded: {
      const auto* t = body.payload_as_CommentAdded();
      return CommentAdded{std::string(str(t->ticket_id())), std::string(str(t->text()))};
    }
    case fb::Payload_TicketAssigned: {
      const auto* t = body.payload_as_TicketAssigned();
      return TicketAssigned{std::string(str(t->ticket_id())), std::string(str(t->agent_user_id()))};
    }
    case fb::Payload_FileAttached: {
      const auto* t = body.payload_as_FileAttached();
      return FileAttached{std::string(str(t->ticket_id())),
                          std::string(str(t->attachment_id())),
                          std::string(str(t->name())),
                          std::string(str(t->media_type())),
                          t->size(),
                          std::string(str(t->sha256()))};
    }
    case fb::Payload_MainManagerRoleChanged: {
      const auto* t = body.payload_as_MainManagerRoleChanged();
      return MainManagerRoleChanged{std::string(str(t->user_id())),
                                    std::string(str(t->structure_id())), t->held()};
    }
    case fb::Payload_IdentifierReserved: {
      const auto* t = body.payload_as_IdentifierReserved();
      return IdentifierReserved{std::string(str(t->identifier_type())),
                                std::string(str(t->identifier_value())),
                                std::string(str(t->structure_id()))};
    }
    case fb::Payload_ReferenceObjectImported: {
      const auto* t = body.payload_as_ReferenceObjectImported();
      return ReferenceObjectImported{
          std::string(str(t->object_type())), std::string(str(t->object_number())),
          std::string(str(t->recipient_structure_id())), std::string(str(t->recipient_service())),
          std::string(str(t->issuer_structure_id()))};
    }
    case fb::Payload_TicketEscalated:
      return TicketEscalated{std::string(str(body.payload_as_TicketEscalated()->ticket_id()))};
    case fb::Payload_NotificationSent:
      return NotificationSent{
          std::string(str(body.payload_as_NotificationSent()->notification_id()))};
    case fb::Payload_PrioritySet: {
      const auto* t = body.payload_as_PrioritySet();
      return PrioritySet{std::string(str(t->ticket_id())),
                         std::string(str(t->impact())),
                         std::string(str(t->severity())),
                         t->recommended(),
                         t->priority(),
                         std::string(str(t->reason()))};
    }
    case fb::Payload_StructureCreated: {
      const auto* e = body.payload_as_StructureCreated();
      return StructureCreated{std::string(str(e->structure_id())),
                              std::string(str(e->identifier_type())),
                              std::string(str(e->identifier_value())),
                              e->is_public(),
                              e->is_state(),
                              e->pigp_managed(),
                              std::string(str(e->created_on())),
                              std::string(str(e->origin_structure_id())),
                              read_structure_data(e->data())};
    }
    case fb::Payload_StructureDataChanged: {
      const auto* e = body.payload_as_StructureDataChanged();
      return StructureDataChanged{std::string(str(e->structure_id())),
                                  read_structure_data(e->data())};
    }
    case fb::Payload_StructureDeactivated: {
      const auto* e = body.payload_as_StructureDeactivated();
      return StructureDeactivated{std::string(str(e->structure_id())),
                                  std::string(str(e->successor_structure_id())),
                                  std::string(str(e->reason()))};
    }
    case fb::Payload_ServiceAdded: {
      const auto* e = body.payload_as_ServiceAdded();
      return ServiceAdded{std::string(str(e->structure_id())),
                          std::string(str(e->code())),
                          std::string(str(e->label())),
                          std::string(str(e->description())),
                          std::string(str(e->valid_from())),
                          std::string(str(e->valid_to())),
                          e->commitment_required()};
    }
    case fb::Payload_ServiceChanged: {
      const auto* e = body.payload_as_ServiceChanged();
      return ServiceChanged{std::string(str(e->structure_id())),
                            std::string(str(e->code())),
                            std::string(str(e->label())),
                            std::string(str(e->description())),
                            std::string(str(e->valid_from())),
                            std::string(str(e->valid_to())),
                            e->commitment_required()};
    }
    case fb::Payload_ServiceRemoved: {
      const auto* e = body.payload_as_ServiceRemoved();
      return ServiceRemoved{std::string(str(e->structure_id())), std::string(str(e->code()))};
    }
    case fb::Payload_AccountCreated: {
      const auto* e = body.payload_as_AccountCreated();
      return AccountCreated{std::string(str(e->user_id())),     std::string(str(e->login_email())),
                            std::string(str(e->first_name())),  std::string(str(e->last_name())),
                            std::string(str(e->origin())),      e->technical(),
                            std::string(str(e->structure_id()))};
    }
    case fb::Payload_AccountActivated:
      return AccountActivated{std::string(str(body.payload_as_AccountActivated()->user_id()))};
    case fb::Payload_ActivationResent:
      return ActivationResent{std::string(str(body.payload_as_ActivationResent()->user_id()))};
    case fb::Payload_AccountReactivated:
      return AccountReactivated{std::string(str(body.payload_as_AccountReactivated()->user_id()))};
    case fb::Payload_AccountDeactivated: {
      const auto* e = body.payload_as_AccountDeactivated();
      return AccountDeactivated{std::string(str(e->user_id())), e->at_us()};
    }
    case fb::Payload_PasswordResetRecorded: {
      const auto* e = body.payload_as_PasswordResetRecorded();
      return PasswordResetRecorded{std::string(str(e->structure_id())),
                                   std::string(str(e->user_id()))};
    }
    case fb::Payload_AttachmentRequested: {
      const auto* e = body.payload_as_AttachmentRequested();
      return AttachmentRequested{std::string(str(e->structure_id())),
                                 std::string(str(e->request_id())), std::string(str(e->user_id())),
                                 std::string(str(e->service())), std::string(str(e->comment()))};
    }
    case fb::Payload_AttachmentValidated: {
      const auto* e = body.payload_as_AttachmentValidated();
      return AttachmentValidated{std::string(str(e->structure_id())),
                                 std::string(str(e->request_id())),
                                 std::string(str(e->user_id())),
                                 std::string(str(e->role())),
                                 strings(e->services()),
                                 std::string(str(e->comment()))};
    }
    case fb::Payload_AttachmentRefused: {
      const auto* e = body.payload_as_AttachmentRefused();
      return AttachmentRefused{std::string(str(e->structure_id())),
                               std::string(str(e->request_id())), std::string(str(e->user_id())),
                               std::string(str(e->reason()))};
    }
    case fb::Payload_UserAttached: {
      const auto* e = body.payload_as_UserAttached();
      return UserAttached{std::string(str(e->structure_id())),
                          std::string(str(e->user_id())),
                          std::string(str(e->role())),
                          strings(e->services()),
                          std::string(str(e->start_date())),
                          std::string(str(e->comment())),
                          e->direct()};
    }
    case fb::Payload_AttachmentRemoved: {
      const auto* e = body.payload_as_AttachmentRemoved();
      return AttachmentRemoved{std::string(str(e->structure_id())), std::string(str(e->user_id()))};
    }
    case fb::Payload_MainManagerTransferred: {
      const auto* e = body.payload_as_MainManagerTransferred();
      return MainManagerTransferred{std::string(str(e->structure_id())),
                                    std::string(str(e->from_user_id())),
                                    std::string(str(e->to_user_id())), e->by_support()};
    }
    case fb::Payload_EspaceEnabled: {
      const auto* e = body.payload_as_EspaceEnabled();
      return EspaceEnabled{std::string(str(e->structure_id())), std::string(str(e->espace())),
                           std::string(str(e->service())), e->read(), e->write()};
    }
    case fb::Payload_SubscriptionRequested: {
      const auto* e = body.payload_as_SubscriptionRequested();
      return SubscriptionRequested{std::string(str(e->structure_id())),
                                   std::string(str(e->request_id())),
                                   std::string(str(e->user_id())),
                                   std::string(str(e->espace())),
                                   std::string(str(e->service())),
                                   e->read(),
                                   e->write(),
                                   std::string(str(e->comment()))};
    }
    case fb::Payload_SubscriptionValidated: {
      const auto* e = body.payload_as_SubscriptionValidated();
      return SubscriptionValidated{std::string(str(e->structure_id())),
                                   std::string(str(e->request_id())),
                                   std::string(str(e->user_id())),
                                   std::string(str(e->espace())),
                                   std::string(str(e->service())),
                                   e->read(),
                                   e->write(),
                                   std::string(str(e->comment()))};
    }
    case fb::Payload_SubscriptionRefused: {
      const auto* e = body.payload_as_SubscriptionRefused();
      return SubscriptionRefused{std::string(str(e->structure_id())),
                                 std::string(str(e->request_id())), std::string(str(e->user_id())),
                                 std::string(str(e->reason()))};
    }
    default:
      return fail(errc::corruption,
                  "unknown payload type " + std::to_string(static_cast<int>(body.payload_type())));
  }
}

// FlatBuffers reads scalars in place, so a buffer must be 8-aligned; bytes straight from
// RocksDB or Kafka may not be. Misaligned input is copied to a per-thread aligned buffer, valid
// until the next call on the thread.
std::string_view aligned(std::string_view bytes) {
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % 8 == 0) return bytes;
  thread_local std::vector<std::uint64_t> storage;
  storage.resize(bytes.size() / 8 + 1);
  std::memcpy(storage.data(), bytes.data(), bytes.size());
  return {reinterpret_cast<const char*>(storage.data()), bytes.size()};
}

// Structure checks shared by decode() and peek(): returns the body, or null when malformed.
// `bytes` must be aligned (see aligned()).
const fb::EventBody* checked_body(std::string_view bytes, const fb::StoredEvent** stored_out) {
  flatbuffers::Verifier outer(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!fb::VerifyStoredEventBuffer(outer)) return nullptr;
  const auto* stored = fb::GetStoredEvent(bytes.data());
  const auto* body_bytes = stored->body();
  if (body_bytes == nullptr || stored->hash() == nullptr) return nullptr;
  flatbuffers::Verifier inner(body_bytes->data(), body_bytes->size());
  if (!inner.VerifyBuffer<fb::EventBody>(nullptr)) return nullptr;
  const auto* body = flatbuffers::GetRoot<fb::EventBody>(body_bytes->data());
  if (body->stream_id() == nullptr) return nullptr;
  *stored_out = stored;
  return body;
}

}  // namespace

const char* type_name(const Payload& payload) noexcept {
  return std::visit(Overloaded{
                        [](const TicketDraftSaved&) { return "TicketDraftSaved"; },
                        [](const TicketSubmitted&) { return "TicketSubmitted"; },
                        [](const TicketDraftDeleted&) { return "TicketDraftDeleted"; },
                        [](const InformationRequested&) { return "InformationRequested"; },
                        [](const InformationProvided&) { return "InformationProvided"; },
                        [](const SolutionProposed&) { return "SolutionProposed"; },
                        [](const SolutionAccepted&) { return "SolutionAccepted"; },
                        [](const SolutionRefused&) { return "SolutionRefused"; },
                        [](const TicketClosed&) { return "TicketClosed"; },
                        [](const CommentAdded&) { return "CommentAdded"; },
                        [](const FileAttached&) { return "FileAttached"; },
                        [](const TicketAssigned&) { return "TicketAssigned"; },
                        [](const TicketEscalated&) { return "TicketEscalated"; },
                        [](const PrioritySet&) { return "PrioritySet"; },
                        [](const NotificationSent&) { return "NotificationSent"; },
                        [](const StructureCreated&) { return "StructureCreated"; },
                        [](const StructureDataChanged&) { return "StructureDataChanged"; },
                        [](const StructureDeactivated&) { return "StructureDeactivated"; },
                        [](const ServiceAdded&) { return "ServiceAdded"; },
                        [](const ServiceChanged&) { return "ServiceChanged"; },
                        [](const ServiceRemoved&) { return "ServiceRemoved"; },
                        [](const AccountCreated&) { return "AccountCreated"; },
                        [](const AccountActivated&) { return "AccountActivated"; },
                        [](const ActivationResent&) { return "ActivationResent"; },
                        [](const AccountDeactivated&) { return "AccountDeactivated"; },
                        [](const AccountReactivated&) { return "AccountReactivated"; },
                        [](const PasswordResetRecorded&) { return "PasswordResetRecorded"; },
                        [](const AttachmentRequested&) { return "AttachmentRequested"; },
                        [](const AttachmentValidated&) { return "AttachmentValidated"; },
                        [](const AttachmentRefused&) { return "AttachmentRefused"; },
                        [](const UserAttached&) { return "UserAttached"; },
                        [](const AttachmentRemoved&) { return "AttachmentRemoved"; },
                        [](const MainManagerTransferred&) { return "MainManagerTransferred"; },
                        [](const EspaceEnabled&) { return "EspaceEnabled"; },
                        [](const SubscriptionRequested&) { return "SubscriptionRequested"; },
                        [](const SubscriptionValidated&) { return "SubscriptionValidated"; },
                        [](const SubscriptionRefused&) { return "SubscriptionRefused"; },
                        [](const IdentifierReserved&) { return "IdentifierReserved"; },
                        [](const ReferenceObjectImported&) { return "ReferenceObjectImported"; },
                        [](const MainManagerRoleChanged&) { return "MainManagerRoleChanged"; },
                    },
                    payload);
}

Hash sha256(std::string_view bytes) noexcept {
  // OpenSSL 3's one-shot SHA256() looks the algorithm up by name on every call (a lock and a
  // string comparison), which cost a walk over millions of events as much as the hashing: the
  // algorithm is fetched once, and each thread reuses one context.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                           EVP_MD_CTX_free);
  Hash out{};
  unsigned int len = 0;
  if (md == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    // Not expected with a working libcrypto; the one-shot call gives the same digest.
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data());
  }
  return out;
}

bool is_hex_hash(std::string_view text) noexcept {
  return text.size() == 2 * Hash{}.size() && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

namespace {

// The stored event around a body and its hash, as encode() writes it, into `fbb` (cleared).
void seal(flatbuffers::FlatBufferBuilder& fbb, std::string_view body, const Hash& hash) {
  // The body is a FlatBuffer of its own: keep it 8-aligned inside the stored one.
  fbb.ForceVectorAlignment(body.size(), 1, 8);
  auto body_vec = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
  auto hash_vec = fbb.CreateVector(hash.data(), hash.size());
  fbb.Finish(fb::CreateStoredEvent(fbb, body_vec, hash_vec));
}

}  // namespace

EncodedEvent encode(std::string_view stream_id, std::uint64_t version, const Hash& prev_hash,
                    const NewEvent& event) {
  // The body is its own buffer so that its bytes, exactly as hashed, are what is stored.
  // Builders are reused per thread: encoding sits on the append path.
  thread_local flatbuffers::FlatBufferBuilder body_fbb(1024);
  thread_local flatbuffers::FlatBufferBuilder fbb(1024);
  body_fbb.Clear();
  fbb.Clear();
  fb::Payload type = fb::Payload_NONE;
  auto payload = build_payload(body_fbb, event.payload, type);
  const std::uint16_t schema_version = std::visit(
      [](const auto& e) { return std::decay_t<decltype(e)>::kSchemaVersion; }, event.payload);
  const auto& m = event.meta;
  auto actor = fb::CreateActorDirect(body_fbb, m.actor.user_id.c_str(), m.actor.role.c_str(),
                                     m.actor.on_behalf_of.c_str());
  auto body = fb::CreateEventBody(
      body_fbb, body_fbb.CreateVector(m.event_id.data(), m.event_id.size()),
      body_fbb.CreateString(stream_id.data(), stream_id.size()), version, schema_version,
      m.occurred_at_us, actor, body_fbb.CreateString(m.correlation_id),
      body_fbb.CreateString(m.causation_id),
      body_fbb.CreateVector(prev_hash.data(), prev_hash.size()), type, payload);
  body_fbb.Finish(body);
  std::string_view body_view(reinterpret_cast<const char*>(body_fbb.GetBufferPointer()),
                             body_fbb.GetSize());
  EncodedEvent out;
  out.hash = sha256(body_view);

  seal(fbb, body_view, out.hash);
  out.bytes.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  return out;
}

Result<void> check_envelope(std::string_view bytes) {
  // The envelope alone is verified: the body's bytes are compared, not read.
  const std::string_view in_place = aligned(bytes);
  flatbuffers::Verifier outer(reinterpret_cast<const std::uint8_t*>(in_place.data()),
                              in_place.size());
  const fb::StoredEvent* stored =
      fb::VerifyStoredEventBuffer(outer) ? fb::GetStoredEvent(in_place.data()) : nullptr;
  if (stored == nullptr || stored->body() == nullptr || stored->hash() == nullptr ||
      stored->hash()->size() != Hash{}.size()) {
    return fail(errc::corruption, "stored event is not a valid StoredEvent FlatBuffer");
  }
  Hash hash{};
  std::memcpy(hash.data(), stored->hash()->data(), hash.size());
  thread_local flatbuffers::FlatBufferBuilder fbb(1024);
  fbb.Clear();
  seal(fbb,
       std::string_view(reinterpret_cast<const char*>(stored->body()->data()),
                        stored->body()->size()),
       hash);
  if (std::string_view(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()) !=
      bytes) {
    return fail(errc::corruption,
                "the stored envelope around the event's body is not as it was written (a byte no "
                "field reads was changed)");
  }
  return {};
}

Result<EventCoordinates> peek(std::string_view bytes) {
  bytes = aligned(bytes);
  const fb::StoredEvent* stored = nullptr;
  const fb::EventBody* body = checked_body(bytes, &stored);
  EventCoordinates c;
  if (body == nullptr || !copy_fixed(stored->hash(), c.hash) ||
      !copy_fixed(body->prev_hash(), c.prev_hash) || !copy_fixed(body->event_id(), c.event_id)) {
    return fail(errc::corruption, "stored event is not a valid StoredEvent FlatBuffer");
  }
  c.stream_id = std::string(str(body->stream_id()));
  c.version = body->version();
  return c;
}

// One set of checks for both readings: decode() is view() and then copies.
Result<Event> decode(std::string_view bytes) {
  auto v = view(bytes);
  if (!v) return std::unexpected(v.error());
  const auto* body = static_cast<const fb::EventBody*>(v->body);
  Event e;
  e.stream_id = std::string(v->stream_id);
  e.version = v->version;
  e.hash = v->hash;
  e.prev_hash = v->prev_hash;
  e.meta.event_id = v->event_id;
  e.schema_version = body->schema_version();
  e.meta.occurred_at_us = body->occurred_at_us();
  if (const auto* a = body->actor()) {
    e.meta.actor = Actor{std::string(str(a->user_id())), std::string(str(a->role())),
                         std::string(str(a->on_behalf_of()))};
  }
  e.meta.correlation_id = std::string(str(body->correlation_id()));
  e.meta.causation_id = std::string(str(body->causation_id()));
  auto payload = read_payload(*body);
  if (!payload) return std::unexpected(payload.error());
  e.payload = std::move(*payload);
  return e;
}

Result<EventView> view(std::string_view bytes) {
  bytes = aligned(bytes);
  const fb::StoredEvent* stored = nullptr;
  const fb::EventBody* body = checked_body(bytes, &stored);
  EventView v;
  if (body == nullptr || !copy_fixed(stored->hash(), v.hash) ||
      !copy_fixed(body->prev_hash(), v.prev_hash) || !copy_fixed(body->event_id(), v.event_id)) {
    return fail(errc::corruption, "stored event is not a valid StoredEvent FlatBuffer");
  }
  v.stream_id = str(body->stream_id());
  v.version = body->version();
  const auto* body_bytes = stored->body();
  const Hash actual = sha256(
      std::string_view(reinterpret_cast<const char*>(body_bytes->data()), body_bytes->size()));
  if (actual != v.hash) {
    return fail(errc::corruption, "event " + std::string(v.stream_id) + " v" +
                                      std::to_string(v.version) + ": stored hash " +
                                      to_hex(v.hash) + " does not match its body (" +
                                      to_hex(actual) + ")");
  }
  // decode() would refuse the payload of an unknown type; the view refuses it too, so that a
  // walk on views misses nothing decode() catches. The table must be there as well: the
  // verifier accepts a union whose type is set but whose table is absent.
  const auto type = body->payload_type();
  if (type == fb::Payload_NONE || type > fb::Payload_MAX || body->payload() == nullptr) {
    return fail(errc::corruption, "unknown payload type " + std::to_string(static_cast<int>(type)));
  }
  v.body = body;
  return v;
}

Result<Payload> decode_payload(const EventView& event) {
  if (event.body == nullptr) return fail(errc::invalid_argument, "no event viewed");
  return read_payload(*static_cast<const fb::EventBody*>(event.body));
}

}  // namespace chorus::events
