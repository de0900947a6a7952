#pragma once
// Who may do what on a structure, as data: one row per action, one column per role scope.
// The command side and the tests read the same table (kPermissions); decide() of the
// structure aggregate checks it through may(). DOMAIN.md "Attachments", "Main-manager
// transfer", "Espace subscriptions"; seed 000 for the two launch-month failures it guards
// against (partitioning by service, support's right to transfer the GP role).

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/caller.h"

namespace chorus::domain::access {

// The caller's relation to one structure. The first five come from the structure's roles,
// the last three from the token's global roles.
enum class RoleScope : std::uint8_t {
  gp,           // "gestionnaire principal": always the whole structure
  gs_whole,     // "gestionnaire secondaire" of the whole structure
  gs_services,  // "gestionnaire secondaire" of some services ("cloisonnement")
  user,         // "utilisateur simple", whole structure or services
  support_n1,   // "SN1"
  support_n2,   // "SN2", the AIFE
  auditor,      // reads everything, writes nothing
  outsider,     // signed in, nothing to do with the structure
};
inline constexpr std::size_t kRoleScopes = 8;
inline constexpr std::array<RoleScope, kRoleScopes> kAllRoleScopes{
    RoleScope::gp,         RoleScope::gs_whole,   RoleScope::gs_services, RoleScope::user,
    RoleScope::support_n1, RoleScope::support_n2, RoleScope::auditor,     RoleScope::outsider};

enum class Action : std::uint8_t {
  view_structure,         // structure card and services (the public directory)
  create_structure,       // support, on a ticket or an import
  deactivate_structure,   // support
  change_data,            // designation, address, parameters, MOA mode, services
  change_identifier,      // SIRET change ("Modifier l'identifiant")
  request_attachment,     // ask to be attached (or to more services)
  view_requests,          // "Approbation" inbox: pending attachment and subscription requests
  decide_attachment,      // validate or refuse an attachment request
  attach_directly,        // attach a user without a request
  remove_attachment,      // at structure level only
  transfer_main_manager,  // name a new GP
  reset_technical_password,
  enable_espace,
  request_subscription,
  decide_subscription,
  view_history,       // "Historique"
  resend_activation,  // "Renvoyer un courriel d'activation" to a user of the structure
};
inline constexpr std::size_t kActions = 17;

enum class Grant : std::uint8_t {
  no,
  yes,
  scoped,  // only on requests and services inside the caller's own services
};

struct Permission {
  Action action;
  const char* name;                       // stable, for rule identifiers and test names
  std::array<Grant, kRoleScopes> grants;  // in the order of RoleScope
};

namespace detail {
// A row of the table as text, one letter per role scope in the order of RoleScope:
// Y yes, S scoped, N no. A malformed row does not compile (see access.cpp).
consteval std::array<Grant, kRoleScopes> row(std::string_view cells) {
  std::array<Grant, kRoleScopes> out{};
  std::size_t i = 0;
  for (char c : cells) {
    if (c == ' ') continue;
    if (i == kRoleScopes) return {};  // too many cells: caught by the static_assert
    out[i++] = c == 'Y' ? Grant::yes : c == 'S' ? Grant::scoped : Grant::no;
  }
  return out;
}
}  // namespace detail

// The table. Decisions beyond the seeds (domain/README.md): a GS scoped to services neither
// edits the structure card nor removes attachments (both are structure-wide); managers who
// cover the whole structure have nothing to request; support transfers the GP role (seed 000:
// it lacked that right in the launch month) but decides no request.
// The grid is kept as written (clang-format off).
// clang-format off
inline constexpr std::array<Permission, kActions> kPermissions{{
    //                                                                          gp gsW gsS usr sn1 sn2 aud out
    {Action::view_structure,           "view_structure",           detail::row("Y  Y   Y   Y   Y   Y   Y   Y")},
    {Action::create_structure,         "create_structure",         detail::row("N  N   N   N   Y   Y   N   N")},
    {Action::deactivate_structure,     "deactivate_structure",     detail::row("N  N   N   N   Y   Y   N   N")},
    {Action::change_data,              "change_data",              detail::row("Y  Y   N   N   N   N   N   N")},
    {Action::change_identifier,        "change_identifier",        detail::row("Y  Y   N   N   N   N   N   N")},
    {Action::request_attachment,       "request_attachment",       detail::row("N  N   Y   Y   N   N   N   Y")},
    {Action::view_requests,            "view_requests",            detail::row("Y  Y   S   N   Y   Y   Y   N")},
    {Action::decide_attachment,        "decide_attachment",        detail::row("Y  Y   S   N   N   N   N   N")},
    {Action::attach_directly,          "attach_directly",          detail::row("Y  Y   S   N   N   N   N   N")},
    {Action::remove_attachment,        "remove_attachment",        detail::row("Y  Y   N   N   N   N   N   N")},
    {Action::transfer_main_manager,    "transfer_main_manager",    detail::row("Y  N   N   N   Y   Y   N   N")},
    {Action::reset_technical_password, "reset_technical_password", detail::row("Y  N   N   N   N   N   N   N")},
    {Action::enable_espace,            "enable_espace",            detail::row("Y  Y   S   N   N   N   N   N")},
    {Action::request_subscription,     "request_subscription",     detail::row("N  N   Y   Y   N   N   N   N")},
    {Action::decide_subscription,      "decide_subscription",      detail::row("Y  Y   S   N   N   N   N   N")},
    {Action::view_history,             "view_history",             detail::row("Y  Y   S   N   Y   Y   Y   N")},
    {Action::resend_activation,        "resend_activation",        detail::row("Y  Y   S   N   Y   Y   N   N")},
}};
// clang-format on

// What a caller is on one structure: their role there (gp, gs_whole, gs_services, user or
// outsider), the services it covers (empty: the whole structure) and their global roles.
// The structure aggregate computes it from its own roles (structure::access_of); the access
// view will give the same for queries.
struct Access {
  RoleScope member = RoleScope::outsider;
  std::vector<std::string> services;
  GlobalRoles roles;
};

// The grant of `scope` for `action`. Pure, thread-safe, never fails.
[[nodiscard]] Grant grant(RoleScope scope, Action action) noexcept;

// Whether one role scope, covering `scope_services` (empty: whole structure), may do `action`
// on something concerning `request_services` (empty: the whole structure). A scoped grant
// holds only when every requested service is one of the scope's services: a request for the
// whole structure is never inside a service scope. Pure, thread-safe.
[[nodiscard]] bool may(RoleScope scope, std::span<const std::string> scope_services, Action action,
                       std::span<const std::string> request_services) noexcept;

// Whether the caller may, through any scope they hold: their role on the structure, and support
// levels. An auditor acts only as auditor (read-only), as for tickets. Pure, thread-safe.
[[nodiscard]] bool may(const Access& access, Action action,
                       std::span<const std::string> request_services) noexcept;

// The scopes the caller holds, strongest first (member role, then support levels, or auditor
// alone). Pure, thread-safe.
[[nodiscard]] std::vector<RoleScope> scopes_of(const Access& access);

[[nodiscard]] const char* to_string(RoleScope scope) noexcept;
[[nodiscard]] const char* to_string(Action action) noexcept;

}  // namespace chorus::domain::access
