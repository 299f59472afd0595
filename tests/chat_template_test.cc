// ChatTemplate (models/chat_template.h): renders compared with Python jinja2's under
// transformers' settings (tests/data/chat_templates/expected.json, written by
// tests/reference/render_chat_templates.py), the error contract (positions, raise_exception,
// limits), thread safety, and ReadChatTemplateConfig. Run from the source root.
#include "models/chat_template.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::ordered_json;

const std::filesystem::path kData = "tests/data/chat_templates";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json ReadJson(const std::filesystem::path& path) { return json::parse(ReadFile(path)); }

// Compiles and renders; an error as its status.
absl::StatusOr<std::string> Render(std::string_view source, const json& context = json::object()) {
  auto t = ChatTemplate::Compile(source);
  if (!t.ok()) return t.status();
  return t->Render(context);
}

std::string RenderOk(std::string_view source, const json& context = json::object()) {
  auto r = Render(source, context);
  EXPECT_TRUE(r.ok()) << source << ": " << r.status();
  return r.ok() ? *r : "";
}

// One jinja2 render (output, or error with whether raise_exception raised it) against ours.
void ExpectAgrees(const std::string& key, std::string_view source, const json& context,
                  const json& want) {
  SCOPED_TRACE(key);
  auto got = Render(source, context);
  if (want.contains("output")) {
    ASSERT_TRUE(got.ok()) << key << ": " << got.status() << "\n  jinja2: " << want["output"];
    EXPECT_EQ(*got, want["output"].get<std::string>()) << key;
    return;
  }
  ASSERT_FALSE(got.ok()) << key << " rendered " << *got << "\n  jinja2: " << want["error"];
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << key;
  if (want["raise"].get<bool>()) {
    EXPECT_TRUE(IsTemplateRaise(got.status())) << key << ": " << got.status();
    EXPECT_EQ(got.status().message(), want["error"].get<std::string>()) << key;
  } else {
    EXPECT_FALSE(IsTemplateRaise(got.status())) << key;
    EXPECT_THAT(std::string(got.status().message()), StartsWith("chat template line ")) << key;
  }
}

TEST(ChatTemplateJinja2, RealTemplatesMatchJinja2) {
  const json expected = ReadJson(kData / "expected.json");
  const json cases = ReadJson(kData / "cases.json");
  int compared = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kData)) {
    if (entry.path().extension() != ".jinja") continue;
    const std::string source = ReadFile(entry.path());
    for (const auto& c : cases) {
      const std::string key = entry.path().stem().string() + "/" + c["name"].get<std::string>();
      ASSERT_TRUE(expected.contains(key)) << key << " (regenerate expected.json)";
      ExpectAgrees(key, source, c["context"], expected[key]);
      ++compared;
    }
  }
  EXPECT_GE(compared, 11 * 12);
}

TEST(ChatTemplateJinja2, SnippetsMatchJinja2) {
  const json expected = ReadJson(kData / "expected.json");
  int compared = 0;
  for (const auto& s : ReadJson(kData / "snippets.json")) {
    const std::string key = "snippet/" + s["name"].get<std::string>();
    ASSERT_TRUE(expected.contains(key)) << key << " (regenerate expected.json)";
    ExpectAgrees(key, s["template"].get<std::string>(), s["context"], expected[key]);
    ++compared;
  }
  EXPECT_GE(compared, 80);
}

TEST(ChatTemplate, PrintsValuesAsPythonStr) {
  EXPECT_EQ(RenderOk("{{ 1.0 }} {{ 0.1 }} {{ 1e-05 }} {{ none }} {{ true }} {{ ['a', 'b'] }} "
                     "{{ {'k': 1} }} {{ 7 / 2 }} {{ 7 // 2 }}"),
            "1.0 0.1 1e-05 None True ['a', 'b'] {'k': 1} 3.5 3");
  EXPECT_EQ(RenderOk("{{ x }}|{{ y }}", json{{"x", 2.5}, {"y", json::array({1, "z", nullptr})}}),
            "2.5|[1, 'z', None]");
}

TEST(ChatTemplate, ToJsonIsPythonJsonDumps) {
  const json ctx = {{"d", {{"b", 1}, {"a", {1.0, "é"}}}}};
  EXPECT_EQ(RenderOk("{{ d|tojson }}", ctx), R"({"b": 1, "a": [1.0, "é"]})");
  EXPECT_EQ(RenderOk("{{ d|tojson(sort_keys=true) }}", ctx), R"({"a": [1.0, "é"], "b": 1})");
  EXPECT_EQ(RenderOk("{{ d|tojson(indent=2) }}", ctx),
            "{\n  \"b\": 1,\n  \"a\": [\n    1.0,\n    \"é\"\n  ]\n}");
  EXPECT_EQ(RenderOk("{{ d|tojson(separators=(',', ':')) }}", ctx), R"({"b":1,"a":[1.0,"é"]})");
}

TEST(ChatTemplate, WhitespaceControl) {
  EXPECT_EQ(RenderOk("{% if true %}\nA\n{% endif %}\nB"), "A\nB");
  EXPECT_EQ(RenderOk("  {% if true %}x{% endif %}"), "x");
  EXPECT_EQ(RenderOk("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(RenderOk("a \n {{- 'x' -}} \n b"), "axb");
  EXPECT_EQ(RenderOk("  {{ 'x' }}\n"), "  x");  // no lstrip for {{ }}; one trailing \n dropped
}

TEST(ChatTemplate, ScopingAndNamespace) {
  EXPECT_EQ(RenderOk("{% set x = 1 %}{% for i in [1, 2] %}{% set x = 5 %}{% endfor %}{{ x }}"),
            "1");
  EXPECT_EQ(RenderOk("{% set ns = namespace(n=0) %}{% for i in range(4) %}"
                     "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
            "6");
}

TEST(ChatTemplate, CompileErrorsNameLineAndColumn) {
  auto t = ChatTemplate::Compile("line1\n{{ x y }}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), StartsWith("chat template line 2, column 6: "));
  for (const char* bad : {"{% for %}", "{% if x %}", "{{ x ", "{% endfor %}", "{{ x|nope }}",
                          "{% include 'x' %}", "{% for x in y recursive %}{% endfor %}",
                          "{% break %}", "{{ 'unterminated }}", "{# open comment"}) {
    auto e = ChatTemplate::Compile(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_THAT(std::string(e.status().message()), StartsWith("chat template line 1, column "))
        << bad;
  }
  EXPECT_THAT(std::string(ChatTemplate::Compile("{% include 'x' %}").status().message()),
              HasSubstr("unsupported tag 'include'"));
}

TEST(ChatTemplate, RuntimeErrorsNameLine) {
  auto r = Render("line1\nline2\n{{ 1 + 'a' }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "chat template line 3: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_FALSE(IsTemplateRaise(r.status()));
  auto u = Render("{{ messages[0].content }}", json{{"messages", json::array()}});
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(), "chat template line 1: list object has no element 0");
  EXPECT_EQ(Render("\n{{ foo.bar }}").status().message(),
            "chat template line 2: 'foo' is undefined");
  EXPECT_EQ(Render("{{ none|tojson }}{{ x|tojson }}").status().message(),
            "chat template line 1: Object of type Undefined is not JSON serializable");
}

TEST(ChatTemplate, RaiseExceptionCarriesTheTemplatesMessage) {
  auto r = Render(
      "a\n{% if messages|length > 1 %}{{ raise_exception('Only ' ~ 1 ~ ' message!') }}"
      "{% endif %}",
      json{{"messages", {1, 2}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Only 1 message!");
  EXPECT_TRUE(IsTemplateRaise(r.status()));
  EXPECT_FALSE(IsTemplateRaise(absl::OkStatus()));
  EXPECT_FALSE(IsTemplateRaise(absl::InvalidArgumentError("Only 1 message!")));
}

// Each limit ends the render with InvalidArgument naming it (the step limit at a small bound, so
// that the test stays short under the sanitizers too).
void ExpectLimit(std::string_view source, std::string_view limit,
                 const ChatTemplateLimits& limits = ChatTemplateLimits{}) {
  auto t = ChatTemplate::Compile(source);
  ASSERT_TRUE(t.ok()) << t.status();
  auto r = t->Render(json::object(), limits);
  ASSERT_FALSE(r.ok()) << source;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(limit)) << source;
}

TEST(ChatTemplate, LimitsEndRunawayTemplates) {
  ExpectLimit("{% for i in range(100000000) %}x{% endfor %}", "MAX_RANGE");
  ExpectLimit("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
              "evaluation step limit (100000) exceeded", ChatTemplateLimits{.max_steps = 100000});
  ExpectLimit("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macro recursion depth");
  ExpectLimit("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output size limit");
  ExpectLimit("{{ 'x' * 100000000000 }}", "size limit");
  ExpectLimit(
      "{% set ns = namespace(s='xx') %}{% for i in range(100) %}"
      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "size limit");
  ExpectLimit(
      "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}",
      "nested too deeply");
  const std::string deep = std::string(1000, '(') + "1" + std::string(1000, ')');
  EXPECT_THAT(std::string(ChatTemplate::Compile("{{ " + deep + " }}").status().message()),
              HasSubstr("nested too deeply"));
  std::string chain = "{{ x";
  for (int i = 0; i < 5000; ++i) chain += ".a";
  EXPECT_THAT(std::string(ChatTemplate::Compile(chain + " }}").status().message()),
              HasSubstr("nested too deeply"));
  ChatTemplateLimits small;
  small.max_output_bytes = 10;
  auto t = ChatTemplate::Compile("{{ 'x' * 11 }}");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->Render(json::object(), small).ok());
  EXPECT_TRUE(t->Render(json::object()).ok());
}

// transformers' continue_final_message cut, on ChatML written out without the generation prompt
// (expected values as Python's apply_chat_template computes them).
TEST(CutAfterFinalMessage, KeepsTheTextUpToTheFinalContent) {
  const std::string head = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  auto cut = [](const std::string& rendered, std::string_view final_message) {
    absl::StatusOr<std::string> r = CutAfterFinalMessage(rendered, final_message);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or("");
  };
  EXPECT_EQ(cut(head + "Once upon<|im_end|>\n", "Once upon"), head + "Once upon");
  // Trailing whitespace the template kept is kept; what it trimmed stays trimmed.
  EXPECT_EQ(cut(head + "Once upon \n<|im_end|>\n", "Once upon \n"), head + "Once upon \n");
  EXPECT_EQ(cut(head + "Once upon<|im_end|>\n", "Once upon  "), head + "Once upon");
  // With leading whitespace transformers' comparison (against the unstripped content) never
  // holds, so the trailing whitespace goes even where the template kept it.
  EXPECT_EQ(cut(head + " Once upon <|im_end|>\n", " Once upon "), head + " Once upon");
  // The last occurrence counts: past an earlier message with the same text, and (as in
  // transformers) even inside the template's own text after the message.
  EXPECT_EQ(cut(head + "Hi<|im_end|>\n", "Hi"), head + "Hi");
  EXPECT_EQ(cut(head + "i<|im_end|>\n", "i"), head + "i<|i");
  // Empty content is found at the very end (Python's rindex("")): nothing is cut.
  EXPECT_EQ(cut(head + "<|im_end|>\n", ""), head + "<|im_end|>\n");
  // Python's whitespace is Unicode's (U+3000 here); offsets are bytes of UTF-8.
  EXPECT_EQ(cut(head + "Grüße<|im_end|>\n", "Grüße\u3000"), head + "Grüße");
}

TEST(CutAfterFinalMessage, ContentTheTemplateChangedIsAnError) {
  absl::StatusOr<std::string> r =
      CutAfterFinalMessage("<|im_start|>assistant\nONCE UPON<|im_end|>\n", "Once upon");
  ASSERT_FALSE(r.ok()) << *r;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("the final message does not appear in the rendered conversation"));
}

TEST(ChatTemplate, StrftimeNowIsTheLocalTime) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char year[16];
  std::strftime(year, sizeof year, "%Y", &tm);
  EXPECT_EQ(RenderOk("{{ strftime_now('%Y') }}"), year);
}

TEST(ChatTemplate, ContextMustBeAnObject) {
  auto t = ChatTemplate::Compile("x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Render(json::array()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, CopiesShareOneCompiledFormAcrossThreads) {
  auto t = ChatTemplate::Compile(ReadFile(kData / "qwen2.5-7b-instruct.jinja"));
  ASSERT_TRUE(t.ok()) << t.status();
  const json cases = ReadJson(kData / "cases.json");
  const json& context = cases[6]["context"];
  const std::string want = *t->Render(context);
  std::vector<std::thread> threads;
  std::vector<std::string> got(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([copy = *t, &context, &got, i] {
      for (int k = 0; k < 20; ++k) got[i] = *copy.Render(context);
    });
  }
  for (auto& th : threads) th.join();
  for (const std::string& g : got) EXPECT_EQ(g, want);
}

class ReadChatTemplateConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("chat_template_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(dir_ / "tokenizer_config.json") << text; }
  std::string File() const { return (dir_ / "tokenizer_config.json").string(); }
  std::filesystem::path dir_;
};

TEST_F(ReadChatTemplateConfigTest, StringTemplateAndTokens) {
  Write(R"({"chat_template": "{{ bos_token }}x", "bos_token": "<s>", "eos_token": "</s>"})");
  auto c = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->source, "{{ bos_token }}x");
  EXPECT_EQ((*c)->bos_token, "<s>");
  EXPECT_EQ((*c)->eos_token, "</s>");
}

TEST_F(ReadChatTemplateConfigTest, ListFormPicksDefaultAndAddedTokens) {
  Write(R"({"chat_template": [{"name": "tool_use", "template": "T"},
                              {"name": "default", "template": "D"}],
            "bos_token": {"__type": "AddedToken", "content": "<|begin|>", "lstrip": false},
            "eos_token": null})");
  auto c = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->source, "D");
  EXPECT_EQ((*c)->bos_token, "<|begin|>");
  EXPECT_EQ((*c)->eos_token, "");
}

// Newer transformers save the template as chat_template.jinja beside tokenizer_config.json; it
// wins over the key, and the special tokens still come from tokenizer_config.json.
TEST_F(ReadChatTemplateConfigTest, ChatTemplateJinjaFileWins) {
  std::ofstream(dir_ / "chat_template.jinja") << "{{ eos_token }}\n";
  auto alone = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_TRUE(alone->has_value());
  EXPECT_EQ((*alone)->source, "{{ eos_token }}\n");
  EXPECT_EQ((*alone)->origin, (dir_ / "chat_template.jinja").string());
  Write(R"({"chat_template": "old", "eos_token": "</s>"})");
  auto both = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ((*both)->source, "{{ eos_token }}\n");
  EXPECT_EQ((*both)->eos_token, "</s>");
  std::filesystem::remove(dir_ / "chat_template.jinja");
  auto key = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ((*key)->source, "old");
  EXPECT_EQ((*key)->origin, File() + ": chat_template");
}

TEST_F(ReadChatTemplateConfigTest, AbsentFileOrKeyIsNullopt) {
  auto none = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  Write(R"({"bos_token": "<s>"})");
  auto no_key = ReadChatTemplateConfig(dir_);
  ASSERT_TRUE(no_key.ok());
  EXPECT_FALSE(no_key->has_value());
}

TEST_F(ReadChatTemplateConfigTest, BadTypesNameTheFileAndKey) {
  const struct {
    const char* text;
    const char* what;
  } bad[] = {
      {R"({"chat_template": 5})",
       "key \"chat_template\" must be a string or a list of {name, template}"},
      {R"({"chat_template": [{"name": "default"}]})",
       "key \"chat_template\" must be a string or a list of {name, template}"},
      {R"({"chat_template": [{"name": "x", "template": "y"}]})",
       "key \"chat_template\" has no entry named \"default\""},
      {R"({"chat_template": "x", "bos_token": 3})", "key \"bos_token\" must be"},
      {R"({"chat_template": "x", "eos_token": {"id": 2}})", "key \"eos_token\" must be"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"chat_template": )", "not a JSON object"},
  };
  for (const auto& b : bad) {
    Write(b.text);
    auto c = ReadChatTemplateConfig(dir_);
    ASSERT_FALSE(c.ok()) << b.text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), StartsWith(File() + ": ")) << b.text;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(b.what)) << b.text;
  }
}

}  // namespace
}  // namespace attnres
