#pragma once
// Bearer tokens: HS256 JSON Web Tokens (RFC 7519) carrying the user id ("sub"), the global
// roles ("roles": "support_n1", "support_n2", "auditor", "operator") and an expiry ("exp").
// Verified with libjwt against the key from configuration. Nothing else in the product reads
// identity from anywhere else.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/caller.h"

namespace chorus::api {

class TokenVerifier {
 public:
  explicit TokenVerifier(std::string key) : key_(std::move(key)) {}

  // Seconds by which a token's "nbf" may be ahead of this server's clock.
  static constexpr std::int64_t kNotBeforeLeeway = 60;

  // The caller named by `authorization` ("Bearer <token>"), when its signature is HS256 with
  // our key, "sub" is a non-empty string of plain text (no control character), "exp" is in the
  // future of `now_s`, "nbf", when present, is not beyond kNotBeforeLeeway, and "roles" holds
  // only known roles. Otherwise an explanation (never echoing the token). Thread-safe.
  [[nodiscard]] std::expected<domain::Caller, std::string> verify(std::string_view authorization,
                                                                  std::int64_t now_s) const;

  // A token for `user_id` with `roles`, valid until `expires_at_s` (and from `not_before_s`
  // when given): for tests, the workload generator and `chorusd mint-token`. Thread-safe.
  [[nodiscard]] std::string mint(const std::string& user_id, const std::vector<std::string>& roles,
                                 std::int64_t expires_at_s,
                                 std::optional<std::int64_t> not_before_s = std::nullopt) const;

 private:
  std::string key_;
};

}  // namespace chorus::api
