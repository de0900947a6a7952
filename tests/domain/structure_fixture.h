#pragma once
// A structure with one member of each role, for the tests of domain/structure.h: public,
// services A and B, GP "gp", GS of the whole structure "gsw", GS of service A "gsa", simple
// user "usr", and the callers of every role scope of the permission table.

#include <gtest/gtest.h>

#include "domain/structure.h"

namespace chorus::domain::structure::testing {

inline const char* kSiret = "73282932000074";  // passes Luhn
inline const Caller kGp{"gp", {}};
inline const Caller kGsWhole{"gsw", {}};
inline const Caller kGsA{"gsa", {}};
inline const Caller kUser{"usr", {}};
inline const Caller kSupport1{"sn1", {.support_level1 = true}};
inline const Caller kSupport2{"sn2", {.support_level2 = true}};
inline const Caller kAuditor{"aud", {.auditor = true}};
inline const Caller kOutsider{"out", {}};

// The caller standing for each role scope, in the order of access::kAllRoleScopes.
inline Caller caller_for(access::RoleScope scope) {
  switch (scope) {
    case access::RoleScope::gp:
      return kGp;
    case access::RoleScope::gs_whole:
      return kGsWhole;
    case access::RoleScope::gs_services:
      return kGsA;
    case access::RoleScope::user:
      return kUser;
    case access::RoleScope::support_n1:
      return kSupport1;
    case access::RoleScope::support_n2:
      return kSupport2;
    case access::RoleScope::auditor:
      return kAuditor;
    case access::RoleScope::outsider:
      return kOutsider;
  }
  return kOutsider;
}

inline const structure::AccountFacts kActivePigp{true, true, false, true, false};
inline const structure::AccountFacts kActivePortal{true, true, false, false, false};

inline Context context(AccountFacts account = kActivePigp) {
  Context c;
  c.today = "2024-06-01";
  c.account = account;
  return c;
}

inline events::StructureData public_data() {
  events::StructureData d;
  d.designation = "Mairie de Test";
  d.address_line1 = "1 place de la Mairie";
  d.postal_code = "75001";
  d.city = "Paris";
  d.country = "FR";
  d.moa_mode = 1;
  d.vat_number = "FR00123456789";
  d.pacage_number = "PAC-1";
  d.social_regime = "général";
  d.billing_mandate = true;
  return d;
}

inline State fold(State s, const std::vector<events::Payload>& payloads) {
  for (const auto& p : payloads) s = evolve(std::move(s), p);
  return s;
}

// Decides and folds; the test fails when the command is rejected.
inline State apply(State s, const Command& command, const Caller& caller,
                   const Context& ctx = context()) {
  auto decided = decide(s, command, caller, ctx);
  EXPECT_TRUE(decided) << (decided ? "" : decided.error().rule + ": " + decided.error().message);
  return decided ? fold(std::move(s), *decided) : s;
}

inline Service service(const std::string& code) {
  return Service{code, "Service " + code, "", "2024-01-01", "", false};
}

inline State created(bool is_public = true) {
  State s;
  s.structure_id = "s1";
  CreateStructure c{"SIRET", kSiret, is_public, false, false, public_data(), "2024-01-01", "gp"};
  if (!is_public) c.data.moa_mode = 0;
  return apply(s, c, kSupport2);
}

inline State populated() {
  State s = created();
  s = apply(s, AddService{service("A")}, kGp);
  s = apply(s, AddService{service("B")}, kGp);
  s = apply(s, AttachDirectly{"gsw", Role::gs, {}, "2024-01-01", ""}, kGp, context());
  s = apply(s, AttachDirectly{"gsa", Role::gs, {"A"}, "2024-01-01", ""}, kGp, context());
  s = apply(s, AttachDirectly{"usr", Role::user, {"A"}, "2024-01-01", ""}, kGp, context());
  AccountFacts technical = kActivePortal;
  technical.technical = true;
  s = apply(s, AttachDirectly{"tech", Role::user, {}, "2024-01-01", ""}, kGp, context(technical));
  s = apply(s, EnableEspace{"Factures reçues", "A", true, true}, kGp);
  // Pending: an outsider asks for service A; the simple user asks for an espace on A.
  s = apply(s, RequestAttachment{"r1", {"A"}, "Bonjour"}, kOutsider, context(kActivePortal));
  s = apply(s, RequestSubscription{"q1", "Factures reçues", "A", true, false, ""}, kUser,
            context(kActivePortal));
  return s;
}

}  // namespace chorus::domain::structure::testing
