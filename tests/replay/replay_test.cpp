// The auditors' tool against real logs: histories built through the HTTP API of the real
// server, then read back by the real chorus-replay binary (state at several moments, history,
// views at a moment, verify, extracts), and logs damaged on purpose.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <rocksdb/db.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "events/big_endian.h"
#include "events/codec.h"
#include "events/embedded_log.h"
#include "events/kafka_log.h"
#include "tests/support/attachments.h"
#include "tests/support/server_process.h"

namespace chorus {
namespace {

using nlohmann::json;
using testing::ServerProcess;

struct Run {
  int exit_code = -1;
  std::string out;        // stdout, then stderr after a "--- stderr" line when there is any
  std::string json_text;  // stdout alone
};

// Runs the real tool with `args` and captures what it prints.
Run replay(const std::string& args) {
  static int n = 0;
  const std::string err_path =
      (std::filesystem::temp_directory_path() /
       ("chorus-replay-err-" + std::to_string(getpid()) + "-" + std::to_string(++n)))
          .string();
  const std::string command = std::string(CHORUS_REPLAY) + " " + args + " 2>" + err_path;
  Run r;
  auto ran = testing::run_shell(command);
  r.exit_code = ran.exit_code;
  r.json_text = std::move(ran.out);
  std::ifstream err(err_path);
  const std::string err_text((std::istreambuf_iterator<char>(err)), {});
  std::filesystem::remove(err_path);
  r.out = r.json_text + (err_text.empty() ? "" : "--- stderr\n" + err_text);
  return r;
}

const std::string kForm =
    R"({"emitting_structure_id":"structure-1","category":"Technique","sub_category":"Connexion",)"
    R"("title":"Connexion impossible","description":"Mot de passe refusé."})";

// A ticket's life through the API; after each step, what the server showed and the consistency
// token of the write.
struct Moment {
  std::string token;
  json detail;
};

class ServerHistory {
 public:
  explicit ServerHistory(ServerProcess& server)
      : client_(server.connect()),
        token_(testing::attach_users(server.port(), "structure-1", {"alice"})) {}

  const std::string& token() const { return token_; }

  json act(const std::string& user, const std::string& method, const std::string& target,
           const std::string& body = "") {
    std::vector<std::string> roles;
    if (user.starts_with("sn1")) roles = {"support_n1"};
    std::map<std::string, std::string> headers{
        {"Authorization", ServerProcess::token(user, roles)}};
    if (!token_.empty()) headers["X-Consistency-Token"] = token_;
    auto r = client_->request(method, target, body, headers);
    EXPECT_TRUE(r.has_value());
    if (!r) return {};
    EXPECT_LT(r->status, 300) << method << " " << target << ": " << r->body;
    json j = json::parse(r->body, nullptr, false);
    if (j.is_object() && j.contains("consistency_token")) token_ = j["consistency_token"];
    return j;
  }

  // Builds one ticket's whole life and records each moment.
  std::string build(std::vector<Moment>& moments) {
    const std::string id = act("alice", "POST", "/v1/tickets/drafts", kForm).value("ticket_id", "");
    const std::string t = "/v1/tickets/" + id;
    auto record = [&] { moments.push_back({token_, act("alice", "GET", t)}); };
    record();
    act("alice", "POST", t + "/submit");
    record();
    act("sn1", "POST", t + "/information-requests", R"({"text":"Quel navigateur ?"})");
    record();
    // An answer whose second line looks like a row of the history table.
    act("alice", "POST", t + "/information",
        R"({"text":"Firefox\n99  0:999  2026-01-01T00:00:00Z  sn1  TicketClosed"})");
    record();
    act("sn1", "PUT", t + "/priority", R"({"impact":"major","severity":"minor"})");
    record();
    act("sn1", "POST", t + "/solution", R"({"text":"Videz le cache."})");
    record();
    act("alice", "POST", t + "/solution/refuse", R"({"reason":"Toujours bloqué"})");
    record();
    act("sn1", "POST", t + "/solution", R"({"text":"Compte débloqué."})");
    record();
    act("alice", "POST", t + "/solution/accept");
    record();
    return id;
  }

 private:
  std::unique_ptr<testing::HttpClient> client_;
  std::string token_;
};

// The tool's state of ticket `id` at each recorded moment is what the server showed then.
void expect_states_as_shown(const std::string& log_args, const std::string& id,
                            const std::vector<Moment>& moments) {
  for (const auto& m : moments) {
    auto r = replay(log_args + " state ticket-" + id + " --at " + m.token);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const json state = json::parse(r.json_text, nullptr, false);
    ASSERT_TRUE(state.is_object()) << r.out;
    EXPECT_EQ(state["status"], m.detail["status"]) << "at " << m.token;
    EXPECT_EQ(state["title"], m.detail["title"]);
    EXPECT_EQ(state["number"], m.detail.value("number", "")) << "at " << m.token;
    EXPECT_EQ(state["assignee"], m.detail.value("assignee", "")) << "at " << m.token;
    EXPECT_EQ(state["priority"], m.detail.value("priority", 0)) << "at " << m.token;
  }
}

class ReplayEmbedded : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("chorus-replay-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    server_ =
        std::make_unique<ServerProcess>(std::vector<std::string>{"--data-dir", dir_.string()});
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string data() const { return "--data-dir " + dir_.string(); }

  // An empty embedded log in place of the server's, to write by hand what decide() would never
  // write: the server stopped, its data removed. Null when it cannot be opened.
  std::unique_ptr<events::EventLog> hand_built_log() {
    server_->stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
    auto log = events::open_embedded_log({.dir = (dir_ / "log").string()});
    return log ? std::move(*log) : nullptr;
  }

  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ReplayEmbedded, StateAtEachMomentIsWhatTheServerShowedThen) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  ASSERT_EQ(moments.size(), 9u);
  // The server keeps running: the tool opens the log read-only beside it.
  expect_states_as_shown(data(), id, moments);
  // What changed between the draft and the end, and by version.
  auto diff = replay(data() + " state ticket-" + id + " --at v1 --diff-to end");
  ASSERT_EQ(diff.exit_code, 0) << diff.out;
  const json changes = json::parse(diff.json_text, nullptr, false)["changes"];
  EXPECT_EQ(changes["status"]["before"], "Brouillon");
  EXPECT_EQ(changes["status"]["after"], "Fermé");
  EXPECT_EQ(changes["priority"]["after"], 3);
  EXPECT_FALSE(changes.contains("title"));
}

TEST_F(ReplayEmbedded, StructureStateAtEachMomentIsWhatTheServerShowedThen) {
  // alice is structure-1's GP, bob a simple user of it.
  const std::string set_up =
      testing::attach_users(server_->port(), "structure-1", {"alice", "bob"});
  ServerHistory history(*server_);
  const std::string s = "/v1/structures/structure-1";
  std::vector<Moment> moments;
  // Read by the GP of the moment: only managers may list the users.
  auto record = [&](const std::string& gp) {
    json detail = history.act(gp, "GET", s);
    detail["members"] = history.act(gp, "GET", s + "/members")["items"];
    moments.push_back({history.token().empty() ? set_up : history.token(), detail});
  };
  record("alice");
  history.act("alice", "POST", s + "/services",
              R"({"code":"COMPTA","label":"Comptabilité","valid_from":"2020-01-01"})");
  record("alice");
  history.act("alice", "PUT", s + "/data",
              R"({"designation":"Mairie de Lyon","address_line1":"1 place de la Comédie",)"
              R"("postal_code":"69001","city":"Lyon","country":"FR"})");
  record("alice");
  history.act("alice", "POST", s + "/main-manager", R"({"new_gp_user_id":"bob"})");
  record("bob");
  history.act("bob", "DELETE", s + "/members/alice");
  record("bob");

  for (const auto& m : moments) {
    auto r = replay(data() + " state structure-structure-1 --at " + m.token);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const json state = json::parse(r.json_text, nullptr, false);
    ASSERT_TRUE(state.is_object()) << r.out;
    EXPECT_EQ(state.value("gp", ""), m.detail.value("gp_user_id", "")) << "at " << m.token;
    EXPECT_EQ(state.value("status", ""), m.detail.value("status", "")) << "at " << m.token;
    EXPECT_EQ(state.at("data").value("designation", ""),
              m.detail.at("data").value("designation", ""))
        << "at " << m.token;
    std::set<std::string> state_services, shown_services;
    for (const auto& sv : state.at("services")) state_services.insert(sv.value("code", ""));
    for (const auto& sv : m.detail.at("services")) shown_services.insert(sv.value("code", ""));
    EXPECT_EQ(state_services, shown_services) << "at " << m.token;
    std::map<std::string, std::string> state_roles, shown_roles;
    for (const auto& [user, member] : state.at("members").items())
      state_roles[user] = member.value("role", "");
    for (const auto& member : m.detail.at("members"))
      shown_roles[member.value("user_id", "")] = member.value("role", "");
    EXPECT_EQ(state_roles, shown_roles) << "at " << m.token;
  }
  // The moments differ where they should: the GP changed hands, alice left.
  EXPECT_EQ(moments.front().detail.value("gp_user_id", ""), "alice");
  EXPECT_EQ(moments.back().detail.value("gp_user_id", ""), "bob");
  EXPECT_EQ(moments.back().detail.at("members").size(), 1u);
}

TEST_F(ReplayEmbedded, IdentifierReservationAtAMomentIsWhoHeldItThen) {
  // Support creates structure-1 through the API: its SIRET is reserved in the same batch.
  const std::string created = testing::attach_users(server_->port(), "structure-1", {"alice"});
  const std::string siret = testing::siret_for("structure-1");
  const std::string stream = "identifier-SIRET-" + siret;
  auto held = replay(data() + " state " + stream + " --at " + created);
  ASSERT_EQ(held.exit_code, 0) << held.out;
  const json now = json::parse(held.json_text, nullptr, false);
  ASSERT_TRUE(now.is_object()) << held.out;
  EXPECT_EQ(now["structure_id"], "structure-1");
  EXPECT_EQ(now["taken"], true);
  EXPECT_EQ(now["version"], 1);

  // The server refuses the identifier to a second structure: the reservation it folded is the
  // one the tool shows, unchanged by the refusal.
  testing::HttpClient client(server_->port());
  auto refused =
      client.request("POST", "/v1/structures",
                     json{{"structure_id", "structure-2"},
                          {"identifier_type", "SIRET"},
                          {"identifier_value", siret},
                          {"data",
                           {{"designation", "Doublon"},
                            {"address_line1", "2 rue de la Paix"},
                            {"postal_code", "75002"},
                            {"city", "Paris"},
                            {"country", "FR"}}},
                          {"first_gp_user_id", "alice"}}
                         .dump(),
                     {{"Authorization", ServerProcess::token("fixture-support", {"support_n1"})},
                      {"X-Consistency-Token", created}});
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 422) << refused->body;
  EXPECT_EQ(json::parse(refused->body, nullptr, false).value("rule", ""),
            "structure.create.identifier_taken");
  auto still = replay(data() + " state " + stream);
  ASSERT_EQ(still.exit_code, 0) << still.out;
  EXPECT_EQ(json::parse(still.json_text, nullptr, false), now);

  // Before the structure was created, nobody held it.
  auto before = replay(data() + " state " + stream + " --at 0 --diff-to end");
  ASSERT_EQ(before.exit_code, 0) << before.out;
  const json changes = json::parse(before.json_text, nullptr, false)["changes"];
  EXPECT_EQ(changes["taken"], (json{{"before", false}, {"after", true}})) << before.out;
  EXPECT_EQ(changes["structure_id"], (json{{"before", ""}, {"after", "structure-1"}}));
  EXPECT_EQ(changes["version"], (json{{"before", 0}, {"after", 1}}));
}

TEST_F(ReplayEmbedded, HistoryAsTableJsonLinesAndCsv) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  auto jsonl = replay(data() + " history ticket-" + id + " --format jsonl");
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.out;
  std::vector<json> rows;
  std::istringstream lines(jsonl.json_text);
  for (std::string line; std::getline(lines, line);) rows.push_back(json::parse(line));
  ASSERT_GE(rows.size(), 9u);
  EXPECT_EQ(rows[0]["action"], "TicketDraftSaved");
  EXPECT_EQ(rows[0]["actor"], "alice");
  const auto asked = std::find_if(rows.begin(), rows.end(), [](const json& r) {
    return r["action"] == "InformationRequested";
  });
  ASSERT_NE(asked, rows.end());
  EXPECT_EQ((*asked)["actor"], "sn1");
  EXPECT_EQ((*asked)["role"], "support_n1");
  EXPECT_EQ((*asked)["fields"]["text"], "Quel navigateur ?");
  EXPECT_EQ(rows.back()["action"], "SolutionAccepted");

  auto csv = replay(data() + " history ticket-" + id + " --format csv");
  ASSERT_EQ(csv.exit_code, 0);
  EXPECT_TRUE(csv.out.starts_with("\xEF\xBB\xBF\"version\";\"position\""));
  EXPECT_NE(csv.out.find("\"text=Quel navigateur ?; ticket_id="), std::string::npos) << csv.out;

  // One line per event in the table: a line break in a text shows escaped.
  auto whole = replay(data() + " history ticket-" + id);
  ASSERT_EQ(whole.exit_code, 0);
  EXPECT_NE(whole.out.find("Firefox\\n99  0:999"), std::string::npos) << whole.out;
  EXPECT_EQ(static_cast<std::size_t>(std::count(whole.out.begin(), whole.out.end(), '\n')),
            rows.size() + 1)
      << whole.out;

  auto table = replay(data() + " history ticket-" + id + " --at v2");
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("TicketSubmitted"), std::string::npos);
  EXPECT_EQ(table.out.find("InformationRequested"), std::string::npos);

  EXPECT_EQ(replay(data() + " history ticket-nope").exit_code, 3);
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at yesterday").exit_code, 2);
  // An unknown subcommand is named; none at all says which there are.
  auto unknown = replay(data() + " frobnicate");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.out.find("frobnicate"), std::string::npos) << unknown.out;
  auto none = replay(data());
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.out.find("a subcommand is required: history"), std::string::npos) << none.out;
  EXPECT_EQ(replay("--data-dir /nonexistent/chorus history ticket-x").exit_code, 4);
  // Moments this log cannot have: a position of another number of parts than its partitions
  // (one here), an empty word, a version the stream has not reached.
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at 0.1.2").exit_code, 2);
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at ''").exit_code, 2);
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at v99").exit_code, 3);
  // Times are read whole and strictly: no day the month lacks, no second 60, no negative field,
  // nothing before 1970; a position the log has not reached is not found, as a version is not.
  for (const char* time : {"2026-02-31T00:00", "2026-11-28T02:-5", "2026-11-28T10:00:60Z",
                           "' 2026-11-28T10:00Z'", "1969-12-31T23:59:59Z", "2026-1-05T10:00Z"}) {
    EXPECT_EQ(replay(data() + " state ticket-" + id + " --at " + time).exit_code, 2) << time;
  }
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at 2026-11-28T10:00:59.5Z").exit_code, 0);
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at 999999999").exit_code, 3);
  EXPECT_EQ(replay(data() + " export --from 2026-01-02T00:00:00Z --to 2026-01-01T00:00:00Z --out " +
                   (dir_ / "reversed").string())
                .exit_code,
            2);
  EXPECT_EQ(replay("verify-extract ''").exit_code, 2);
  // An export takes a stream or a time range, not both; views go to a new or empty directory.
  const std::string scratch = (dir_ / "scratch").string();
  std::filesystem::create_directories(scratch + "/something");
  EXPECT_EQ(replay(data() + " export --stream ticket-" + id +
                   " --from 2020-01-01T00:00:00Z --out " + scratch + "-x")
                .exit_code,
            2);
  EXPECT_EQ(replay(data() + " views --out " + scratch).exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(scratch + "/views"));
}

TEST_F(ReplayEmbedded, ViewsRebuiltAtTheLivePositionEqualTheLiveViews) {
  std::vector<Moment> moments;
  ServerHistory(*server_).build(moments);
  ServerHistory(*server_).build(moments);
  server_->stop();  // the live views are then at rest, at their own position
  const std::string out = (dir_ / "rebuilt").string();
  auto same = replay(data() + " views --out " + out + " --compare-live");
  EXPECT_EQ(same.exit_code, 0) << same.out;
  EXPECT_NE(same.out.find("SAME"), std::string::npos) << same.out;
  // Through the server's runner (--low-memory), the same.
  auto runner = replay(data() + " views --low-memory --out " + (dir_ / "runner").string() +
                       " --compare-live");
  EXPECT_EQ(runner.exit_code, 0) << runner.out;
  EXPECT_NE(runner.out.find("SAME"), std::string::npos) << runner.out;

  // At an earlier moment the views differ from the live ones, and the report says where.
  const std::string earlier = (dir_ / "earlier").string();
  auto differ =
      replay(data() + " views --out " + earlier + " --compare-live --at " + moments[3].token);
  EXPECT_EQ(differ.exit_code, 1) << differ.out;
  EXPECT_NE(differ.out.find("differs: "), std::string::npos) << differ.out;
}

// The embedded log's RocksDB opened directly, its column families by name, for tests that
// damage it as a disk or a hand could.
struct RawLog {
  explicit RawLog(const std::filesystem::path& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
        {rocksdb::kDefaultColumnFamilyName, {}}, {"log", {}}, {"streams", {}}, {"heads", {}}};
    rocksdb::DB* raw = nullptr;
    const auto s = rocksdb::DB::Open(rocksdb::DBOptions(), dir.string(), cfs, &handles, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db.reset(raw);
  }
  ~RawLog() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  rocksdb::ColumnFamilyHandle* log() const { return handles[1]; }
  rocksdb::ColumnFamilyHandle* streams() const { return handles[2]; }
  rocksdb::ColumnFamilyHandle* heads() const { return handles[3]; }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::unique_ptr<rocksdb::DB> db;
};

// Flips one byte inside the stored body of the event at `offset` of the embedded log.
// Changes one letter of `text` in the body of the event at `offset` (by default the ticket's
// title, which its draft holds).
void flip_byte(const std::filesystem::path& log_dir, std::uint64_t offset,
               std::string_view text = "Connexion impossible") {
  RawLog raw(log_dir);
  ASSERT_TRUE(raw.db);
  const std::string key = events::be64(offset);
  std::string value;
  ASSERT_TRUE(raw.db->Get({}, raw.log(), key, &value).ok());
  const auto at = value.find(text);
  ASSERT_NE(at, std::string::npos);
  value[at] ^= 0x01;
  ASSERT_TRUE(raw.db->Put({}, raw.log(), key, value).ok());
}

// Compared while the server keeps writing, the live views are one moment of them: the rebuild
// stops at the position they held when the tool opened them, and the comparison reads that same
// moment (it once read the position and the rows at two moments, and reported differences that
// were only the writes in between).
TEST_F(ReplayEmbedded, ViewsComparedWhileTheServerWritesAreOneMomentOfThem) {
  std::vector<Moment> moments;
  ServerHistory(*server_).build(moments);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    ServerHistory more(*server_);
    while (!stop) more.act("alice", "POST", "/v1/tickets", kForm);
  });
  for (int round = 0; round < 3; ++round) {
    const std::string out = (dir_ / ("while-" + std::to_string(round))).string();
    auto same = replay(data() + " views --out " + out + " --compare-live");
    EXPECT_EQ(same.exit_code, 0) << same.out;
    EXPECT_NE(same.out.find("SAME"), std::string::npos) << same.out;
  }
  stop = true;
  writer.join();
}

// One command's events share one time on every stream, so that a time-range extract never
// splits one: a cut between a GP's departure and the naming of its replacement once made the
// extract report a structure left with a deactivated GP.
TEST_F(ReplayEmbedded, ATimeRangeExtractNeverSplitsOneCommand) {
  testing::attach_users(server_->port(), "structure-tr", {"tr-gp", "tr-heir"});
  ServerHistory history(*server_);
  history.act("tr-gp", "POST", "/v1/accounts/tr-gp/deactivate",
              R"({"replacements":[{"structure_id":"structure-tr","new_gp_user_id":"tr-heir"}]})");
  server_->stop();
  auto rows = replay(data() + " history account-tr-gp --format jsonl");
  ASSERT_EQ(rows.exit_code, 0) << rows.out;
  std::string at;
  std::istringstream lines(rows.json_text);
  for (std::string line; std::getline(lines, line);) {
    const json row = json::parse(line, nullptr, false);
    if (row.value("action", "") == "AccountDeactivated") at = row.value("occurred_at", "");
  }
  ASSERT_FALSE(at.empty()) << rows.out;
  const std::string out = (dir_ / "until-departure").string();
  auto exported =
      replay(data() + " export --from 2000-01-01T00:00:00Z --to " + at + " --out " + out);
  ASSERT_EQ(exported.exit_code, 0) << exported.out;
  auto checked = replay("verify-extract " + out);
  EXPECT_EQ(checked.exit_code, 0) << checked.out;
  EXPECT_NE(checked.out.find("INTACT"), std::string::npos) << checked.out;

  // From the epoch (a bound given at 0), and as extracts made before 2026-11-28 recorded an
  // open end (the largest time): both read as what the tool writes.
  const std::string from_epoch = (dir_ / "from-epoch").string();
  ASSERT_EQ(replay(data() + " export --from 1970-01-01T00:00:00Z --out " + from_epoch).exit_code,
            0);
  EXPECT_EQ(replay("verify-extract " + from_epoch).exit_code, 0);
  {
    std::ifstream min(from_epoch + "/manifest.json");
    json legacy = json::parse(min);
    legacy["selection"]["to"] = "294247-01-10T04:00:54.775807Z";
    std::ofstream(from_epoch + "/manifest.json", std::ios::trunc) << legacy.dump(2) << "\n";
    auto old = replay("verify-extract " + from_epoch);
    EXPECT_EQ(old.exit_code, 0) << old.out;
  }

  // A range the events lie outside of, the manifest otherwise as the tool writes it: caught.
  std::ifstream in(out + "/manifest.json");
  json manifest = json::parse(in, nullptr, false);
  ASSERT_TRUE(manifest.is_object());
  EXPECT_EQ(manifest["selection"].size(), 2u) << manifest;  // the bounds asked, both
  manifest["selection"] = json{{"from", "2030-01-01T00:00:00.000000Z"}};
  std::ofstream(out + "/manifest.json", std::ios::trunc) << manifest.dump(2) << "\n";
  auto moved = replay("verify-extract " + out);
  EXPECT_EQ(moved.exit_code, 1) << moved.out;
  EXPECT_NE(moved.out.find("outside the time range"), std::string::npos) << moved.out;
}

TEST_F(ReplayEmbedded, VerifyNamesTheEventWithOneFlippedByte) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  auto intact = replay(data() + " verify");
  EXPECT_EQ(intact.exit_code, 0) << intact.out;
  EXPECT_NE(intact.out.find("INTACT"), std::string::npos);
  // Where the draft, version 1 of the ticket, lies (after the attachment setup's events).
  auto first = replay(data() + " history ticket-" + id + " --format jsonl");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const json draft =
      json::parse(first.json_text.substr(0, first.json_text.find('\n')), nullptr, false);
  ASSERT_TRUE(draft.is_object()) << first.out;
  const std::string position = draft.value("position", "");
  ASSERT_TRUE(position.starts_with("0:")) << first.out;
  // The address history prints is a moment: up to and including that event.
  auto at_draft = replay(data() + " state ticket-" + id + " --at " + position);
  ASSERT_EQ(at_draft.exit_code, 0) << at_draft.out;
  EXPECT_EQ(json::parse(at_draft.json_text, nullptr, false).value("version", 0), 1) << at_draft.out;
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at 0:x").exit_code, 2);
  auto elsewhere = replay(data() + " state ticket-" + id + " --at 1:0");
  EXPECT_EQ(elsewhere.exit_code, 2);
  EXPECT_NE(elsewhere.out.find("names partition 1; this log has 1 partitions"), std::string::npos)
      << elsewhere.out;
  EXPECT_EQ(replay(data() + " state ticket-" + id + " --at 0:18446744073709551615").exit_code, 2);
  server_->stop();

  flip_byte(dir_ / "log", std::stoull(position.substr(2)));
  // Views rebuilt from the damaged log leave that event out, and say so (exit 1), naming it.
  auto views = replay(data() + " views --out " + (dir_ / "rebuilt").string());
  EXPECT_EQ(views.exit_code, 1) << views.out;
  EXPECT_NE(views.out.find("set aside: " + position + " ticket-" + id + " v1"), std::string::npos)
      << views.out;
  auto damaged = replay(data() + " verify --json");
  ASSERT_EQ(damaged.exit_code, 1) << damaged.out;
  const json report = json::parse(damaged.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << damaged.out;
  EXPECT_FALSE(report["intact"]);
  ASSERT_EQ(report["broken"].size(), 1u) << report.dump(2);  // one link, not the whole chain
  EXPECT_EQ(report["broken"][0]["stream"], "ticket-" + id);
  EXPECT_EQ(report["broken"][0]["version"], 1);
  EXPECT_EQ(report["broken"][0]["position"], position);
  // Reading the history of that ticket also refuses the damaged log.
  EXPECT_EQ(replay(data() + " history ticket-" + id).exit_code, 1);
}

// A damaged event in the middle of a ticket's life is named once: the status table is not
// judged across it (the ticket's status there is unknown) until an event sets the status, so
// the events after it raise no breach of their own. Here the answer to a request for
// information is damaged; a priority set (no status of its own) follows, then a solution,
// which once read as proposed on a ticket still En attente d'informations.
// An empty --out once resolved against the file system's root and wrote views there.
TEST_F(ReplayEmbedded, AnEmptyOutputDirectoryIsBadUsage) {
  server_->stop();
  for (const char* args :
       {" views --out ''", " export --stream ticket-x --out ''", " verify-extract ''"}) {
    auto r = replay(data() + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.out;
  }
}

// A stray key at the largest offset once made the log's end wrap to 0: the log read as empty
// (verify checked nothing and blamed every stream), and a writer would have written over it.
TEST_F(ReplayEmbedded, ALogWhoseLastKeyIsNoOffsetIsRefusedAsDamaged) {
  std::vector<Moment> moments;
  ServerHistory(*server_).build(moments);
  server_->stop();
  {
    RawLog raw(dir_ / "log");
    ASSERT_TRUE(raw.db);
    std::string value;
    ASSERT_TRUE(raw.db->Get({}, raw.log(), events::be64(3), &value).ok());
    ASSERT_TRUE(raw.db->Put({}, raw.log(), std::string(8, '\xff'), value).ok());
  }
  for (const char* args : {" verify", " views --out /nonexistent-never-written"}) {
    auto r = replay(data() + args);
    EXPECT_EQ(r.exit_code, 4) << args << ": " << r.out;
    EXPECT_NE(r.out.find("ffffffffffffffff"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("damaged"), std::string::npos) << r.out;
  }
  // verify --json still reports on stdout, for a script that reads it.
  auto as_json = replay(data() + " verify --json");
  EXPECT_EQ(as_json.exit_code, 4);
  const json report = json::parse(as_json.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << as_json.out;
  EXPECT_EQ(report["intact"], false);
  EXPECT_EQ(report["exit_code"], 4);
  // The server refuses to start on it rather than writing at offset 0.
  auto started = testing::run_until_exit({"--data-dir", dir_.string()}, 20);
  EXPECT_NE(started.exit_code, 0) << started.out;
  EXPECT_NE(started.out.find("ffffffffffffffff"), std::string::npos) << started.out;
}

TEST_F(ReplayEmbedded, VerifyJudgesNoTransitionAcrossADamagedEvent) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  auto history = replay(data() + " history ticket-" + id + " --format jsonl");
  ASSERT_EQ(history.exit_code, 0) << history.out;
  std::istringstream lines(history.json_text);
  std::string line;
  std::string position;  // of the answer
  std::uint64_t version = 0;
  while (std::getline(lines, line)) {
    const json e = json::parse(line, nullptr, false);
    if (e.is_object() && e.value("action", "") == "InformationProvided") {
      position = e.value("position", "");
      version = e.value("version", std::uint64_t{0});
    }
  }
  ASSERT_TRUE(position.starts_with("0:")) << history.out;
  server_->stop();

  flip_byte(dir_ / "log", std::stoull(position.substr(2)), "Firefox");
  auto damaged = replay(data() + " verify --json");
  ASSERT_EQ(damaged.exit_code, 1) << damaged.out;
  const json report = json::parse(damaged.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << damaged.out;
  ASSERT_EQ(report["broken"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["broken"][0]["version"], version);
  EXPECT_TRUE(report["breaches"].empty()) << report.dump(2);
}

// A byte of the envelope around the hashed body that no field reads (a size, padding): decode
// still reads the event, and verify still names it.
TEST_F(ReplayEmbedded, VerifyNamesAnEventWhoseEnvelopeAloneChanged) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  auto first = replay(data() + " history ticket-" + id + " --format jsonl");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const json draft =
      json::parse(first.json_text.substr(0, first.json_text.find('\n')), nullptr, false);
  const std::string position = draft.value("position", "");
  ASSERT_TRUE(position.starts_with("0:")) << first.out;
  server_->stop();
  {
    RawLog raw(dir_ / "log");
    ASSERT_TRUE(raw.db);
    const std::string key = events::be64(std::stoull(position.substr(2)));
    std::string value;
    ASSERT_TRUE(raw.db->Get({}, raw.log(), key, &value).ok());
    bool changed = false;
    for (std::size_t i = 0; i < value.size() && !changed; ++i) {
      std::string damaged = value;
      damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
      if (!events::decode(damaged)) continue;  // a byte a field reads: the other test's case
      ASSERT_TRUE(raw.db->Put({}, raw.log(), key, damaged).ok());
      changed = true;
    }
    ASSERT_TRUE(changed) << "no byte of the envelope is read by no field";
  }
  auto r = replay(data() + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out;
  ASSERT_EQ(report["broken"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["broken"][0]["stream"], "ticket-" + id);
  EXPECT_EQ(report["broken"][0]["version"], 1);
  EXPECT_EQ(report["broken"][0]["position"], position);
  EXPECT_NE(report["broken"][0]["reason"].get<std::string>().find("envelope"), std::string::npos)
      << report;
}

TEST_F(ReplayEmbedded, VerifyHoldsTheStreamIndexToTheLog) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  server_->stop();
  {
    // The head of the ticket keeps its version but names another hash; and the index gains
    // the head of a stream the log never held.
    RawLog raw(dir_ / "log");
    ASSERT_TRUE(raw.db);
    std::string head;
    ASSERT_TRUE(raw.db->Get({}, raw.heads(), "ticket-" + id, &head).ok());
    ASSERT_EQ(head.size(), 40u);
    head[20] ^= 0x01;
    ASSERT_TRUE(raw.db->Put({}, raw.heads(), "ticket-" + id, head).ok());
    ASSERT_TRUE(raw.db->Put({}, raw.heads(), "ticket-ghost", head).ok());
  }
  auto r = replay(data() + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out;
  EXPECT_TRUE(report["breaches"].empty()) << report.dump(2);
  ASSERT_EQ(report["broken"].size(), 2u) << report.dump(2);  // the log itself is sound
  std::map<std::string, json> by_stream;
  for (const auto& b : report["broken"]) by_stream[b["stream"]] = b;
  const json& changed = by_stream["ticket-" + id];
  EXPECT_EQ(changed["position"], "index");
  EXPECT_NE(changed["reason"].get<std::string>().find("hash"), std::string::npos) << changed;
  const json& ghost = by_stream["ticket-ghost"];
  EXPECT_EQ(ghost["position"], "index");
  EXPECT_NE(ghost["reason"].get<std::string>().find("no event"), std::string::npos) << ghost;
}

// The placements history, state and stream extracts read (the `streams` column family) are
// held to the log too: a lost last entry, a lost middle one, one pointing at another event.
TEST_F(ReplayEmbedded, VerifyHoldsTheStreamIndexPlacementsToTheLog) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  server_->stop();
  std::vector<std::string> damaged;  // the streams damaged, in the order above
  {
    RawLog raw(dir_ / "log");
    ASSERT_TRUE(raw.db);
    auto& db = raw.db;
    // The ticket, another stream of three versions or more, and a third of two or more.
    std::map<std::string, std::uint64_t> heads;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, raw.heads()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      heads[it->key().ToString()] = events::from_be64(it->value().ToStringView());
    }
    damaged.push_back("ticket-" + id);
    for (std::uint64_t least : {3, 2}) {
      for (const auto& [stream, version] : heads) {
        if (version >= least && std::ranges::find(damaged, stream) == damaged.end()) {
          damaged.push_back(stream);
          break;
        }
      }
    }
    ASSERT_EQ(damaged.size(), 3u);
    auto key = [](const std::string& stream, std::uint64_t version) {
      return stream + '\0' + events::be64(version);
    };
    ASSERT_TRUE(db->Delete({}, raw.streams(), key(damaged[0], heads[damaged[0]])).ok());
    ASSERT_TRUE(db->Delete({}, raw.streams(), key(damaged[1], 2)).ok());
    std::string first;
    ASSERT_TRUE(db->Get({}, raw.streams(), key(damaged[2], 1), &first).ok());
    ASSERT_TRUE(db->Put({}, raw.streams(), key(damaged[2], 2), first).ok());
  }
  auto r = replay(data() + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out;
  ASSERT_EQ(report["broken"].size(), 3u) << report.dump(2);  // the log itself is sound
  std::map<std::string, json> by_stream;
  for (const auto& b : report["broken"]) by_stream[b["stream"]] = b;
  auto reason = [&](const std::string& stream) {
    return by_stream[stream].value("reason", std::string());
  };
  EXPECT_NE(reason(damaged[0]).find("places versions up to"), std::string::npos) << report;
  EXPECT_NE(reason(damaged[1]).find("places no version 2"), std::string::npos) << report;
  EXPECT_NE(reason(damaged[2]).find("places version 2 at offset"), std::string::npos) << report;
  EXPECT_EQ(by_stream[damaged[2]]["version"], 2);
  // The ticket's history, shorter by its last event, is refused rather than shown as whole.
  auto history = replay(data() + " history " + damaged[0]);
  EXPECT_EQ(history.exit_code, 1) << history.out;
  EXPECT_NE(history.out.find("its head says"), std::string::npos) << history.out;
}

// An export stopped half-way, here by an offset missing from the log (a broken log invariant
// stops the tool, as it stops the server), leaves no events.jsonl to be taken for an extract.
TEST_F(ReplayEmbedded, AnExportStoppedHalfWayLeavesNoExtract) {
  std::vector<Moment> moments;
  ServerHistory(*server_).build(moments);
  server_->stop();
  {
    RawLog raw(dir_ / "log");
    ASSERT_TRUE(raw.db);
    ASSERT_TRUE(raw.db->Delete({}, raw.log(), events::be64(5)).ok());
  }
  const std::string out = (dir_ / "stopped").string();
  auto stopped = replay(data() + " export --from 2000-01-01T00:00:00Z --out " + out);
  EXPECT_EQ(stopped.exit_code, 134) << stopped.out;  // abort: CHORUS_INVARIANT
  EXPECT_FALSE(std::filesystem::exists(out + "/events.jsonl"));
  EXPECT_FALSE(std::filesystem::exists(out + "/manifest.json"));
  EXPECT_EQ(replay("verify-extract " + out).exit_code, 4);
  // verify names the missing offset.
  auto verified = replay(data() + " verify");
  EXPECT_EQ(verified.exit_code, 4) << verified.out;
  EXPECT_NE(verified.out.find("no event at offset 5"), std::string::npos) << verified.out;
}

TEST_F(ReplayEmbedded, AnIllegalTransitionInAHandBuiltLogIsReported) {
  {
    // A ticket accepted while still Ouvert: decide() would never write it, a forger might.
    auto log = hand_built_log();
    ASSERT_NE(log, nullptr);
    auto meta = [](int n) {
      events::EventMeta m;
      m.event_id[0] = static_cast<std::uint8_t>(n);
      m.occurred_at_us = 1'700'000'000'000'000 + n;
      m.actor = {"alice", "emitter", ""};
      return m;
    };
    events::StreamAppend a{"ticket-forged", 0, {}};
    a.events.push_back({meta(1), events::TicketSubmitted{"forged", "N-1", "alice", "structure-1",
                                                         "Technique", "Connexion", "t", "d"}});
    a.events.push_back({meta(2), events::SolutionAccepted{"forged"}});
    ASSERT_TRUE(log->append(std::span(&a, 1)).has_value());
  }
  auto r = replay(data() + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  EXPECT_TRUE(report["broken"].empty()) << report.dump(2);  // the chain itself is sound
  ASSERT_EQ(report["breaches"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["breaches"][0]["invariant"], 3);
  EXPECT_EQ(report["breaches"][0]["stream"], "ticket-forged");
  EXPECT_EQ(report["breaches"][0]["from"], "0:1");
  // No server views beside this log: the report says the end was not anchored.
  ASSERT_EQ(report["notes"].size(), 1u) << report.dump(2);
  EXPECT_NE(report["notes"][0].get<std::string>().find("not held to the views"), std::string::npos)
      << report;
}

TEST_F(ReplayEmbedded, AStructureWithoutGpInAHandBuiltLogIsReportedWithItsInterval) {
  {
    // What decide() would never write: the GP removed, then a request decided by an outsider,
    // then a new GP named at last.
    auto log = hand_built_log();
    ASSERT_NE(log, nullptr);
    auto event = [](int n, const std::string& actor, events::Payload p) {
      events::NewEvent e;
      e.meta.event_id[0] = static_cast<std::uint8_t>(n);
      e.meta.occurred_at_us = 1'700'000'000'000'000 + n;
      e.meta.actor = {actor, actor == "sn1" ? "support_n1" : "user", ""};
      e.payload = std::move(p);
      return e;
    };
    events::StructureCreated created;
    created.structure_id = "s1";
    created.identifier_type = "SIRET";
    created.identifier_value = "73282932000074";
    created.created_on = "2026-01-05";
    created.data.designation = "Mairie";
    events::StreamAppend a{"structure-s1", 0, {}};
    a.events.push_back(event(1, "sn1", created));
    a.events.push_back(event(2, "sn1", events::MainManagerTransferred{"s1", "", "u1", true}));
    a.events.push_back(event(3, "u1", events::AttachmentRemoved{"s1", "u1"}));
    a.events.push_back(event(4, "u3", events::AttachmentRequested{"s1", "r1", "u3", "", "svp"}));
    a.events.push_back(
        event(5, "u9", events::AttachmentValidated{"s1", "r1", "u3", "user", {}, ""}));
    a.events.push_back(event(6, "sn1", events::MainManagerTransferred{"s1", "", "u2", true}));
    ASSERT_TRUE(log->append(std::span(&a, 1)).has_value());
  }
  auto r = replay(data() + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  EXPECT_TRUE(report["broken"].empty()) << report.dump(2);
  ASSERT_EQ(report["breaches"].size(), 2u) << report.dump(2);
  json no_gp, undue;
  for (const auto& b : report["breaches"]) (b["invariant"] == 1 ? no_gp : undue) = b;
  EXPECT_EQ(no_gp["stream"], "structure-s1");
  EXPECT_EQ(no_gp["from"], "0:2");  // the GP removed
  EXPECT_EQ(no_gp["to"], "0:5");    // a GP named again
  EXPECT_EQ(undue["invariant"], 4);
  EXPECT_EQ(undue["from"], "0:4");
  EXPECT_NE(undue["description"].get<std::string>().find("u9"), std::string::npos);

  // The state between the two moments, and what changed.
  auto state = replay(data() + " state structure-s1 --at v3");
  ASSERT_EQ(state.exit_code, 0) << state.out;
  const json s = json::parse(state.json_text, nullptr, false);
  EXPECT_EQ(s["status"], "active");
  EXPECT_TRUE(s["members"].empty()) << s.dump(2);
  EXPECT_EQ(s["services"][0]["code"], "FACTURES_PUBLIQUES");
}

// What the GP race left before it was fixed: a structure whose GP's account is deactivated.
// A GP who leaves as the rules say (a new GP in the same append) is no breach.
TEST_F(ReplayEmbedded, AGpWithADeactivatedAccountInAHandBuiltLogIsReported) {
  {
    auto log = hand_built_log();
    ASSERT_NE(log, nullptr);
    int n = 0;
    auto event = [&](events::Payload p) {
      events::NewEvent e;
      e.meta.event_id[0] = static_cast<std::uint8_t>(++n);
      e.meta.occurred_at_us = 1'700'000'000'000'000 + n;
      e.meta.actor = {"sn1", "support_n1", ""};
      e.payload = std::move(p);
      return e;
    };
    auto append = [&](std::vector<events::StreamAppend> batch) {
      ASSERT_TRUE(log->append(batch).has_value());
    };
    for (const std::string u : {"u1", "u2", "u3"}) {
      append({{"account-" + u,
               0,
               {event(events::AccountCreated{u, u + "@example.test", "A", "B", "portal", false}),
                event(events::AccountActivated{u})}}});
    }
    for (const std::string id : {"s1", "s2"}) {
      events::StructureCreated created;
      created.structure_id = id;
      created.identifier_type = "SIRET";
      created.identifier_value = "73282932000074";
      created.created_on = "2026-01-05";
      append({{"structure-" + id,
               0,
               {event(created), event(events::MainManagerTransferred{id, "", "u1", true})}}});
    }
    // Positions 0:0 to 0:9 so far. u1 leaves naming u2 for s1 only: s2 keeps a GP whose
    // account is deactivated (0:10), until the end.
    append({{"account-u1", 2, {event(events::AccountDeactivated{"u1", 1'700'000'000'000'000})}},
            {"structure-s1", 2, {event(events::MainManagerTransferred{"s1", "u1", "u2", false})}}});
    // u3 is named GP of s1, then leaves without a replacement: from 0:13 (the deactivation).
    append({{"structure-s1", 3, {event(events::MainManagerTransferred{"s1", "u2", "u3", false})}}});
    append({{"account-u3", 2, {event(events::AccountDeactivated{"u3", 1'700'000'000'000'000})}}});
  }
  auto r = replay(data() + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  EXPECT_TRUE(report["broken"].empty()) << report.dump(2);
  ASSERT_EQ(report["breaches"].size(), 2u) << report.dump(2);
  std::map<std::string, json> by_stream;
  for (const auto& b : report["breaches"]) by_stream[b["stream"]] = b;
  EXPECT_EQ(by_stream["structure-s2"]["invariant"], 1);
  EXPECT_EQ(by_stream["structure-s2"]["from"], "0:10");
  EXPECT_EQ(by_stream["structure-s2"]["to"], "");
  EXPECT_NE(by_stream["structure-s2"]["description"].get<std::string>().find("u1"),
            std::string::npos);
  EXPECT_EQ(by_stream["structure-s1"]["from"], "0:13");
  EXPECT_NE(by_stream["structure-s1"]["description"].get<std::string>().find("u3"),
            std::string::npos);
}

TEST_F(ReplayEmbedded, AnExtractVerifiesAwayFromTheSystemAndCatchesEdits) {
  std::vector<Moment> moments;
  const std::string id = ServerHistory(*server_).build(moments);
  const std::string out = (dir_ / "extract").string();
  auto made = replay(data() + " export --stream ticket-" + id + " --out " + out);
  ASSERT_EQ(made.exit_code, 0) << made.out;
  // An extract never overwrites another.
  EXPECT_EQ(replay(data() + " export --stream ticket-" + id + " --out " + out).exit_code, 2);
  server_->stop();
  server_.reset();
  // Away from the system: the log is gone.
  std::filesystem::remove_all(dir_ / "log");
  auto ok = replay("verify-extract " + out);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  // Against the anchor recorded when it was made (the manifest's SHA-256 export printed): the
  // same; against another, caught; a malformed one is bad usage.
  const std::string marker = "manifest SHA-256 ";
  ASSERT_NE(made.out.find(marker), std::string::npos) << made.out;
  const std::string anchor = made.out.substr(made.out.find(marker) + marker.size(), 64);
  EXPECT_EQ(replay("verify-extract --expect-manifest-sha256 " + anchor + " " + out).exit_code, 0);
  auto other =
      replay("verify-extract --expect-manifest-sha256 " + std::string(64, 'a') + " " + out);
  EXPECT_EQ(other.exit_code, 1) << other.out;
  EXPECT_NE(other.out.find("not the one recorded"), std::string::npos) << other.out;
  EXPECT_EQ(replay("verify-extract --expect-manifest-sha256 xyz " + out).exit_code, 2);
  {
    // A forger's extract, consistent throughout: its last event dropped, and every count, hash
    // and digest of the manifest made to match. Only the anchor tells.
    const std::string forged = (dir_ / "forged").string();
    std::filesystem::copy(out, forged);
    std::ifstream in(out + "/events.jsonl");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ASSERT_GE(lines.size(), 2u);
    lines.pop_back();
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    std::ofstream(forged + "/events.jsonl", std::ios::trunc | std::ios::binary) << text;
    const json last = json::parse(lines.back());
    std::ifstream min(out + "/manifest.json");
    json m = json::parse(min);
    m["events"] = lines.size();
    m["last_hash"] = last["hash"];
    auto& s = m["streams"][last["stream"].get<std::string>()];
    s["events"] = lines.size();
    s["last_version"] = last["version"];
    s["last_hash"] = last["hash"];
    m["events_sha256"] = events::to_hex(events::sha256(text));
    std::ofstream(forged + "/manifest.json", std::ios::trunc) << m.dump(2) << "\n";
    auto consistent = replay("verify-extract " + forged);
    EXPECT_EQ(consistent.exit_code, 0) << consistent.out;  // hashes alone cannot tell
    auto anchored = replay("verify-extract --expect-manifest-sha256 " + anchor + " " + forged);
    EXPECT_EQ(anchored.exit_code, 1) << anchored.out;
    EXPECT_NE(anchored.out.find("not the one recorded"), std::string::npos) << anchored.out;
  }

  // Edit the readable text of one line (keeping the stored bytes): caught, line named.
  std::ifstream in(out + "/events.jsonl");
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  const auto at = text.find("Firefox");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 7, "Chrome!");
  const std::string line =
      "line " + std::to_string(std::count(text.begin(), text.begin() + at, '\n') + 1);
  std::ofstream(out + "/events.jsonl", std::ios::trunc) << text;
  auto edited = replay("verify-extract --json " + out);
  ASSERT_EQ(edited.exit_code, 1) << edited.out;
  const json report = json::parse(edited.json_text, nullptr, false);
  bool named = false;
  for (const auto& b : report["broken"]) {
    if (b["position"] == line && b["stream"] == "ticket-" + id) named = true;
  }
  EXPECT_TRUE(named) << report.dump(2);

  // An extract is untrusted input: whatever its shape, a finding (1) or a file that cannot be
  // read (4), never a crash nor a hang. Each case starts from a fresh copy of the extract.
  std::ofstream(out + "/events.jsonl", std::ios::trunc) << all.str();
  ASSERT_EQ(replay("verify-extract " + out).exit_code, 0);
  const std::string manifest_text = [&] {
    std::ifstream m(out + "/manifest.json");
    return std::string(std::istreambuf_iterator<char>(m), {});
  }();
  const std::string first_line = all.str().substr(0, all.str().find('\n'));
  const std::string rest = all.str().substr(first_line.size());
  struct Hostile {
    const char* what;
    std::function<void(const std::string& copy)> alter;
    int exit_code;
    const char* named = nullptr;  // what the report must say, when the case is one line's
  };
  auto write = [](const std::string& path, const std::string& content) {
    std::filesystem::remove_all(path);
    std::ofstream(path, std::ios::trunc | std::ios::binary) << content;
  };
  auto with_manifest = [&](const std::string& copy, const std::function<void(json&)>& edit) {
    json m = json::parse(manifest_text);
    edit(m);
    write(copy + "/manifest.json", m.dump(2) + "\n");  // as the tool writes it
  };
  // A line edited as a forger would: the file's digest in the manifest recomputed to match,
  // so that only the line's own check can catch it.
  auto with_text = [&](const std::string& copy, const std::string& first) {
    write(copy + "/events.jsonl", first + rest);
    with_manifest(
        copy, [&](json& m) { m["events_sha256"] = events::to_hex(events::sha256(first + rest)); });
  };
  auto with_line = [&](const std::string& copy, const std::function<void(json&)>& edit) {
    json j = json::parse(first_line);
    edit(j);
    with_text(copy, j.dump());
  };
  const std::vector<Hostile> hostile{
      {"a position that is no address",
       [&](const std::string& c) { with_line(c, [](json& j) { j["position"] = "banana"; }); }, 1,
       "no event address"},
      {"a position before the next line's",
       [&](const std::string& c) { with_line(c, [](json& j) { j["position"] = "0:999999"; }); }, 1,
       "not after the line before's"},
      {"a count as a string",
       [&](const std::string& c) { with_manifest(c, [](json& m) { m["events"] = "6"; }); }, 1},
      {"a count with a fraction",
       [&](const std::string& c) { with_manifest(c, [](json& m) { m["events"] = 6.5; }); }, 1},
      {"a format as a number",
       [&](const std::string& c) { with_manifest(c, [](json& m) { m["format"] = 1; }); }, 1},
      {"a stream entry as a number",
       [&](const std::string& c) {
         with_manifest(c, [](json& m) { m["streams"].begin().value() = 5; });
       },
       1},
      {"a stream extract cut of its head",
       [&](const std::string& c) {
         with_manifest(c, [](json& m) { m["streams"].begin().value()["first_version"] = 2; });
       },
       1, "from version 1"},
      {"a member added to the manifest",
       [&](const std::string& c) { with_manifest(c, [](json& m) { m["note"] = "approved"; }); }, 1,
       "a member missing, unknown"},
      {"a stream's event count changed",
       [&](const std::string& c) {
         with_manifest(c, [](json& m) { m["streams"].begin().value()["events"] = 999; });
       },
       1, "the manifest counts 999 events of the stream"},
      {"the selection removed",
       [&](const std::string& c) { with_manifest(c, [](json& m) { m.erase("selection"); }); }, 1,
       "no stream nor time range"},
      {"the selected stream as a number",
       [&](const std::string& c) {
         with_manifest(c, [](json& m) { m["selection"]["stream"] = 5; });
       },
       1, "no stream nor time range"},
      {"a hash in upper case",
       [&](const std::string& c) {
         with_manifest(c, [](json& m) {
           std::string h = m["last_hash"];
           for (auto& ch : h) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
           m["last_hash"] = h;
         });
       },
       1, "a hash not as the tool writes it"},
      {"the events grown sparse to a terabyte (refused unread: the test would time out)",
       [&](const std::string& c) {
         std::filesystem::resize_file(c + "/events.jsonl", std::uintmax_t{1} << 40);
       },
       1, "larger than the manifest's"},
      {"the manifest re-spaced",
       [&](const std::string& c) {
         write(c + "/manifest.json", json::parse(manifest_text).dump());
       },
       1, "not written as the tool writes one"},
      {"a version as a string",
       [&](const std::string& c) { with_line(c, [](json& j) { j["version"] = "1"; }); }, 1,
       "\"version\""},
      {"a member added",
       [&](const std::string& c) { with_line(c, [](json& j) { j["note"] = "approved by CEO"; }); },
       1, "\"note\" is no member"},
      {"the readable time changed",
       [&](const std::string& c) {
         with_line(c, [](json& j) { j["occurred_at"] = "1999-01-01T00:00:00Z"; });
       },
       1, "\"occurred_at\" differs"},
      {"the correlation id changed",
       [&](const std::string& c) { with_line(c, [](json& j) { j["correlation_id"] = "x"; }); }, 1,
       "\"correlation_id\" differs"},
      {"a member twice, the parser keeping the true one",
       [&](const std::string& c) {
         with_text(c, "{\"occurred_at\":\"1999-01-01T00:00:00Z\"," + first_line.substr(1));
       },
       1, "not written as the tool writes one"},
      {"nested 100,000 deep",
       [&](const std::string& c) {
         const std::string deep = std::string(100000, '[') + std::string(100000, ']');
         std::string deep_line = first_line;
         deep_line.replace(deep_line.find("\"fields\":") + 9, 0, deep + ",\"x\":");
         with_text(c, deep_line);
       },
       1, "not an event line"},
      {"manifest.json a directory",
       [&](const std::string& c) {
         std::filesystem::remove(c + "/manifest.json");
         std::filesystem::create_directory(c + "/manifest.json");
       },
       4},
      {"events.jsonl a link to /dev/zero",
       [&](const std::string& c) {
         std::filesystem::remove(c + "/events.jsonl");
         std::filesystem::create_symlink("/dev/zero", c + "/events.jsonl");
       },
       4},
  };
  for (const auto& h : hostile) {
    const std::string copy = (dir_ / "hostile").string();
    std::filesystem::remove_all(copy);
    std::filesystem::copy(out, copy);
    h.alter(copy);
    auto r = replay("verify-extract " + copy);
    EXPECT_EQ(r.exit_code, h.exit_code) << h.what << "\n" << r.out;
    if (h.named != nullptr) {
      EXPECT_NE(r.out.find(h.named), std::string::npos) << h.what << "\n" << r.out;
      EXPECT_EQ(r.out.find("SHA-256"), std::string::npos) << h.what << ": the digest matches\n"
                                                          << r.out;
    }
  }
}

// Signed-out tickets titled "Marque-1" to "Marque-<n>" (a mark to find their bytes by), through
// the real server; the consistency token of the last, empty when one was refused.
std::string marked_tickets(testing::HttpClient& client, int n) {
  std::string token;
  for (int i = 1; i <= n; ++i) {
    auto r = client.request(
        "POST", "/v1/public/tickets",
        R"({"email":"a@example.test","category":"Technique","sub_category":"Connexion",)"
        R"("title":"Marque-)" +
            std::to_string(i) + R"(","description":"d"})");
    if (!r || r->status != 201) return "";
    token = json::parse(r->body)["consistency_token"];
  }
  return token;
}

// Changes one byte of `mark` in every write-ahead log file under `dir` (its subdirectories
// too) that holds it; whether any did.
bool flip_in_write_ahead_logs(const std::filesystem::path& dir, std::string_view mark) {
  bool flipped = false;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
    if (f.path().extension() != ".log") continue;
    std::fstream file(f.path(), std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), {});
    const auto at = bytes.find(mark);
    if (at == std::string::npos) continue;
    file.clear();
    file.seekp(static_cast<std::streamoff>(at));
    file.put(static_cast<char>(mark.front() ^ 0x20));
    flipped = true;
  }
  return flipped;
}

// The write-ahead log of the embedded log holds every acknowledged event not yet in a table
// file. A byte changed in one of its records, before the last, is not silently dropped with all
// that follows (RocksDB's default recovery): opening the log fails, and the tool says so (4).
TEST_F(ReplayEmbedded, AByteChangedInTheWriteAheadLogIsNotSilentlyDropped) {
  // Four tickets through the real server, killed (no flush: the events are in the write-ahead
  // log alone).
  auto client = server_->connect();
  ASSERT_FALSE(marked_tickets(*client, 4).empty());
  client.reset();
  server_->kill_now();
  server_.reset();
  ASSERT_EQ(replay(data() + " verify").exit_code, 0);
  // One byte of the second ticket's title, in the write-ahead log: a record before the last.
  ASSERT_TRUE(flip_in_write_ahead_logs(dir_ / "log", "Marque-2"))
      << "the title is in no write-ahead log file";
  auto r = replay(data() + " verify");
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_NE(r.out.find("orrupt"), std::string::npos) << r.out;
  // The operator's way out (RUNBOOK.md), once: the damaged record and all after it are dropped;
  // the first ticket remains.
  ServerProcess({"--data-dir", dir_.string(), "--drop-damaged-wal-tail"}).stop();
  auto recovered = replay(data() + " verify");
  EXPECT_EQ(recovered.exit_code, 0) << recovered.out;
  EXPECT_NE(recovered.out.find("checked 1 events"), std::string::npos) << recovered.out;
}

// The views' applied position is verify's anchor against a log that lost its tail. A byte
// changed in a record of the views' write-ahead log, before the last, once dropped that record
// and all after it without a word: a shorter anchor, under which a shorter log passed. Now
// the views do not open, and verify reports them damaged (exit 1).
TEST_F(ReplayEmbedded, ADamagedViewsWriteAheadLogIsNoSilentAnchor) {
  auto client = server_->connect();
  ASSERT_FALSE(marked_tickets(*client, 4).empty());
  client.reset();
  server_->kill_now();
  server_.reset();
  ASSERT_TRUE(flip_in_write_ahead_logs(dir_ / "views", "Marque-2"))
      << "the title is in no write-ahead log file of the views";
  auto r = replay(data() + " verify");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("the server's views are damaged"), std::string::npos) << r.out;
  // Compared with them: damage found, as well (1).
  EXPECT_EQ(replay(data() + " views --out " + (dir_ / "x").string() + " --compare-live").exit_code,
            1);
}

// An acknowledged event cut from the end of the write-ahead log reads to RocksDB as a torn last
// record (a crash while writing one nobody was told of) and is dropped without a word. The views
// had applied it, so they are past the log's end: chorusd stops rather than serve a log that
// lost it (and give its offset to the next event); the operator's flag (RUNBOOK.md) accepts the
// loss.
TEST_F(ReplayEmbedded, AnAcknowledgedEventCutFromTheWriteAheadLogStopsTheServer) {
  auto client = server_->connect();
  const std::string token = marked_tickets(*client, 4);
  ASSERT_FALSE(token.empty());
  // The views have applied all four.
  auto seen = client->request(
      "GET", "/v1/me/tickets/counts", "",
      {{"Authorization", ServerProcess::token("alice")}, {"X-Consistency-Token", token}});
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->status, 200) << seen->body;
  client.reset();
  server_->kill_now();
  server_.reset();
  bool cut = false;
  for (const auto& f : std::filesystem::directory_iterator(dir_ / "log")) {
    if (f.path().extension() != ".log") continue;
    std::ifstream in(f.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    if (bytes.find("Marque-4") == std::string::npos) continue;
    std::filesystem::resize_file(f.path(), bytes.size() - 16);
    cut = true;
  }
  ASSERT_TRUE(cut) << "the last ticket is in no write-ahead log file";

  const auto [exit_code, said] = testing::run_until_exit({"--data-dir", dir_.string()}, 30);
  EXPECT_EQ(exit_code, 1) << said;
  EXPECT_NE(said.find("lost acknowledged events"), std::string::npos) << said;
  EXPECT_EQ(said.find("LISTENING"), std::string::npos) << said;
  // The auditor's verify says so too: no hash shows a lost tail, but the views' applied
  // position, kept beside the log, lies past its end.
  auto lost = replay(data() + " verify");
  EXPECT_EQ(lost.exit_code, 1) << lost.out;
  EXPECT_NE(lost.out.find("acknowledged events were lost from the log's end"), std::string::npos)
      << lost.out;

  ServerProcess({"--data-dir", dir_.string(), "--drop-damaged-wal-tail"}).stop();
  auto recovered = replay(data() + " verify");
  EXPECT_EQ(recovered.exit_code, 0) << recovered.out;
  EXPECT_NE(recovered.out.find("checked 3 events"), std::string::npos) << recovered.out;
}

// --- Kafka ---------------------------------------------------------------------------------

const char* kafka_brokers() { return std::getenv("CHORUS_TEST_KAFKA_BROKERS"); }

// Copies every committed record of `from` to `to` (same partition and key), flipping one byte
// of the first record whose value contains `marker`. Returns false when it cannot.
bool copy_topic(const std::string& brokers, const std::string& from, const std::string& to,
                std::uint32_t partitions, const std::string& marker) {
  char err[512];
  auto settings = [&](std::initializer_list<std::pair<const char*, const char*>> kv) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
    for (auto [k, v] : kv) rd_kafka_conf_set(conf, k, v, err, sizeof err);
    return conf;
  };
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER,
                                      settings({{"group.id", "replay-test-copy"},
                                                {"isolation.level", "read_committed"},
                                                {"enable.partition.eof", "true"},
                                                {"enable.auto.commit", "false"}}),
                                      err, sizeof err);
  rd_kafka_t* producer =
      rd_kafka_new(RD_KAFKA_PRODUCER, settings({{"enable.idempotence", "true"}}), err, sizeof err);
  if (consumer == nullptr || producer == nullptr) return false;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  for (std::uint32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, from.c_str(), static_cast<std::int32_t>(p))->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::uint32_t at_end = 0;
  bool flipped = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (at_end < partitions && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string value(static_cast<const char*>(m->payload), m->len);
      if (const auto at = value.find(marker); !flipped && at != std::string::npos) {
        value[at] ^= 0x01;
        flipped = true;
      }
      rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(to.c_str()), RD_KAFKA_V_PARTITION(m->partition),
                        RD_KAFKA_V_KEY(m->key, m->key_len),
                        RD_KAFKA_V_VALUE(value.data(), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    rd_kafka_message_destroy(m);
  }
  const bool flushed = rd_kafka_flush(producer, 30'000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
  return flipped && flushed && at_end == partitions;
}

TEST(ReplayKafka, StatesFromKafkaAndATamperedTopicCopyNamesTheDamagedEvent) {
  if (kafka_brokers() == nullptr) GTEST_SKIP() << "CHORUS_TEST_KAFKA_BROKERS not set";
  const std::string brokers = kafka_brokers();
  const std::string topic = "replay-test-" + std::to_string(getpid());
  const auto dir = std::filesystem::temp_directory_path() / topic;
  const std::string log_args = "--kafka-brokers " + brokers + " --kafka-topic " + topic;
  std::vector<Moment> moments;
  std::string id;
  {
    ServerProcess server({"--data-dir", dir.string(), "--kafka-brokers", brokers, "--kafka-topic",
                          topic, "--kafka-partitions", "3"});
    id = ServerHistory(server).build(moments);
    // Read beside the running writer: the tool never takes ownership, so the server goes on.
    expect_states_as_shown(log_args, id, moments);
    auto verified = replay(log_args + " verify");
    EXPECT_EQ(verified.exit_code, 0) << verified.out;
    EXPECT_EQ(ServerHistory(server).act("alice", "GET", "/v1/tickets/" + id)["status"], "Fermé");
    // With a persistent stream index: built by the first run, read by the second; the same
    // history as without it.
    const std::string indexed = log_args + " --kafka-index-dir " + (dir / "index").string();
    auto plain = replay(log_args + " history ticket-" + id + " --format jsonl");
    auto built = replay(indexed + " history ticket-" + id + " --format jsonl");
    auto reused = replay(indexed + " history ticket-" + id + " --format jsonl");
    EXPECT_EQ(plain.exit_code, 0) << plain.out;
    EXPECT_EQ(built.out, plain.out);
    EXPECT_EQ(reused.out, plain.out);
  }
  std::filesystem::remove_all(dir);

  // A copy of the topic where one stored event has one byte changed.
  const std::string copy = topic + "-copy";
  {
    events::KafkaLogOptions o;
    o.brokers = brokers;
    o.topic = copy;
    o.partitions = 3;
    ASSERT_TRUE(events::open_kafka_log(o).has_value());  // creates the topic
  }
  ASSERT_TRUE(copy_topic(brokers, topic, copy, 3, "Firefox"));
  auto r = replay("--kafka-brokers " + brokers + " --kafka-topic " + copy + " verify --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  const json report = json::parse(r.json_text, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out;
  ASSERT_EQ(report["broken"].size(), 1u) << report.dump(2);
  EXPECT_EQ(report["broken"][0]["stream"], "ticket-" + id);
  EXPECT_EQ(report["broken"][0]["version"], 5);  // draft, submit, taken, asked, answered
  EXPECT_NE(report["broken"][0]["reason"].get<std::string>().find("hash"), std::string::npos)
      << report.dump(2);
}

}  // namespace
}  // namespace chorus
