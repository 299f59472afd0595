// End-to-end test support: runs the real attnres-server binary on a free loopback port
// (--port 0, parsing its "listening on HOST:PORT" line), runs attnres-cli and
// attnres-make-model as child processes, and gives tests a gRPC stub. Binary paths come from
// the environment (ATTNRES_SERVER, ATTNRES_CLI, ATTNRES_MAKE_MODEL; set by CMake).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "attnres/v1/attnres.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace attnres::e2e {

// Required environment variable; fails the test process when unset.
std::string EnvPath(const char* name);

struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;     // stdout
  std::string err;     // stderr
};
// Runs argv[0] with argv and `input` as its stdin, waiting at most timeout_s.
CommandResult RunCommand(const std::vector<std::string>& argv, double timeout_s = 60,
                         const std::string& input = "");

// The model directory for the tests: ATTNRES_E2E_MODEL_DIR when it holds a model (created by
// the ctest fixture), else a fresh tiny-block model made with attnres-make-model.
std::string TestModelDir();

// A model slow enough on the CPU that a 1000-token stream stays in flight for a second or more
// (the small-block preset, made once per test process).
std::string SlowModelDir();

// The --device the servers run on: ATTNRES_E2E_DEVICE (e.g. "cuda" on the GPU machine), else cpu.
std::string E2eDevice();

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();  // SIGKILLs a server that is still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts attnres-server --model dir --port 0 plus `extra_args`, and waits for "listening on".
  ::testing::AssertionResult Start(const std::string& model_dir,
                                   const std::vector<std::string>& extra_args = {});
  std::string target() const { return target_; }
  pid_t pid() const { return pid_; }
  void Signal(int sig) const;
  // Waits for the process to exit; returns its exit code (-1 on signal death or timeout).
  int WaitForExit(double timeout_s);
  bool running() const { return pid_ > 0; }
  std::string Log() const;  // everything it wrote (stdout + stderr)

  std::shared_ptr<grpc::Channel> Channel() const;
  std::unique_ptr<v1::AttnRes::Stub> Stub() const;

 private:
  pid_t pid_ = -1;
  std::string target_;
  std::string log_path_;
};

// One server shared by all tests of a suite (started in SetUpTestSuite).
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  static ServerProcess& server() { return *server_; }
  void SetUp() override;     // fails fast when the shared server did not start
  void TearDown() override;  // prints the server log on failure

  static std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::AttnRes::Stub> stub_;
};

}  // namespace attnres::e2e
