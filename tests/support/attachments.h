#pragma once
// Test setup through the real HTTP API: accounts for users and their attachment to a structure,
// so that tests about tickets can emit for a structure they belong to (the ticket rules check
// the attachment in the access view).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/server_process.h"

namespace chorus::testing {

// A SIRET (14 digits passing the Luhn check) derived from `seed`: one per structure id.
inline std::string siret_for(const std::string& seed) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : seed) h = (h ^ c) * 1099511628211ULL;
  std::string digits;
  for (int i = 0; i < 13; ++i, h /= 10) digits.push_back(static_cast<char>('0' + h % 10));
  for (char last = '0'; last <= '9'; ++last) {
    const std::string candidate = digits + last;
    int sum = 0;
    for (std::size_t i = 0; i < candidate.size(); ++i) {
      int d = candidate[candidate.size() - 1 - i] - '0';
      if (i % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    if (sum % 10 == 0) return candidate;
  }
  return digits + "0";  // unreachable: one check digit always fits
}

// Gives each of `user_ids` an active account and attaches it to `structure_id`, which support
// creates when missing with the first user as its GP; the others are attached directly by the
// GP. Idempotent (accounts, structure and attachments already there are left as they are).
// Returns the consistency token of the last write, for the caller's next query. Throws
// std::runtime_error on an unexpected answer.
inline std::string attach_users(std::uint16_t port, const std::string& structure_id,
                                const std::vector<std::string>& user_ids) {
  using nlohmann::json;
  HttpClient client(port);
  std::string token;
  auto call = [&](const std::string& user, std::vector<std::string> roles,
                  const std::string& method, const std::string& target, const std::string& body,
                  std::initializer_list<int> accepted) {
    std::map<std::string, std::string> headers{
        {"Authorization", ServerProcess::token(user, std::move(roles))}};
    if (!token.empty()) headers["X-Consistency-Token"] = token;
    auto r = client.request(method, target, body, headers);
    if (!r) throw std::runtime_error("no answer to " + method + " " + target);
    bool ok = false;
    for (int status : accepted) ok = ok || r->status == status;
    if (!ok) {
      throw std::runtime_error(method + " " + target + " answered " + std::to_string(r->status) +
                               " " + r->body);
    }
    json answer = json::parse(r->body, nullptr, false);
    if (answer.is_object() && answer.value("consistency_token", "") != "") {
      token = answer["consistency_token"];
    }
    return answer;
  };
  for (const auto& user : user_ids) {
    call(user, {}, "POST", "/v1/accounts",
         json{{"login_email", user + "@example.test"}, {"first_name", "Test"}, {"last_name", user}}
             .dump(),
         {201, 200, 409});
    call(user, {}, "POST", "/v1/accounts/" + user + "/activate", "", {201, 200, 409});
  }
  if (user_ids.empty()) return token;
  call("fixture-support", {"support_n1"}, "POST", "/v1/structures",
       json{{"structure_id", structure_id},
            {"identifier_type", "SIRET"},
            {"identifier_value", siret_for(structure_id)},
            {"data",
             {{"designation", "Structure " + structure_id},
              {"address_line1", "1 rue de la Paix"},
              {"postal_code", "75002"},
              {"city", "Paris"},
              {"country", "FR"}}},
            {"first_gp_user_id", user_ids.front()}}
           .dump(),
       {201, 200, 409});
  const json detail =
      call("fixture-support", {"support_n1"}, "GET", "/v1/structures/" + structure_id, "", {200});
  const std::string gp = detail.value("gp_user_id", "");
  for (const auto& user : user_ids) {
    if (user == gp) continue;
    call(gp, {}, "POST", "/v1/structures/" + structure_id + "/members",
         json{{"user_id", user}, {"role", "user"}}.dump(), {201, 200, 409});
  }
  // Commands read the access view as it stands: wait until it has seen the attachments.
  call(user_ids.front(), {}, "GET", "/v1/me/attachments", "", {200});
  return token;
}

}  // namespace chorus::testing
