#include "api/auth.h"

#include <jwt.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "events/utf8.h"

namespace chorus::api {
namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using Jwt = std::unique_ptr<jwt_t, JwtFree>;

}  // namespace

std::expected<domain::Caller, std::string> TokenVerifier::verify(std::string_view authorization,
                                                                 std::int64_t now_s) const {
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.empty()) return std::unexpected("missing Authorization header");
  // The scheme's name is case-insensitive (RFC 9110, 11.1): "bearer" is "Bearer".
  const bool bearer =
      authorization.size() >= kBearer.size() &&
      std::ranges::equal(authorization.substr(0, kBearer.size()), kBearer, [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
      });
  if (!bearer) return std::unexpected("Authorization is not Bearer");
  const std::string token(authorization.substr(kBearer.size()));
  if (token.empty() || token.size() > 8192) return std::unexpected("malformed token");
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                 static_cast<int>(key_.size())) != 0 ||
      raw == nullptr) {
    return std::unexpected("token signature or format is invalid");
  }
  Jwt jwt(raw);
  // libjwt accepts alg "none" tokens as merely well-formed: insist on our algorithm.
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return std::unexpected("token is not HS256-signed");
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  if (sub == nullptr || *sub == '\0') return std::unexpected("token has no subject");
  // Dates ("NumericDate", RFC 7519) are read as JSON: they may have a fraction, which libjwt's
  // integer getter reads as 0 without saying so, as it does a string.
  auto date = [&](const char* name) -> std::optional<nlohmann::json> {
    char* text = jwt_get_grants_json(jwt.get(), name);
    if (text == nullptr) return std::nullopt;
    auto value = nlohmann::json::parse(text, nullptr, false);
    free(text);
    return value;
  };
  const auto exp = date("exp");
  if (!exp || !exp->is_number() || exp->get<double>() <= 0) {
    return std::unexpected("token has no expiry");
  }
  if (exp->get<double>() <= static_cast<double>(now_s)) return std::unexpected("token has expired");
  // "nbf" is optional; when present, a token is refused before it (RFC 7519, 4.1.5), give or
  // take kNotBeforeLeeway: an issuer sets it to the time of issue, by a clock that may be ahead.
  if (const auto nbf = date("nbf")) {
    if (!nbf->is_number()) return std::unexpected("token nbf is not a number");
    if (nbf->get<double>() > static_cast<double>(now_s + kNotBeforeLeeway)) {
      return std::unexpected("token is not valid yet");
    }
  }
  // The subject names the caller in keys and events: text, as every such field.
  if (!events::is_plain_text(sub, /*line_breaks=*/false)) {
    return std::unexpected("token subject is not plain text");
  }

  domain::Caller caller{sub, {}};
  if (char* roles_json = jwt_get_grants_json(jwt.get(), "roles")) {
    auto roles = nlohmann::json::parse(roles_json, nullptr, false);
    free(roles_json);
    if (!roles.is_array()) return std::unexpected("token roles are not a list");
    for (const auto& r : roles) {
      if (!r.is_string()) return std::unexpected("token roles are not strings");
      const auto& role = r.get_ref<const std::string&>();
      if (role == "support_n1") {
        caller.roles.support_level1 = true;
      } else if (role == "support_n2") {
        caller.roles.support_level2 = true;
      } else if (role == "auditor") {
        caller.roles.auditor = true;
      } else if (role == "operator") {
        caller.roles.operator_ = true;
      } else {
        return std::unexpected("token names an unknown role");
      }
    }
  }
  return caller;
}

std::string TokenVerifier::mint(const std::string& user_id, const std::vector<std::string>& roles,
                                std::int64_t expires_at_s,
                                std::optional<std::int64_t> not_before_s) const {
  jwt_t* raw = nullptr;
  jwt_new(&raw);
  Jwt jwt(raw);
  jwt_add_grant(jwt.get(), "sub", user_id.c_str());
  jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(expires_at_s));
  if (not_before_s) jwt_add_grant_int(jwt.get(), "nbf", static_cast<long>(*not_before_s));
  jwt_add_grants_json(jwt.get(), nlohmann::json{{"roles", roles}}.dump().c_str());
  jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(key_.data()),
              static_cast<int>(key_.size()));
  char* encoded = jwt_encode_str(jwt.get());
  std::string out = encoded != nullptr ? encoded : "";
  free(encoded);
  return out;
}

}  // namespace chorus::api
