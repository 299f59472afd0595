// End-to-end tests of attnres-cli against the real attnres-server: every command (bench
// included), --json output that parses, streaming output equal to unary output, the
// response-format flags, and error reporting ("error: CODE: message" on stderr, exit 1; usage
// errors exit 2).
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "e2e_test_util.h"
#include "nlohmann/json.hpp"
#include "server_fixture.h"

namespace attnres::e2e {
namespace {

class CliE2eTest : public SharedServerTest {
 protected:
  CommandResult Cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {EnvPath("ATTNRES_CLI"), "--target", server().target()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 60, input);
  }
  static nlohmann::json Json(const CommandResult& r) {
    return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }
};

TEST_F(CliE2eTest, Health) {
  CommandResult r = Cli({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
}

TEST_F(CliE2eTest, InfoHumanAndJson) {
  CommandResult human = Cli({"info"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("block"), std::string::npos) << human.out;
  CommandResult r = Cli({"info", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json info = Json(r);
  ASSERT_FALSE(info.is_discarded()) << r.out;
  const std::string device = info["device"].get<std::string>();
  EXPECT_EQ(device.rfind(E2eDevice() == "cpu" ? "cpu" : "cuda", 0), 0u) << device;
  EXPECT_EQ(info["attn_res"]["mode"], "block");
  EXPECT_EQ(info["attn_res"]["num_mixes"].get<int>(), 2 * info["num_layers"].get<int>() + 1);
}

TEST_F(CliE2eTest, TokenizeThenDetokenize) {
  CommandResult tok = Cli({"tokenize", "--text", "Hello there", "--no-special", "--json"});
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  nlohmann::json ids = Json(tok);
  ASSERT_FALSE(ids.is_discarded()) << tok.out;
  std::string list;
  for (const auto& id : ids["token_ids"]) {
    if (!list.empty()) list += ',';
    list += id.dump();
  }
  ASSERT_FALSE(list.empty());
  CommandResult plain = Cli({"tokenize", "--text", "Hello there", "--no-special"});
  EXPECT_EQ(plain.out, list + "\n");
  CommandResult detok = Cli({"detokenize", "--ids", list});
  EXPECT_EQ(detok.exit_code, 0) << detok.err;
  EXPECT_EQ(detok.out, "Hello there\n");
}

TEST_F(CliE2eTest, GenerateJsonStreamAndPlainAgree) {
  const std::vector<std::string> args = {"generate", "--prompt",      "Once", "--max-tokens",
                                         "16",       "--temperature", "0",    "--ignore-eos"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return Cli(a);
  };
  CommandResult json = with({"--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json j = Json(json);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_EQ(j["token_ids"].size(), 16u);
  EXPECT_EQ(j["finish_reason"], "FINISH_REASON_LENGTH");
  EXPECT_EQ(j["usage"]["completion_tokens"], 16);
  const std::string text = j["text"];

  CommandResult plain = with({});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, text + "\n");
  CommandResult stream = with({"--stream"});
  EXPECT_EQ(stream.exit_code, 0) << stream.err;
  EXPECT_EQ(stream.out, text + "\n");
  CommandResult stream_json = with({"--stream", "--json"});
  ASSERT_EQ(stream_json.exit_code, 0) << stream_json.err;
  nlohmann::json sj = Json(stream_json);
  ASSERT_FALSE(sj.is_discarded()) << stream_json.out;
  EXPECT_EQ(sj["text"], text);
  EXPECT_EQ(sj["token_ids"], j["token_ids"]);
  EXPECT_GE(sj["num_chunks"].get<int>(), 1);
}

TEST_F(CliE2eTest, GenerateOptionsReachTheServer) {
  CommandResult r = Cli({"generate",
                         "--prompt",
                         "Hi",
                         "--max-tokens",
                         "4",
                         "--seed",
                         "9",
                         "--top-k",
                         "5",
                         "--top-p",
                         "0.9",
                         "--min-p",
                         "0.01",
                         "--stop",
                         "zz",
                         "--stop",
                         "qq",
                         "--repetition-penalty",
                         "1.1",
                         "--presence-penalty",
                         "0.1",
                         "--frequency-penalty",
                         "0.1",
                         "--logprobs",
                         "2",
                         "--mix-weights",
                         "--ignore-eos",
                         "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = Json(r);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["logprobs"].size(), j["token_ids"].size());
  EXPECT_EQ(j["mix_weights"].size(), j["token_ids"].size());
  EXPECT_EQ(j["logprobs"][0]["top"].size(), 2u);
}

TEST_F(CliE2eTest, LogitBiasAndMinTokensFlags) {
  CommandResult r = Cli({"generate", "--prompt", "Hi", "--max-tokens", "3", "--temperature", "0",
                         "--ignore-eos", "--logit-bias", "11=100", "--logit-bias", "12=-5",
                         "--min-tokens", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = Json(r);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["token_ids"], nlohmann::json({11, 11, 11}));
  EXPECT_EQ(Cli({"generate", "--prompt", "Hi", "--logit-bias", "11"}).exit_code, 2);
  EXPECT_EQ(Cli({"generate", "--prompt", "Hi", "--logit-bias", "x=1"}).exit_code, 2);
}

// --json-schema FILE and --json-object: the output is JSON of that shape, ended by itself.
TEST_F(CliE2eTest, ResponseFormatFlags) {
  const std::string schema_file = ::testing::TempDir() + "/attnres-cli-small-schema.json";
  std::ofstream(schema_file) << kSmallSchema;
  const std::vector<std::string> args = {
      "generate", "--prompt", "A record:", "--max-tokens", std::to_string(kJsonMaxTokens),
      "--json"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return Cli(a);
  };
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--json-schema", schema_file, "--temperature", "0"},
        std::vector<std::string>{"--json-schema", schema_file, "--temperature", "0", "--stream"},
        std::vector<std::string>{"--json-schema", schema_file, "--temperature", "1", "--seed", "3"},
        // Steered to close its strings (SteerToCloseJson).
        std::vector<std::string>{"--json-object", "--temperature", "0", "--logit-bias",
                                 std::to_string(kQuoteToken) + "=100", "--logit-bias",
                                 std::to_string(kCloseBraceToken) + "=50"}}) {
    CommandResult r = with(extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = Json(r);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    const std::string text = j["text"];
    EXPECT_TRUE(extra[0] == "--json-object" ? IsJsonObject(text) : IsSmallSchemaJson(text));
    EXPECT_EQ(j["finish_reason"], "FINISH_REASON_STOP") << text;
  }
  CommandResult both = with({"--json-object", "--json-schema", schema_file});
  EXPECT_EQ(both.exit_code, 2);
  CommandResult missing = with({"--json-schema", "/nonexistent/schema.json"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err,
            "error: --json-schema: cannot read /nonexistent/schema.json: No such file or "
            "directory\n");
  // The server compiles the schema: its errors name the field.
  const std::string bad_file = ::testing::TempDir() + "/attnres-cli-bad-schema.json";
  std::ofstream(bad_file) << R"({"type": "integer", "not": {}})";
  CommandResult bad = with({"--json-schema", bad_file});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err.rfind("error: INVALID_ARGUMENT: response_format.json_schema.schema_json: ", 0),
            0u)
      << bad.err;
}

// --regex PATTERN and --choice TEXT (repeated): the whole output matches / is one of them.
TEST_F(CliE2eTest, RegexAndChoiceFlags) {
  const std::vector<std::string> args = {"generate", "--prompt",      "Say:", "--max-tokens", "30",
                                         "--json",   "--temperature", "1",    "--seed",       "5"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return Cli(a);
  };
  CommandResult regex = with({"--regex", "[a-c]{3}-(x|y)"});
  ASSERT_EQ(regex.exit_code, 0) << regex.err;
  const std::string text = Json(regex)["text"];
  EXPECT_TRUE(std::regex_match(text, std::regex("[a-c]{3}-(x|y)"))) << text;
  CommandResult choice = with({"--choice", "north", "--choice", "south"});
  ASSERT_EQ(choice.exit_code, 0) << choice.err;
  const std::string picked = Json(choice)["text"];
  EXPECT_TRUE(picked == "north" || picked == "south") << picked;
  EXPECT_EQ(with({"--regex", "a", "--choice", "b"}).exit_code, 2);
  CommandResult bad = with({"--regex", "(?=a)"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err,
            "error: INVALID_ARGUMENT: response_format.regex.pattern: regex at byte 0: lookaround "
            "is not supported\n");
}

TEST_F(CliE2eTest, ServerErrorsAreReportedWithTheCode) {
  CommandResult r = Cli({"generate", "--prompt", "hi", "--top-p", "1.5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: INVALID_ARGUMENT: sampling.top_p must be in (0, 1], got 1.5\n");
  // This server has no chat template (the bundled model ships none).
  CommandResult chat = Cli({"generate", "--message", "user:Hi", "--max-tokens", "2"});
  EXPECT_EQ(chat.exit_code, 1);
  EXPECT_EQ(chat.err.rfind("error: FAILED_PRECONDITION: prompt.chat needs a chat template", 0), 0u)
      << chat.err;
  CommandResult talk = Cli({"chat"}, "Hi\n");
  EXPECT_EQ(talk.exit_code, 1);
  EXPECT_EQ(talk.out, "");
  EXPECT_EQ(talk.err.rfind("error: FAILED_PRECONDITION: prompt.chat needs a chat template", 0), 0u)
      << talk.err;
  CommandResult deadline = Cli(
      {"generate", "--prompt", "hi", "--temperature", "0", "--ignore-eos", "--timeout", "0.02"});
  EXPECT_EQ(deadline.exit_code, 1);
  EXPECT_EQ(deadline.err.rfind("error: DEADLINE_EXCEEDED: ", 0), 0u) << deadline.err;
}

TEST_F(CliE2eTest, BenchReportsLatenciesAndThroughput) {
  CommandResult r = Cli({"bench", "--concurrency", "4", "--requests", "8", "--prompt-tokens", "12",
                         "--prefix-tokens", "8", "--max-tokens", "5", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = Json(r);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["completed"], 8);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_input_tokens"], 96);
  EXPECT_EQ(j["total_output_tokens"], 40);
  EXPECT_EQ(j["ttft"]["count"], 8);
  EXPECT_EQ(j["tpot"]["count"], 8);
  EXPECT_GT(j["output_throughput"].get<double>(), 0);
  EXPECT_LE(j["ttft"]["p50_ms"].get<double>(), j["ttft"]["p99_ms"].get<double>());
  EXPECT_LE(j["e2e_latency"]["p90_ms"].get<double>(), j["e2e_latency"]["p99_ms"].get<double>());
  EXPECT_NE(r.err.find("8/8 requests"), std::string::npos) << r.err;  // the progress bar
  CommandResult human = Cli({"bench", "--requests", "2", "--max-tokens", "2", "--no-progress"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("Mean TTFT (ms):"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("P99 ITL (ms):"), std::string::npos) << human.out;
  EXPECT_TRUE(human.err.empty()) << human.err;
}

TEST_F(CliE2eTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Cli({"generate"}).exit_code, 2);  // no prompt
  EXPECT_EQ(Cli({"generate", "--prompt", "a", "--prompt-ids", "1"}).exit_code, 2);
  EXPECT_EQ(Cli({"generate", "--prompt", "a", "--message", "user:b"}).exit_code, 2);
  EXPECT_EQ(Cli({"generate", "--message", "no role"}).exit_code, 2);
  EXPECT_EQ(Cli({"detokenize", "--ids", "1,x"}).exit_code, 2);
  EXPECT_EQ(Cli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Cli({}).exit_code, 2);
}

TEST_F(CliE2eTest, UnreachableServerIsUnavailable) {
  CommandResult r =
      RunCommand({EnvPath("ATTNRES_CLI"), "--target", "127.0.0.1:1", "--timeout", "5", "health"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: UNAVAILABLE: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace attnres::e2e
