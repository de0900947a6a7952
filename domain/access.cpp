#include "domain/access.h"

#include <algorithm>

namespace chorus::domain::access {
namespace {

// Every row is in the order of Action, so that grant() indexes without searching, and has one
// cell per role scope.
constexpr bool table_is_well_formed() {
  for (std::size_t i = 0; i < kActions; ++i) {
    if (static_cast<std::size_t>(kPermissions[i].action) != i) return false;
  }
  return true;
}
static_assert(table_is_well_formed(), "kPermissions rows must follow the order of Action");
static_assert(kPermissions[0].grants[kRoleScopes - 1] == Grant::yes,
              "a row with missing cells ends with the default 'no'");

bool inside(std::span<const std::string> scope_services,
            std::span<const std::string> request_services) {
  if (request_services.empty() || scope_services.empty()) return false;
  return std::ranges::all_of(request_services, [&](const std::string& s) {
    return std::ranges::find(scope_services, s) != scope_services.end();
  });
}

}  // namespace

Grant grant(RoleScope scope, Action action) noexcept {
  return kPermissions[static_cast<std::size_t>(action)].grants[static_cast<std::size_t>(scope)];
}

bool may(RoleScope scope, std::span<const std::string> scope_services, Action action,
         std::span<const std::string> request_services) noexcept {
  switch (grant(scope, action)) {
    case Grant::yes:
      return true;
    case Grant::scoped:
      return inside(scope_services, request_services);
    case Grant::no:
      return false;
  }
  return false;
}

std::vector<RoleScope> scopes_of(const Access& access) {
  if (access.roles.auditor && !access.roles.support_level1 && !access.roles.support_level2) {
    return {RoleScope::auditor};
  }
  std::vector<RoleScope> out;
  if (access.member != RoleScope::outsider) out.push_back(access.member);
  if (access.roles.support_level2) out.push_back(RoleScope::support_n2);
  if (access.roles.support_level1) out.push_back(RoleScope::support_n1);
  if (out.empty()) out.push_back(RoleScope::outsider);
  return out;
}

bool may(const Access& access, Action action,
         std::span<const std::string> request_services) noexcept {
  for (RoleScope scope : scopes_of(access)) {
    if (may(scope, access.services, action, request_services)) return true;
  }
  return false;
}

const char* to_string(RoleScope scope) noexcept {
  switch (scope) {
    case RoleScope::gp:
      return "gp";
    case RoleScope::gs_whole:
      return "gs_whole";
    case RoleScope::gs_services:
      return "gs_services";
    case RoleScope::user:
      return "user";
    case RoleScope::support_n1:
      return "support_n1";
    case RoleScope::support_n2:
      return "support_n2";
    case RoleScope::auditor:
      return "auditor";
    case RoleScope::outsider:
      return "outsider";
  }
  return "?";
}

const char* to_string(Action action) noexcept {
  return kPermissions[static_cast<std::size_t>(action)].name;
}

}  // namespace chorus::domain::access
