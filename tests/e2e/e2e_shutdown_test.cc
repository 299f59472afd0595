// End-to-end graceful shutdown: SIGTERM while a stream is in flight lets the stream finish
// (health goes NOT_SERVING, the engine drains) and the server exits 0; SIGTERM while idle exits
// 0 promptly; bad model directories and flags exit 1 or 2 with a message. Each test runs its own
// server (a slower model keeps the stream in flight).
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "e2e_test_util.h"
#include "server_fixture.h"

namespace attnres::e2e {
namespace {

TEST(ShutdownE2eTest, SigtermLetsInFlightStreamFinishThenExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(SlowModelDir(), {"--max-model-len", "1024"}));
  auto stub = server.Stub();
  v1::GenerateRequest request = GreedyRequest("drain me", 1000);
  grpc::ClientContext context;
  SetTimeout(&context, std::chrono::seconds(120));
  auto reader = stub->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  int tokens = chunk.token_ids_size();
  server.Signal(SIGTERM);
  v1::FinishReason finish = chunk.finish_reason();
  while (reader->Read(&chunk)) {
    tokens += chunk.token_ids_size();
    if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = chunk.finish_reason();
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(tokens, 1000);
  EXPECT_EQ(finish, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(server.WaitForExit(60), 0) << server.Log();
  EXPECT_NE(server.Log().find("draining"), std::string::npos);
}

TEST(ShutdownE2eTest, SigtermWhileIdleExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(TestModelDir()));
  v1::GenerateResponse response;
  ASSERT_TRUE(Generate(server.Stub().get(), GreedyRequest("hi", 3), &response).ok());
  const auto start = std::chrono::steady_clock::now();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitForExit(30), 0) << server.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ShutdownE2eTest, BadModelDirectoryExitsOneWithAMessage) {
  CommandResult r = RunCommand({EnvPath("ATTNRES_SERVER"), "--model", ::testing::TempDir(),
                                "--port", "0", "--device", "cpu"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
}

// A model directory whose JSON files have the wrong types or out-of-range defaults: the server
// exits 1 with an error naming the file and the key, never an uncaught exception.
TEST(ShutdownE2eTest, BadConfigFilesExitOneNamingFileAndKey) {
  const std::string dir = ::testing::TempDir() + "/attnres-e2e-bad-configs";
  std::filesystem::remove_all(dir);
  std::filesystem::copy(TestModelDir(), dir, std::filesystem::copy_options::recursive);
  const auto write = [&](const char* file, const std::string& text) {
    std::ofstream(std::filesystem::path(dir) / file, std::ios::trunc) << text;
  };
  const std::string good_config = [&] {
    std::ifstream in(std::filesystem::path(dir) / "config.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  struct Case {
    const char* file;
    std::string text;
    const char* expect;
  };
  const Case cases[] = {
      {"generation_config.json", R"({"temperature": -1})",
       "generation_config.json: temperature must be in [0, 100], got -1"},
      {"generation_config.json", R"({"top_k": "fifty"})", R"(key "top_k" must be an integer)"},
      {"config.json", good_config.substr(0, good_config.rfind('}')) + R"(, "hidden_act": 7})",
       R"(config.json: key "hidden_act" must be a string)"},
  };
  for (const Case& c : cases) {
    write("generation_config.json", "{}");
    write("config.json", good_config);
    write(c.file, c.text);
    CommandResult r = RunCommand(
        {EnvPath("ATTNRES_SERVER"), "--model", dir, "--port", "0", "--device", "cpu"}, 20);
    EXPECT_EQ(r.exit_code, 1) << c.expect << "\n" << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
  }
}

TEST(ShutdownE2eTest, BadFlagIsAUsageError) {
  CommandResult r =
      RunCommand({EnvPath("ATTNRES_SERVER"), "--model", TestModelDir(), "--device", "tpu"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace attnres::e2e
