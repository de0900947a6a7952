// Ticket attachments ("pièces jointes") through the HTTP API of the real server: upload as raw
// bytes, download the same bytes, the size limit (413, nothing written), scope (outsiders get
// 404), the status table (refused once Fermé), the content store surviving a restart, and the
// operators' sweep of content no event names.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/content_store.h"
#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::ServerProcess;

const std::string kForm =
    R"({"emitting_structure_id":"structure-1","category":"Technique","sub_category":"Connexion",)"
    R"("title":"Connexion impossible","description":"Mot de passe refusé."})";
constexpr std::size_t kLimit = 4096;  // --attachment-max-bytes of this suite's server

// Bytes a text-only path would mangle: zeros, CR LF, high bytes.
std::string binary_bytes(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 131 + 7) % 256);
  return out;
}

class TicketAttachments : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        std::filesystem::temp_directory_path() / ("chorus-attachments-" + std::to_string(getpid()));
    start();
    testing::attach_users(server_->port(), "structure-1", {"alice"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  static void start() {
    server_ = new ServerProcess(
        {"--data-dir", dir_.string(), "--attachment-max-bytes", std::to_string(kLimit)});
  }
  void SetUp() override { client_ = server_->connect(); }

  struct Answer {
    int status = 0;
    json body;
    std::string raw;
    std::map<std::string, std::string> headers;
  };
  Answer act(const std::string& user, const std::string& method, const std::string& target,
             const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    std::vector<std::string> roles;
    if (user.starts_with("sn1")) roles = {"support_n1"};
    if (user == "ops") roles = {"operator"};
    headers["Authorization"] = ServerProcess::token(user, roles);
    if (!token_.empty()) headers["X-Consistency-Token"] = token_;
    auto r = client_->request(method, target, body, headers);
    if (!r) return {};
    Answer a{r->status, json::parse(r->body, nullptr, false), r->body, r->headers};
    if (a.body.is_object() && a.body.contains("consistency_token")) {
      token_ = a.body.at("consistency_token").get<std::string>();
    }
    return a;
  }
  Answer upload(const std::string& user, const std::string& id, const std::string& name,
                const std::string& bytes, const std::string& type = "application/pdf") {
    return act(user, "POST", "/v1/tickets/" + id + "/attachments?name=" + name, bytes,
               {{"Content-Type", type}});
  }
  std::string open_ticket() {
    auto a = act("alice", "POST", "/v1/tickets", kForm);
    EXPECT_EQ(a.status, 201) << a.raw;
    return a.body.value("ticket_id", "");
  }
  json detail(const std::string& id) { return act("alice", "GET", "/v1/tickets/" + id).body; }
  static std::size_t stored_files() {
    std::size_t n = 0;
    const auto root = dir_ / "attachments";
    if (!std::filesystem::exists(root)) return 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
      n += e.is_regular_file() ? 1 : 0;
    }
    return n;
  }

  static inline std::filesystem::path dir_;
  static inline ServerProcess* server_ = nullptr;
  std::unique_ptr<testing::HttpClient> client_;
  std::string token_;
};

TEST_F(TicketAttachments, UploadThenDownloadTheSameBytesEitherSide) {
  const std::string id = open_ticket();
  const std::string bytes = binary_bytes(3000);
  auto added = upload("alice", id, "relev%C3%A9%20d%27erreur.pdf", bytes);
  ASSERT_EQ(added.status, 201) << added.raw;
  const std::string file_id = added.body.value("attachment_id", "");
  EXPECT_EQ(added.body.value("sha256", ""), api::ContentStore::digest(bytes));
  EXPECT_EQ(added.body.value("size", 0u), bytes.size());

  // The detail lists it; the history shows who added which file.
  const json d = detail(id);
  ASSERT_EQ(d.value("attachments", json::array()).size(), 1u) << d;
  const json& listed = d.at("attachments").at(0);
  EXPECT_EQ(listed.value("name", ""), "relevé d'erreur.pdf");
  EXPECT_EQ(listed.value("media_type", ""), "application/pdf");
  EXPECT_EQ(listed.value("size", 0u), bytes.size());
  EXPECT_EQ(listed.value("added_by", ""), "alice");
  const json& last = d.at("history").at(d.at("history").size() - 1);
  EXPECT_EQ(last.value("action", ""), "FileAttached");
  EXPECT_EQ(last.value("text", ""), "relevé d'erreur.pdf");
  EXPECT_EQ(last.value("attachment_id", ""), file_id);

  // The emitter and the recipient (level-1 support) read the same bytes back.
  for (const char* user : {"alice", "sn1"}) {
    auto got = act(user, "GET", "/v1/tickets/" + id + "/attachments/" + file_id);
    ASSERT_EQ(got.status, 200) << user;
    EXPECT_EQ(got.raw, bytes) << user;
    EXPECT_EQ(got.headers["content-type"], "application/pdf");
    EXPECT_EQ(got.headers["content-disposition"],
              "attachment; filename=\"relev__ d'erreur.pdf\"; "
              "filename*=UTF-8''relev%C3%A9%20d%27erreur.pdf");
    EXPECT_EQ(got.headers["x-content-type-options"], "nosniff");
  }
  // Support adds one too: the same content is stored once.
  const std::size_t files = stored_files();
  auto again = upload("sn1", id, "copie.pdf", bytes);
  ASSERT_EQ(again.status, 201) << again.raw;
  EXPECT_EQ(stored_files(), files);
  EXPECT_EQ(detail(id).value("attachments", json::array()).size(), 2u);
}

TEST_F(TicketAttachments, OutsidersLearnNothing) {
  const std::string id = open_ticket();
  auto added = upload("alice", id, "a.txt", "bonjour", "text/plain");
  ASSERT_EQ(added.status, 201) << added.raw;
  const std::string file_id = added.body.value("attachment_id", "");
  const std::string target = "/v1/tickets/" + id + "/attachments/" + file_id;
  auto bob = act("bob", "GET", target);
  EXPECT_EQ(bob.status, 404);
  EXPECT_EQ(bob.body.value("rule", ""), "ticket.not_found");
  EXPECT_EQ(upload("bob", id, "b.txt", "intrus").status, 404);
  // A missing file of a readable ticket, and a missing ticket, are 404 too.
  EXPECT_EQ(act("alice", "GET", "/v1/tickets/" + id + "/attachments/nope").status, 404);
  EXPECT_EQ(
      act("alice", "GET", "/v1/tickets/00000000-0000-0000-0000-000000000000/attachments/" + file_id)
          .status,
      404);
}

TEST_F(TicketAttachments, OverTheLimitIs413AndWritesNothing) {
  const std::string id = open_ticket();
  const std::size_t files = stored_files();
  const std::string too_big = binary_bytes(kLimit + 1);
  auto refused = upload("alice", id, "gros.bin", too_big, "application/octet-stream");
  EXPECT_EQ(refused.status, 413) << refused.raw;
  EXPECT_EQ(refused.body.value("rule", ""), "attachment.too_large");
  EXPECT_NE(refused.body.value("detail", "").find(std::to_string(kLimit)), std::string::npos)
      << refused.raw;
  client_ = server_->connect();  // the server closes a connection whose body it did not read
  EXPECT_EQ(stored_files(), files);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "attachments" /
                                       api::ContentStore::digest(too_big).substr(0, 2) /
                                       api::ContentStore::digest(too_big)));
  EXPECT_FALSE(detail(id).contains("attachments"));
  // Exactly the limit is accepted; an empty file or a bad name is refused (422, the field).
  EXPECT_EQ(upload("alice", id, "juste.bin", binary_bytes(kLimit)).status, 201);
  auto empty = upload("alice", id, "vide.txt", "", "text/plain");
  EXPECT_EQ(empty.status, 422);
  EXPECT_EQ(empty.body.value("field", ""), "size");
  auto no_name = upload("alice", id, "", "x", "text/plain");
  EXPECT_EQ(no_name.body.value("field", ""), "name");
  auto path = upload("alice", id, "..%2Fetc%2Fpasswd", "x", "text/plain");
  EXPECT_EQ(path.body.value("rule", ""), "ticket.attachment.name");
  // A name that is not UTF-8 (a byte, an encoded surrogate) is refused before anything is
  // written: once accepted, it stopped the server at every start, at that event.
  for (const char* name : {"a%FFb.txt", "a%ED%A0%80.txt"}) {
    auto bad = upload("alice", id, name, "x", "text/plain");
    EXPECT_EQ(bad.status, 400) << name << " " << bad.raw;
    EXPECT_EQ(bad.body.value("rule", ""), "request.query") << bad.raw;
    EXPECT_EQ(bad.body.value("field", ""), "name") << bad.raw;
  }
  // A right-to-left override would show "facture\u202Efdp.exe" as "facture" + "exe.pdf"; no
  // text takes one, a query string no more than a field. A direction mark is refused in a file
  // name alone.
  auto bidi = upload("alice", id, "facture%E2%80%AEfdp.exe", "x", "text/plain");
  EXPECT_EQ(bidi.status, 400) << bidi.raw;
  EXPECT_EQ(bidi.body.value("rule", ""), "request.query");
  EXPECT_EQ(bidi.body.value("field", ""), "name");
  auto mark = upload("alice", id, "a%E2%80%8Fb.txt", "x", "text/plain");
  EXPECT_EQ(mark.status, 422) << mark.raw;
  EXPECT_EQ(mark.body.value("rule", ""), "ticket.attachment.name");
  EXPECT_EQ(stored_files(), files + 1);  // the file of exactly the limit, alone
  EXPECT_EQ(detail(id).value("attachments", json::array()).size(), 1u);
}

// A retried upload (same Idempotency-Key) answers what the first one stored; other bytes under
// the same key are refused, not reported as stored.
TEST_F(TicketAttachments, AnIdempotencyKeyNamesOneFile) {
  const std::string id = open_ticket();
  auto send = [&](const std::string& bytes) {
    return act("alice", "POST", "/v1/tickets/" + id + "/attachments?name=a.txt", bytes,
               {{"Content-Type", "text/plain"}, {"Idempotency-Key", "upload-1"}});
  };
  auto first = send("premier");
  ASSERT_EQ(first.status, 201) << first.raw;
  auto retried = send("premier");
  EXPECT_EQ(retried.status, 200) << retried.raw;
  EXPECT_EQ(retried.body.value("attachment_id", ""), first.body.value("attachment_id", "?"));
  EXPECT_EQ(retried.body.value("sha256", ""), api::ContentStore::digest("premier"));
  const std::size_t files = stored_files();
  auto other = send("autre contenu");
  EXPECT_EQ(other.status, 422) << other.raw;
  EXPECT_EQ(other.body.value("rule", ""), "attachment.idempotency_key");
  EXPECT_EQ(other.body.value("field", ""), "Idempotency-Key");
  EXPECT_EQ(stored_files(), files);
  EXPECT_EQ(detail(id).value("attachments", json::array()).size(), 1u);
}

TEST_F(TicketAttachments, RefusedOnceFermé) {
  const std::string id = open_ticket();
  ASSERT_EQ(act("alice", "POST", "/v1/tickets/" + id + "/close", R"({"reason":"réglé"})").status,
            201);
  const std::size_t files = stored_files();
  auto refused = upload("alice", id, "tard.pdf", "%PDF-1.7 tardif");
  EXPECT_EQ(refused.status, 409) << refused.raw;
  EXPECT_EQ(refused.body.value("rule", ""), "ticket.attachment.status");
  EXPECT_NE(refused.body.value("detail", "").find("Fermé"), std::string::npos) << refused.raw;
  EXPECT_EQ(stored_files(), files);  // a refused decision stores nothing
}

TEST_F(TicketAttachments, ADraftKeepsItsFilesThroughEditsAndSubmission) {
  auto draft = act("alice", "POST", "/v1/tickets/drafts", kForm);
  ASSERT_EQ(draft.status, 201);
  const std::string id = draft.body.value("ticket_id", "");
  ASSERT_EQ(upload("alice", id, "brouillon.pdf", "%PDF brouillon").status, 201);
  EXPECT_EQ(act("alice", "PUT", "/v1/tickets/" + id + "/draft", kForm).status, 201);
  EXPECT_EQ(act("alice", "POST", "/v1/tickets/" + id + "/submit").status, 201);
  const json d = detail(id);
  ASSERT_EQ(d.value("attachments", json::array()).size(), 1u) << d;
  EXPECT_EQ(d.at("attachments").at(0).value("name", ""), "brouillon.pdf");
}

// Runs last in the suite (gtest keeps the order of definition): it restarts the server.
TEST_F(TicketAttachments, ContentSurvivesARestart) {
  const std::string id = open_ticket();
  const std::string bytes = binary_bytes(2048);
  auto added = upload("alice", id, "garde.bin", bytes, "application/octet-stream");
  ASSERT_EQ(added.status, 201) << added.raw;
  const std::string file_id = added.body.value("attachment_id", "");
  client_.reset();
  EXPECT_EQ(server_->stop(), 0);
  delete server_;
  start();
  client_ = server_->connect();
  auto got = act("alice", "GET", "/v1/tickets/" + id + "/attachments/" + file_id);
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.raw, bytes);
  EXPECT_EQ(got.headers["content-type"], "application/octet-stream");
}

// Content no event names (its upload failed after storing it) and leftover temporary files go
// once old enough; content an event names stays however old, and so does anything recent or
// not the store's. Content sent again is stamped as new, so a sweep keeps it.
TEST_F(TicketAttachments, TheSweepRemovesOnlyOldContentNoEventNames) {
  namespace fs = std::filesystem;
  using namespace std::chrono_literals;
  const auto root = dir_ / "attachments";
  const auto days_ago = fs::file_time_type::clock::now() - 48h;
  auto plant = [&](const std::string& bytes, bool old) {
    const std::string sha = api::ContentStore::digest(bytes);
    fs::create_directories(root / sha.substr(0, 2));
    const fs::path path = root / sha.substr(0, 2) / sha;
    std::ofstream(path, std::ios::binary) << bytes;
    if (old) fs::last_write_time(path, days_ago);
    return path;
  };
  const std::string id = open_ticket();
  const std::string named_bytes = binary_bytes(1500) + "named";
  auto added = upload("alice", id, "named.bin", named_bytes);
  ASSERT_EQ(added.status, 201) << added.raw;
  const fs::path named =
      root / added.body.value("sha256", "").substr(0, 2) / added.body.value("sha256", "");
  fs::last_write_time(named, days_ago);  // only the event keeps it now
  const std::string orphan_bytes = binary_bytes(1200) + "orphan";
  const fs::path orphan = plant(orphan_bytes, true);
  const fs::path recent = plant(binary_bytes(1200) + "recent", false);
  const std::string resent_bytes = binary_bytes(900) + "resent";
  const fs::path resent = plant(resent_bytes, true);
  ASSERT_EQ(upload("alice", id, "resent.bin", resent_bytes).status, 201);
  EXPECT_GT(fs::last_write_time(resent), days_ago + 47h) << "content sent again is stamped";
  const fs::path temporary = named.parent_path() / ".tmp-left-by-a-crash";
  std::ofstream(temporary) << "half";
  fs::last_write_time(temporary, days_ago);
  const fs::path foreign = named.parent_path() / "notes.txt";
  std::ofstream(foreign) << "not the store's";
  fs::last_write_time(foreign, days_ago);

  EXPECT_EQ(act("alice", "POST", "/v1/admin/attachments/sweep").status, 403);
  auto too_soon = act("ops", "POST", "/v1/admin/attachments/sweep?older_than_minutes=1");
  EXPECT_EQ(too_soon.status, 400) << too_soon.raw;
  EXPECT_EQ(too_soon.body.value("field", ""), "older_than_minutes");
  EXPECT_TRUE(fs::exists(orphan)) << "a refused sweep removes nothing";

  auto swept = act("ops", "POST", "/v1/admin/attachments/sweep?older_than_minutes=60");
  ASSERT_EQ(swept.status, 200) << swept.raw;
  EXPECT_EQ(swept.body.value("removed", 0u), 1u) << swept.body;
  EXPECT_EQ(swept.body.value("temporary_removed", 0u), 1u);
  EXPECT_EQ(swept.body.value("bytes_freed", 0u), orphan_bytes.size() + 4);
  EXPECT_GE(swept.body.value("examined", 0u), 4u);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_FALSE(fs::exists(temporary));
  EXPECT_TRUE(fs::exists(recent));
  EXPECT_TRUE(fs::exists(resent));
  EXPECT_TRUE(fs::exists(foreign));
  auto got = act("alice", "GET",
                 "/v1/tickets/" + id + "/attachments/" + added.body.value("attachment_id", ""));
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.raw, named_bytes);
}

}  // namespace
}  // namespace chorus
