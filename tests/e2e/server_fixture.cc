// End-to-end test support (see server_fixture.h). Child processes get their output redirected
// to files (no pipes to drain), which also keeps the server log for failure reports.
#include "server_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

extern char** environ;

namespace attnres::e2e {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string MakeTempDir(const std::string& prefix) {
  std::string templ = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (mkdtemp(templ.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return "/tmp";
  }
  return templ;
}

// Spawns argv with stdout/stderr redirected to files; returns the pid (-1 on failure).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, const std::string& in_path = "/dev/null") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  if (err_path == out_path) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Polls for the child's exit; returns its exit code, -1 on signal death, -2 on timeout.
int WaitPid(pid_t pid, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (true) {
    int wstatus = 0;
    const pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > end) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::string EnvPath(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    std::cerr << "environment variable " << name << " is not set (run through ctest)\n";
    std::abort();
  }
  return value;
}

CommandResult RunCommand(const std::vector<std::string>& argv, double timeout_s,
                         const std::string& input) {
  static const std::string dir = MakeTempDir("attnres-e2e-cmd-");
  static int counter = 0;
  const std::string base = dir + "/" + std::to_string(counter++);
  std::ofstream(base + ".in", std::ios::binary) << input;
  CommandResult result;
  const pid_t pid = Spawn(argv, base + ".out", base + ".err", base + ".in");
  if (pid < 0) {
    result.err = "cannot spawn " + argv[0];
    return result;
  }
  result.exit_code = WaitPid(pid, timeout_s);
  if (result.exit_code == -2) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    result.exit_code = -1;
  }
  result.out = ReadFile(base + ".out");
  result.err = ReadFile(base + ".err");
  return result;
}

std::string SlowModelDir() {
  static const std::string dir = [] {
    // One per process: ctest runs the suites as parallel processes.
    const std::string out =
        ::testing::TempDir() + "/attnres-e2e-small-block-" + std::to_string(getpid());
    CommandResult r = RunCommand(
        {EnvPath("ATTNRES_MAKE_MODEL"), "--out", out, "--preset", "small-block", "--seed", "3"});
    if (r.exit_code != 0) ADD_FAILURE() << "attnres-make-model failed: " << r.err;
    return out;
  }();
  return dir;
}

std::string TestModelDir() {
  static const std::string dir = [] {
    const char* env = std::getenv("ATTNRES_E2E_MODEL_DIR");
    if (env != nullptr && fs::exists(fs::path(env) / "config.json")) return std::string(env);
    const std::string out = MakeTempDir("attnres-e2e-model-") + "/tiny-block";
    CommandResult r = RunCommand(
        {EnvPath("ATTNRES_MAKE_MODEL"), "--out", out, "--preset", "tiny-block", "--seed", "7"});
    if (r.exit_code != 0) ADD_FAILURE() << "attnres-make-model failed: " << r.err;
    return out;
  }();
  return dir;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string E2eDevice() {
  const char* device = std::getenv("ATTNRES_E2E_DEVICE");
  return device && *device ? device : "cpu";
}

::testing::AssertionResult ServerProcess::Start(const std::string& model_dir,
                                                const std::vector<std::string>& extra_args) {
  log_path_ = MakeTempDir("attnres-e2e-server-") + "/server.log";
  std::vector<std::string> argv = {EnvPath("ATTNRES_SERVER"),
                                   "--model",
                                   model_dir,
                                   "--host",
                                   "127.0.0.1",
                                   "--port",
                                   "0",
                                   "--device",
                                   E2eDevice()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(argv, log_path_, log_path_);
  if (pid_ < 0) return ::testing::AssertionFailure() << "cannot spawn " << argv[0];
  const std::string marker = "listening on ";
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < end) {
    const std::string log = ReadFile(log_path_);
    const size_t at = log.find(marker);
    const size_t eol = at == std::string::npos ? at : log.find('\n', at);
    if (eol != std::string::npos) {
      target_ = log.substr(at + marker.size(), eol - at - marker.size());
      return ::testing::AssertionSuccess();
    }
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return ::testing::AssertionFailure() << "server exited during startup:\n" << log;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ::testing::AssertionFailure() << "no 'listening on' line after 60 s:\n" << Log();
}

void ServerProcess::Signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

int ServerProcess::WaitForExit(double timeout_s) {
  if (pid_ <= 0) return -1;
  const int code = WaitPid(pid_, timeout_s);
  if (code == -2) return -1;  // still running; the destructor kills it
  pid_ = -1;
  return code;
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

std::shared_ptr<grpc::Channel> ServerProcess::Channel() const {
  return grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
}

std::unique_ptr<v1::AttnRes::Stub> ServerProcess::Stub() const {
  return v1::AttnRes::NewStub(Channel());
}

std::unique_ptr<ServerProcess> SharedServerTest::server_;

void SharedServerTest::SetUpTestSuite() {
  server_ = std::make_unique<ServerProcess>();
  // ATTNRES_E2E_SERVER_ARGS adds flags (e.g. "--tensor-parallel 2") to run a suite again
  // against another server configuration.
  std::vector<std::string> args = {"--log-level", "debug"};
  if (const char* extra = std::getenv("ATTNRES_E2E_SERVER_ARGS")) {
    std::istringstream words(extra);
    for (std::string w; words >> w;) args.push_back(w);
  }
  ::testing::AssertionResult started = server_->Start(TestModelDir(), args);
  if (!started) {
    std::cerr << started.message() << std::endl;
    server_.reset();
  }
}

void SharedServerTest::TearDownTestSuite() {
  if (server_ != nullptr && server_->running()) {
    server_->Signal(SIGTERM);
    server_->WaitForExit(30);
  }
  server_.reset();
}

void SharedServerTest::SetUp() {
  ASSERT_NE(server_, nullptr) << "the shared server did not start";
  ASSERT_TRUE(server_->running());
  stub_ = server_->Stub();
}

void SharedServerTest::TearDown() {
  if (HasFailure() && server_ != nullptr) {
    const std::string log = server_->Log();
    std::cerr << "---- server log (last 4000 bytes) ----\n"
              << log.substr(log.size() > 4000 ? log.size() - 4000 : 0) << std::endl;
  }
}

}  // namespace attnres::e2e
