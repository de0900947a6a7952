#pragma once
// A real child process for tests that cross the process boundary: start a binary, read its
// output line by line, kill it (SIGKILL) or stop it (SIGTERM), reap it.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace chorus::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; its stdout is readable with read_line(), its stderr is
  // inherited. Throws std::runtime_error when it cannot be started. The child is killed when
  // the thread that started it ends (PR_SET_PDEATHSIG): start it from a thread that outlives it.
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();  // kills and reaps the child if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of the child's stdout (without '\n'), or nullopt on end of file or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Sends `signal` and waits for the child to end; returns its wait status.
  int signal_and_wait(int signal);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
};

// What a shell command printed on its stdout, and how it ended.
struct ShellRun {
  int exit_code = -1;  // -1: killed by a signal, or not started
  std::string out;
};
// Runs `command` through /bin/sh (popen) and waits for it to end. Not thread-safe with other
// forks of the test only as popen is.
ShellRun run_shell(const std::string& command);

}  // namespace chorus::testing
