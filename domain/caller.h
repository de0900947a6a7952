#pragma once
// Who sends a command, as established by the api/ from a verified token. Global roles come
// from the token; what a user may do on a structure comes from the access views, which the
// command side passes in explicitly (domain/ never reads them itself).

#include <string>

namespace chorus::domain {

struct GlobalRoles {
  bool support_level1 = false;  // "SN1"
  bool support_level2 = false;  // "SN2", the AIFE
  bool auditor = false;
  bool operator_ = false;
};

struct Caller {
  std::string user_id;
  GlobalRoles roles;
};

}  // namespace chorus::domain
