#pragma once
// The real chorusd binary in a child process, on a free loopback port, for end-to-end tests.

#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/auth.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"

namespace chorus::testing {

inline constexpr const char* kTestTokenKey = "test-key-0123456789-0123456789-0123456789";

class ServerProcess {
 public:
  // Starts chorusd with `args` (plus --port 0 and the test token key) and waits until it
  // listens. Throws std::runtime_error when it does not start.
  explicit ServerProcess(std::vector<std::string> args) {
    std::vector<std::string> argv{CHORUS_CHORUSD, "--port", "0", "--token-key", kTestTokenKey};
    argv.insert(argv.end(), args.begin(), args.end());
    child_ = std::make_unique<ChildProcess>(argv);
    while (auto line = child_->read_line(std::chrono::seconds(60))) {
      if (line->starts_with("LISTENING ")) {
        port_ = static_cast<std::uint16_t>(std::stoi(line->substr(10)));
        return;
      }
    }
    throw std::runtime_error("chorusd did not start");
  }

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  std::unique_ptr<HttpClient> connect() const { return std::make_unique<HttpClient>(port_); }
  int kill_now() { return child_->signal_and_wait(SIGKILL); }
  int stop() { return child_->signal_and_wait(SIGTERM); }

  static std::string token(const std::string& user, const std::vector<std::string>& roles = {},
                           std::int64_t ttl_s = 3600) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return "Bearer " + api::TokenVerifier(kTestTokenKey).mint(user, roles, now + ttl_s);
  }

 private:
  std::unique_ptr<ChildProcess> child_;
  std::uint16_t port_ = 0;
};

// Runs chorusd with `args` (plus --port 0 and the test token key) until it exits, for at most
// `seconds` (a server that wrongly starts would otherwise hold the test forever), when a test
// expects it not to start: its exit code (124 when the timeout ended it) and all it said,
// stdout and stderr.
inline ShellRun run_until_exit(const std::vector<std::string>& args, int seconds = 60) {
  std::string command = "timeout " + std::to_string(seconds) + " " + CHORUS_CHORUSD +
                        " --port 0 --token-key " + kTestTokenKey;
  for (const auto& arg : args) command += " '" + arg + "'";
  return run_shell(command + " 2>&1");
}

}  // namespace chorus::testing
