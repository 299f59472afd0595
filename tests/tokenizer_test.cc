// Tokenizer tests: golden ids from HF `tokenizers` (expected_<name>.json, made by
// tests/reference/make_tokenizer_golden.py), GPT-2 ids checked against OpenAI's encoder
// algorithm, decode round trips, incremental decoding and load errors.
#include "models/tokenizer.h"

#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/regex.h"
#include "models/utf8.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

const std::string kDataDir = "tests/data/tokenizer";
const std::vector<std::string> kNames = {"gpt2", "llama3", "qwen2", "tiny"};

std::string TokenizerPath(const std::string& name) {
  return kDataDir + "/" + name + "/tokenizer.json";
}

const Tokenizer& Get(const std::string& name) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto& slot = (*cache)[name];
  if (slot == nullptr) {
    auto tok = Tokenizer::FromFile(TokenizerPath(name));
    if (!tok.ok()) {
      ADD_FAILURE() << tok.status();
      std::abort();
    }
    slot = *std::move(tok);
  }
  return *slot;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json();
  return nlohmann::json::parse(in);
}

std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 3) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

// A case's input as raw bytes: "hex" cases stay invalid UTF-8, Encode repairs them.
std::string CaseInput(const nlohmann::json& c) {
  return c.contains("hex") ? FromHex(c["hex"]) : c["text"].get<std::string>();
}

const nlohmann::json& Cases() {
  static const auto* cases = new nlohmann::json(ReadJson(kDataDir + "/cases.json"));
  return *cases;
}

// Verified with the original GPT-2 encoder algorithm (npm gpt-3-encoder's Encoder.js).
TEST(TokenizerGpt2, KnownIds) {
  const Tokenizer& tok = Get("gpt2");
  EXPECT_THAT(tok.Encode("Hello world", false), ElementsAreArray({15496, 995}));
  EXPECT_THAT(tok.Encode("trailing   ", false), ElementsAreArray({9535, 4386, 220, 220, 220}));
  EXPECT_THAT(tok.Encode("line1\r\nline2\r\n\r\nend", false),
              ElementsAreArray({1370, 16, 201, 198, 1370, 17, 201, 198, 201, 198, 437}));
  EXPECT_THAT(tok.Encode("def foo(x):\n    return x**2 + 1  # comment\n", false),
              ElementsAreArray({4299, 22944, 7, 87, 2599, 198, 220, 220, 220, 1441, 2124, 1174, 17,
                                1343, 352, 220, 1303, 2912, 198}));
  EXPECT_THAT(
      tok.Encode("I'm sure it's what they'd've wanted, isn't it? We'll see, you're right, I've.",
                 false),
      ElementsAreArray({40,  1101, 1654, 340,  338, 644, 484, 1549, 1053, 2227, 11,  2125, 470,
                        340, 30,   775,  1183, 766, 11,  345, 821,  826,  11,   314, 1053, 13}));
  EXPECT_THAT(tok.Encode("你好，世界！这是一个测试。", false),
              ElementsAreArray({19526, 254, 25001, 121, 171,   120,   234,  10310, 244,
                                45911, 234, 171,   120, 223,   32573, 247,  42468, 31660,
                                10310, 103, 38184, 233, 46237, 243,   16764}));
  EXPECT_THAT(tok.Encode("👍🏽👋🏿 ok", false),
              ElementsAreArray({41840, 235, 8582, 237, 121, 41840, 233, 8582, 237, 123, 12876}));
  // The added token is matched literally; GPT-2 has no template, so no BOS.
  EXPECT_THAT(tok.Encode("Hello<|endoftext|>world", true), ElementsAreArray({15496, 50256, 6894}));
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_TRUE(tok.IsSpecial(50256));
  EXPECT_FALSE(tok.IsSpecial(995));
  EXPECT_EQ(tok.TokenToId("<|endoftext|>"), 50256);
  EXPECT_EQ(tok.TokenBytes(995), " world");
  EXPECT_EQ(tok.TokenBytes(50257), "");
}

TEST(TokenizerLlama3, TemplateAndSpecials) {
  const Tokenizer& tok = Get("llama3");
  const std::vector<int32_t> plain = tok.Encode("Hello world", false);
  std::vector<int32_t> with_bos = {50257};
  with_bos.insert(with_bos.end(), plain.begin(), plain.end());
  EXPECT_THAT(tok.Encode("Hello world", true), ElementsAreArray(with_bos));
  EXPECT_THAT(tok.Encode("<|begin_of_text|>Hi<|end_of_text|>", false),
              ElementsAreArray({50257, 17250, 50258}));
  // ignore_merges: a whole word in the vocabulary is one token, and digits go in threes.
  EXPECT_THAT(tok.Encode("1234567", false), ElementsAreArray({10163, 29228, 22}));
  EXPECT_EQ(tok.Decode(tok.Encode("Hi", true), /*skip_special_tokens=*/true), "Hi");
  EXPECT_EQ(tok.Decode(tok.Encode("Hi", true), false), "<|begin_of_text|>Hi");
}

TEST(TokenizerQwen2, NfcAndNonSpecialAddedToken) {
  const Tokenizer& tok = Get("qwen2");
  EXPECT_EQ(tok.Encode("e\u0301", false), tok.Encode("\u00e9", false));
  const std::vector<int32_t> ids = tok.Encode("<tool_call>x", false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 50259);
  EXPECT_FALSE(tok.IsSpecial(50259));
  EXPECT_EQ(tok.Decode(ids, /*skip_special_tokens=*/true), "<tool_call>x");
}

// tiny: lstrip/rstrip/single_word/normalized added tokens, a BOS+EOS template, no decoder.
TEST(TokenizerTiny, AddedTokenOptionsAndTemplate) {
  const Tokenizer& tok = Get("tiny");
  const std::vector<int32_t> x = tok.Encode("x", false);
  std::vector<int32_t> want = {1256};
  want.insert(want.end(), x.begin(), x.end());
  want.push_back(1257);
  EXPECT_THAT(tok.Encode("x", true), ElementsAreArray(want));
  want.assign(x.begin(), x.end());
  want.push_back(1258);  // lstrip: the space before <mask> belongs to it
  EXPECT_THAT(tok.Encode("x  <mask>", false), ElementsAreArray(want));
  want = {1259};  // rstrip: the spaces after <pad> belong to it
  want.insert(want.end(), x.begin(), x.end());
  EXPECT_THAT(tok.Encode("<pad>   x", false), ElementsAreArray(want));
  EXPECT_THAT(tok.Encode("a word b", false), ::testing::Contains(1260));
  EXPECT_THAT(tok.Encode("swords", false), ::testing::Not(::testing::Contains(1260)));
  EXPECT_THAT(tok.Encode("cafe\u0301", false), ElementsAreArray({1261}));  // matched after NFC
  // No decoder: HF joins the raw tokens with spaces.
  EXPECT_EQ(tok.Decode(std::vector<int32_t>{1256, 'h' - 33, 1257}, false), "<s> h </s>");
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeMatchesHf) {
  const nlohmann::json expected = ReadJson(kDataDir + "/expected_" + GetParam() + ".json");
  if (expected.is_null()) {
    GTEST_SKIP() << "expected_" << GetParam() << ".json not generated yet: run "
                 << "tests/reference/make_tokenizer_golden.py where `tokenizers` is installed";
  }
  const Tokenizer& tok = Get(GetParam());
  ASSERT_EQ(expected["encode"].size(), Cases()["encode"].size()) << "stale golden file";
  for (size_t i = 0; i < expected["encode"].size(); ++i) {
    const nlohmann::json& want = expected["encode"][i];
    const std::string input = CaseInput(Cases()["encode"][i]);
    ASSERT_EQ(want["name"], Cases()["encode"][i]["name"]);
    EXPECT_THAT(tok.Encode(input, true),
                ElementsAreArray(want["ids_with_special"].get<std::vector<int32_t>>()))
        << want["name"];
    EXPECT_THAT(tok.Encode(input, false),
                ElementsAreArray(want["ids_without_special"].get<std::vector<int32_t>>()))
        << want["name"];
  }
}

TEST_P(GoldenTest, DecodeMatchesHf) {
  const nlohmann::json expected = ReadJson(kDataDir + "/expected_" + GetParam() + ".json");
  if (expected.is_null()) GTEST_SKIP() << "expected_" << GetParam() << ".json not generated yet";
  const Tokenizer& tok = Get(GetParam());
  ASSERT_EQ(expected["decode"].size(), Cases()["decode"].size()) << "stale golden file";
  for (size_t i = 0; i < expected["decode"].size(); ++i) {
    const nlohmann::json& want = expected["decode"][i];
    const auto ids = Cases()["decode"][i]["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.Decode(ids, false), want["text_keep_special"].get<std::string>()) << want["name"];
    EXPECT_EQ(tok.Decode(ids, true), want["text_skip_special"].get<std::string>()) << want["name"];
    EXPECT_EQ(tok.vocab_size(), want["vocab_size"].get<int32_t>());
  }
}

// Byte-level BPE loses nothing: decode(encode(x)) == x after UTF-8 repair (and NFC for qwen2).
TEST_P(GoldenTest, RoundTrip) {
  if (GetParam() == "tiny") GTEST_SKIP() << "no decoder: decode joins raw tokens";
  const Tokenizer& tok = Get(GetParam());
  for (const nlohmann::json& c : Cases()["encode"]) {
    const std::string input = CaseInput(c);
    const std::string decoded = tok.Decode(tok.Encode(input, true), /*skip_special_tokens=*/false);
    if (GetParam() == "qwen2") {
      EXPECT_EQ(decoded, tok.Decode(tok.Encode(decoded, true), false)) << c["name"];
    } else {
      EXPECT_EQ(decoded, (GetParam() == "llama3" ? "<|begin_of_text|>" : "") + utf8::Lossy(input))
          << c["name"];
    }
  }
}

TEST_P(GoldenTest, IncrementalDecodeEqualsDecode) {
  const Tokenizer& tok = Get(GetParam());
  std::mt19937 rng(20240611);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int32_t> ids(1 + rng() % 24);
    for (int32_t& id : ids) {
      switch (rng() % 5) {
        case 0:
          id = static_cast<int32_t>(rng() % 256);
          break;  // single bytes
        case 1:
          id = static_cast<int32_t>(rng() % (tok.vocab_size() + 3)) - 1;
          break;
        case 2:
          id = tok.vocab_size() - 1 - static_cast<int32_t>(rng() % 4);
          break;
        default:
          id = static_cast<int32_t>(rng() % 50000);
          break;
      }
    }
    for (const bool skip : {false, true}) {
      IncrementalDecoder decoder(tok, skip);
      std::string streamed;
      for (const int32_t id : ids) {
        const std::string piece = decoder.Push(id);
        EXPECT_TRUE(utf8::IsValid(piece));
        streamed += piece;
      }
      streamed += decoder.Flush();
      ASSERT_EQ(streamed, tok.Decode(ids, skip)) << "trial " << trial;
    }
  }
}

TEST_P(GoldenTest, LongInputsAreFastAndLossless) {
  const Tokenizer& tok = Get(GetParam());
  if (GetParam() == "tiny") {
    EXPECT_FALSE(tok.Encode(std::string(300000, ' ') + std::string(100000, 'a'), true).empty());
    return;
  }
  const std::string text = std::string(200000, ' ') + "x" + std::string(100000, '\n') +
                           std::string(100000, 'a') + std::string(50000, '7');
  const std::vector<int32_t> ids = tok.Encode(text, false);
  EXPECT_EQ(tok.Decode(ids, false), text);
}

TEST_P(GoldenTest, ConcurrentEncodeIsConsistent) {
  const Tokenizer& tok = Get(GetParam());
  const std::string text = "Threads 🧵 share one tokenizer: 12345  \n\n<|endoftext|> ok";
  const std::vector<int32_t> want = tok.Encode(text, true);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) mismatches[t] += tok.Encode(text, true) != want;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(mismatches, ElementsAreArray({0, 0, 0, 0}));
}

INSTANTIATE_TEST_SUITE_P(All, GoldenTest, ::testing::ValuesIn(kNames));

TEST(Utf8, LossyMatchesPythonReplace) {
  // Expected values from Python's bytes.decode("utf-8", errors="replace").
  const std::string r(utf8::kReplacement);
  EXPECT_EQ(utf8::Lossy(FromHex("f0 80 80")), r + r + r);
  EXPECT_EQ(utf8::Lossy(FromHex("e2 82")), r);
  EXPECT_EQ(utf8::Lossy(FromHex("ed a0 80")), r + r + r);
  EXPECT_EQ(utf8::Lossy(FromHex("c0 af")), r + r);
  EXPECT_EQ(utf8::Lossy(FromHex("f4 90 80 80")), r + r + r + r);
  EXPECT_EQ(utf8::Lossy(FromHex("e2 82 41 e2")), r + "A" + r);
  EXPECT_EQ(utf8::Lossy(FromHex("f0 9f 98 80 f0 9f")), "\U0001F600" + r);
}

TEST(Regex, OnigurumaWhitespaceClass) {
  EXPECT_EQ(TranslateOnigurumaPattern(R"(\s+(?!\S)|[^\s\p{L}])"),
            R"([\t\n\x0B\f\r\x{85}\p{Z}]+(?![^\t\n\x0B\f\r\x{85}\p{Z}])|)"
            R"([^\t\n\x0B\f\r\x{85}\p{Z}\p{L}])");
  EXPECT_EQ(TranslateOnigurumaPattern(R"([]\s]\\s)"), R"([]\t\n\x0B\f\r\x{85}\p{Z}]\\s)");
}

TEST(TokenizerLoad, MissingFileNamesPath) {
  auto tok = Tokenizer::FromFile("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("/nonexistent/dir/tokenizer.json"));
}

TEST(TokenizerLoad, BadJsonNamesOrigin) {
  auto tok = Tokenizer::FromJsonText("{\"model\": ", "my/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("my/tokenizer.json"));
}

TEST(TokenizerLoad, UnsupportedPartsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"model": {"type": "WordPiece", "vocab": {}}})", "model.type"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})", "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": [], "unk_token": "<unk>"}})",
       "model.unk_token"},
      {R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits"}]},
           "model": {"type": "BPE", "vocab": {}, "merges": []}})",
       "pre_tokenizer.pretokenizers[0].type"},
      {R"({"normalizer": {"type": "Lowercase"}, "model": {"type": "BPE", "vocab": {},
           "merges": []}})",
       "normalizer.type"},
      {R"({"decoder": {"type": "WordPiece"}, "model": {"type": "BPE", "vocab": {},
           "merges": []}})",
       "decoder.type"},
      {R"({"added_tokens": [{"content": "x"}], "model": {"type": "BPE", "vocab": {},
           "merges": []}})",
       "added_tokens[0].id"},
      {R"({"vocab": {}})", "model"},
      // Ids index dense tables: one far past any real vocabulary is refused, not allocated.
      {R"({"model": {"type": "BPE", "vocab": {"a": 1073741824}, "merges": []}})",
       "model.vocab[\"a\"]: expected an integer id in [0, 4194303]"},
      {R"({"added_tokens": [{"id": 4194304, "content": "x"}], "model": {"type": "BPE",
           "vocab": {}, "merges": []}})",
       "added_tokens[0].id"},
      // A template may only add ids the vocabulary defines (Encode's ids must be in range).
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "post_processor": {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}],
             "special_tokens": {"<s>": {"id": "<s>", "ids": [5], "tokens": ["<s>"]}}}})",
       "post_processor: a template adds id 5, past the vocabulary"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a"}, "behavior": 5}})",
       "pre_tokenizer.behavior"},
  };
  for (const auto& [json, key] : cases) {
    auto tok = Tokenizer::FromJsonText(json, "t.json");
    ASSERT_FALSE(tok.ok()) << json;
    EXPECT_THAT(std::string(tok.status().message()), HasSubstr("t.json")) << json;
    EXPECT_THAT(std::string(tok.status().message()), HasSubstr(key)) << json;
  }
}

}  // namespace
}  // namespace attnres
