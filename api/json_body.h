#pragma once
// Strict reading of JSON request bodies: an object, only known fields, each of the right
// type, strings without control characters but line breaks and tabs. Anything else throws a
// 400/422 Problem naming the field. nlohmann::json rejects invalid UTF-8 while parsing.

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/http.h"

namespace chorus::api {

class JsonBody {
 public:
  // Parses `body` as an object whose fields are all in `allowed`. Throws Problem.
  JsonBody(const std::string& body, std::set<std::string> allowed);

  // An object already parsed (an item of a list), checked the same way. Throws Problem.
  JsonBody(nlohmann::json object, const std::set<std::string>& allowed);

  // The boolean field `name`, `fallback` when absent. Throws Problem on anything else.
  [[nodiscard]] bool bool_or(const std::string& name, bool fallback) const;
  // The list of strings `name`, empty when absent. Throws Problem on anything else, a string
  // holding a control character included (request.text).
  [[nodiscard]] std::vector<std::string> string_list(const std::string& name) const;
  // The list of objects `name` (empty when absent), each with only `allowed` fields. Throws
  // Problem on anything else, naming the list.
  [[nodiscard]] std::vector<JsonBody> object_list(const std::string& name,
                                                  const std::set<std::string>& allowed) const;
  // The object field `name` (an empty object when absent), with only `allowed` fields.
  [[nodiscard]] JsonBody object(const std::string& name,
                                const std::set<std::string>& allowed) const;

  // The string field `name`, or nullopt when absent. Throws Problem on a non-string or a
  // string holding a control character (request.text).
  [[nodiscard]] std::optional<std::string> optional_string(const std::string& name) const;
  // The integer field `name`, or nullopt when absent. Throws Problem on anything else.
  [[nodiscard]] std::optional<int> optional_int(const std::string& name) const;
  // The string field `name`, "" when absent.
  [[nodiscard]] std::string string_or_empty(const std::string& name) const;
  [[nodiscard]] bool has(const std::string& name) const { return json_.contains(name); }

 private:
  nlohmann::json json_;
};

// JSON answers, built the same way by every route file. Pure, thread-safe.
[[nodiscard]] Response json_response(int status, const nlohmann::json& body);
// A refusal as a member of an answer (a batch line's "problem"): status, rule, detail, and the
// field when there is one.
[[nodiscard]] nlohmann::json problem_json(const Problem& p);
// A batch's answer (imports): one result per line, and the consistency token of its last
// write, also as X-Consistency-Token, for a read that must see the whole batch.
[[nodiscard]] Response batch_response(nlohmann::json results, const std::string& last_token);

}  // namespace chorus::api
