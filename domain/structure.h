#pragma once
// The structure aggregate: the structure card ("fiche structure"), its services, and everything
// that gives users rights on it: roles (GP, GS, simple user), attachment requests, espaces and
// subscription requests. They live in one stream, "structure-<id>", so that one append is
// atomic for a structure and invariant 1 (exactly one GP) is decided in one place. Pure rules,
// no I/O. Seed 003, DOMAIN.md "Structures", "Attachments", "Main-manager transfer", "Espace
// subscriptions".

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/access.h"
#include "domain/caller.h"
#include "domain/errc.h"
#include "events/event.h"

namespace chorus::domain::structure {

inline constexpr std::string_view kPublicInvoices = events::kPublicInvoicesCode;
inline constexpr std::size_t kCodeMax = 100;  // service code and label (seed 003)
inline constexpr std::size_t kTextMax = 1'000;
inline constexpr std::size_t kIdMax = 100;

enum class Status { none, active, inactive };
enum class Role { gp, gs, user };
enum class MoaMode : std::uint8_t { not_applicable = 0, without = 1, with = 2, only = 3 };

// "gp", "gs" or "user". Pure, thread-safe, never fails.
[[nodiscard]] const char* to_string(Role role) noexcept;
// The role named "gp", "gs" or "user"; nullopt for anything else. Pure, thread-safe.
[[nodiscard]] std::optional<Role> role_from(std::string_view text) noexcept;

struct Service {
  std::string code;
  std::string label;
  std::string description;
  std::string valid_from;  // YYYY-MM-DD, required
  std::string valid_to;    // empty: open-ended
  bool commitment_required = false;
  bool operator==(const Service&) const = default;
};

// A user's rights on the structure; `services` empty: the whole structure (always for a GP).
struct Member {
  Role role = Role::user;
  std::vector<std::string> services;
  std::string start_date;
};

// "En cours de validation": one per service; empty service: the whole structure.
struct AttachmentRequest {
  std::string user_id;
  std::string service;
  std::string comment;
};

struct Espace {
  std::string espace;
  std::string service;  // empty: every service
  bool read = false;
  bool write = false;
};

struct SubscriptionRequest {
  std::string user_id;
  std::string espace;
  std::string service;
  bool read = false;
  bool write = false;
  std::string comment;
};

// A structure that does not exist yet has status none and its structure_id set by the command
// side.
struct State {
  Status status = Status::none;
  std::uint64_t version = 0;
  std::string structure_id;
  std::string identifier_type;
  std::string identifier_value;
  bool is_public = false;
  bool is_state = false;
  bool pigp_managed = false;
  std::string created_on;
  std::string origin_structure_id;     // set on a duplicate made by a SIRET change
  std::string successor_structure_id;  // set on the original once deactivated
  events::StructureData data;
  std::vector<Service> services;  // FACTURES_PUBLIQUES first, then in order of creation
  std::string gp;                 // empty until the first GP is named
  std::map<std::string, Member> members;
  std::map<std::string, AttachmentRequest> attachment_requests;  // pending, by request id
  std::vector<Espace> espaces;
  std::map<std::string, SubscriptionRequest> subscription_requests;  // pending, by request id
  std::vector<SubscriptionRequest> subscriptions;                    // validated, as granted
  std::set<std::string> used_request_ids;  // a request id is never reused on a structure
  // Since the StructureDeactivated, only the refusals that close its pending requests
  // (closing_refusals) have followed: for verify, which takes those from whoever deactivated.
  bool closing_on_deactivation = false;
};

// "exclusivement MOA": with the State, exempt from the PIGP rule of GP transfers. Pure,
// thread-safe.
[[nodiscard]] bool moa_only(const State& state) noexcept;

// --- Commands ------------------------------------------------------------------------------

// Support creates a structure (on a ticket, or for each line of a reference import). The first
// GP, when named, must be an active account (PIGP for a public structure, as for a transfer).
struct CreateStructure {
  std::string identifier_type;  // "SIRET" is checked: 14 digits and Luhn
  std::string identifier_value;
  bool is_public = false;
  bool is_state = false;
  bool pigp_managed = false;
  events::StructureData data;
  std::string created_on;  // today, from the command side
  std::string first_gp_user_id;
};
struct ChangeData {
  events::StructureData data;
};
struct DeactivateStructure {
  std::string reason;
};
struct AddService {
  Service service;
};
struct ChangeService {
  Service service;  // found by code
};
struct RemoveService {
  std::string code;
};
// One pending request per service (`services` empty: the whole structure); the request ids are
// `<request_id>` for the whole structure and `<request_id>-<n>` for the n-th service, n from 1.
struct RequestAttachment {
  std::string request_id;
  std::vector<std::string> services;
  std::string comment;
};
// `role` gs or user; `services` granted (empty: what was requested). Services already granted
// stay granted.
struct ValidateAttachment {
  std::string request_id;
  Role role = Role::user;
  std::vector<std::string> services;
  std::string comment;
};
struct RefuseAttachment {
  std::string request_id;
  std::string reason;
};
struct AttachDirectly {
  std::string user_id;
  Role role = Role::user;
  std::vector<std::string> services;  // empty: "Rattacher à la structure"
  std::string start_date;
  std::string comment;
};
struct RemoveAttachment {
  std::string user_id;
};
struct TransferMainManager {
  std::string new_gp_user_id;
};
struct ResetTechnicalPassword {
  std::string user_id;
};
struct EnableEspace {
  std::string espace;
  std::string service;  // empty: "Tous les services"
  bool read = true;
  bool write = false;
};
struct RequestSubscription {
  std::string request_id;
  std::string espace;
  std::string service;
  bool read = true;
  bool write = false;
  std::string comment;
};
// The manager may adjust the rights.
struct ValidateSubscription {
  std::string request_id;
  bool read = true;
  bool write = false;
  std::string comment;
};
struct RefuseSubscription {
  std::string request_id;
  std::string reason;
};

using Command =
    std::variant<CreateStructure, ChangeData, DeactivateStructure, AddService, ChangeService,
                 RemoveService, RequestAttachment, ValidateAttachment, RefuseAttachment,
                 AttachDirectly, RemoveAttachment, TransferMainManager, ResetTechnicalPassword,
                 EnableEspace, RequestSubscription, ValidateSubscription, RefuseSubscription>;

// What the command side knows about an account, from its stream (account::facts_of) or the
// access view.
struct AccountFacts {
  bool exists = false;
  bool active = false;       // activated and not deactivated
  bool deactivated = false;  // deactivated (reactivable or not)
  bool pigp = false;         // origin PIGP
  bool technical = false;
  // A technical account's structure (events::AccountCreated::structure_id); empty when
  // unknown (an account created before it was recorded).
  std::string technical_structure_id{};
};

// What the command side knows that the rules need, passed in so that decide() stays pure.
struct Context {
  std::string today;  // YYYY-MM-DD: services active today
  // The account the command concerns: the first or new GP, the user attached directly, the
  // technical account, or the caller for a request.
  AccountFacts account;
  bool identifier_taken = false;  // CreateStructure: another structure has this identifier
  // AttachDirectly of a technical account: it is attached to another structure already (an
  // "utilisateur technique" serves the one structure whose GP attached it).
  bool account_attached_elsewhere = false;
  // Validate{Attachment,Subscription}, single or in bulk: the requesters whose account is
  // deactivated (their pending requests are refused, never granted).
  std::set<std::string> deactivated_requesters;
  // ChangeData of a public structure: whether its GP's account is a PIGP one (a change of the
  // MOA mode must not leave a GP the transfer rule would refuse).
  bool gp_is_pigp = true;
};

// The caller's role on the structure, from its own roles (not from a view), with their global
// roles. Pure, thread-safe.
[[nodiscard]] access::Access access_of(const State& state, const Caller& caller);

// Whether `value` is a SIRET: 14 digits passing the Luhn check. Pure, thread-safe.
[[nodiscard]] bool is_siret(std::string_view value) noexcept;
// Whether `type` is written as an identifier type is: upper-case ASCII letters, digits and
// '_', starting with a letter ("SIRET", "HORS_UE"), at most 100 bytes. One spelling per type,
// so that "siret" can neither skip the SIRET check nor hold a second copy of a SIRET. Pure,
// thread-safe.
[[nodiscard]] bool is_identifier_type(std::string_view type) noexcept;
// Whether `date` is YYYY-MM-DD, a day of the (proleptic Gregorian) calendar. Pure, thread-safe.
[[nodiscard]] bool is_date(std::string_view date) noexcept;

// The action of the permission table a command needs. Pure, thread-safe, never fails.
[[nodiscard]] access::Action action_of(const Command& command) noexcept;

// Decides `command` on `state` for `caller`. On success, the payloads to append to this
// structure's stream (never empty). On rejection, the rule and field: not_found when the caller
// may not know the request or structure exists, forbidden when the table refuses the caller,
// wrong_status when the structure's state does not allow it, invalid_field for bad input.
// Pure and thread-safe.
[[nodiscard]] Decision<std::vector<events::Payload>> decide(const State& state,
                                                            const Command& command,
                                                            const Caller& caller,
                                                            const Context& context);

// Bulk decisions ("en masse"): each command decided in turn on the state left by the accepted
// ones before it. Every accepted command's payloads go in one append; each command gets its
// result (nullopt: accepted). Pure and thread-safe.
struct BulkOutcome {
  std::vector<events::Payload> payloads;
  std::vector<std::optional<Rejection>> results;  // one per command, in order
};
[[nodiscard]] BulkOutcome decide_each(const State& state, const std::vector<Command>& commands,
                                      const Caller& caller, const Context& context);

// The refusals that close every request pending on `state`, for a structure being deactivated
// (by support, or by a SIRET change): none of them can be decided any more, and each requester
// is told, with `reason`. Appended after the StructureDeactivated. Pure, thread-safe.
[[nodiscard]] std::vector<events::Payload> closing_refusals(const State& state,
                                                            const std::string& reason);

// Folds one event of this structure's stream into the state. Events of other aggregates leave
// it as is (but count in the version). Pure, thread-safe, never fails.
[[nodiscard]] State evolve(State state, const events::Payload& payload);

// "structure-<id>": the stream of a structure. Pure, thread-safe.
[[nodiscard]] std::string stream_id(const std::string& structure_id);

// The stream that reserves an identifier for one structure, for good: its only event is
// IdentifierReserved, appended at expected version 0 with the StructureCreated taking the
// identifier (workflow::reserve_identifiers). "identifier-<type>-<value>" when both are letters
// and digits only (a SIRET), else "identifier-~<SHA-256 of type, NUL, value in hex>" (a stream
// id is printable ASCII without spaces, at most 200 bytes); the two forms cannot meet. Pure,
// thread-safe.
[[nodiscard]] std::string identifier_stream_id(std::string_view type, std::string_view value);

// A reservation stream as the command side loads it: taken once it holds an event.
struct Reservation {
  std::uint64_t version = 0;
  std::string structure_id;  // the holder
};
// Folds an IdentifierReserved (other events only count in the version). Pure, thread-safe.
[[nodiscard]] Reservation evolve_reservation(Reservation state, const events::Payload& payload);

}  // namespace chorus::domain::structure
