// Pre-tokenizer steps of tokenizer.json and their application, piece by piece, in order.
#include "models/pretokenizer.h"

#include <utility>

#include "models/byte_level.h"
#include "models/tokenizer_json_util.h"

namespace attnres {
namespace {

// The regex of HF's ByteLevel pre-tokenizer (GPT-2's encoder.py).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Isolated split: matches and the gaps between them each become a piece.
void SplitIsolated(const Regex& regex, std::string_view text, std::vector<std::string>* out) {
  size_t last = 0;
  regex.ForEachMatch(text, [&](size_t begin, size_t end) {
    if (begin > last) out->emplace_back(text.substr(last, begin - last));
    out->emplace_back(text.substr(begin, end - begin));
    last = end;
  });
  if (last < text.size()) out->emplace_back(text.substr(last));
}

}  // namespace

absl::StatusOr<PreTokenizer> PreTokenizer::FromJson(const nlohmann::json& j,
                                                    std::string_view origin) {
  PreTokenizer pre;
  if (!j.is_null()) {
    if (absl::Status s = AddSteps(j, origin, "pre_tokenizer", &pre.steps_); !s.ok()) return s;
  }
  return pre;
}

absl::Status PreTokenizer::AddSteps(const nlohmann::json& j, std::string_view origin,
                                    const std::string& key, std::vector<Step>* steps) {
  using json_util::LoadError;
  std::string type;
  if (absl::Status s = json_util::GetString(j, "type", origin, key, &type); !s.ok()) return s;
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return LoadError(origin, key + ".pretokenizers", "missing or not an array");
    }
    for (size_t i = 0; i < j["pretokenizers"].size(); ++i) {
      const std::string item_key = json_util::Cat(key, ".pretokenizers[", i, "]");
      if (absl::Status s = AddSteps(j["pretokenizers"][i], origin, item_key, steps); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  Step step;
  if (type == "ByteLevel") {
    step.kind = Step::Kind::kByteLevel;
    bool use_regex = true;
    if (absl::Status s =
            json_util::GetBool(j, "add_prefix_space", true, origin, key, &step.add_prefix_space);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = json_util::GetBool(j, "use_regex", true, origin, key, &use_regex);
        !s.ok()) {
      return s;
    }
    if (use_regex) {
      auto regex = Regex::Compile(kGpt2Pattern, /*literal=*/false);
      if (!regex.ok()) return regex.status();
      step.regex = std::move(*regex);
    }
  } else if (type == "Split") {
    step.kind = Step::Kind::kSplit;
    bool invert = false;
    if (absl::Status s = json_util::GetBool(j, "invert", false, origin, key, &invert); !s.ok()) {
      return s;
    }
    if (invert) return LoadError(origin, key + ".invert", "only false is supported");
    std::string behavior;
    if (absl::Status s = json_util::GetString(j, "behavior", origin, key, &behavior); !s.ok()) {
      return s;
    }
    if (behavior != "Isolated") {
      return LoadError(origin, key + ".behavior", "only \"Isolated\" is supported");
    }
    const nlohmann::json& pattern = j.contains("pattern") ? j["pattern"] : nlohmann::json();
    const bool literal = pattern.is_object() && pattern.contains("String");
    const char* field = literal ? "String" : "Regex";
    if (!pattern.is_object() || !pattern.contains(field) || !pattern[field].is_string()) {
      return LoadError(origin, key + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    auto regex = Regex::Compile(pattern[field].get<std::string>(), literal);
    if (!regex.ok()) {
      return LoadError(origin, json_util::Cat(key, ".pattern.", field),
                       json_util::Piece(regex.status().message()));
    }
    step.regex = std::move(*regex);
  } else {
    return LoadError(origin, key + ".type",
                     json_util::Cat("unsupported pre-tokenizer \"", type, "\""));
  }
  steps->push_back(std::move(step));
  return absl::OkStatus();
}

void PreTokenizer::Apply(const Step& step, std::string_view piece, std::vector<std::string>* out) {
  if (step.kind == Step::Kind::kSplit) {
    SplitIsolated(*step.regex, piece, out);
    return;
  }
  // ByteLevel: prefix space (HF prepends only to a non-empty piece), regex, then byte mapping.
  std::string prefixed;
  if (step.add_prefix_space && !piece.empty() && piece.front() != ' ') {
    prefixed = json_util::Cat(" ", piece);
    piece = prefixed;
  }
  std::vector<std::string> parts;
  if (step.regex != nullptr) {
    SplitIsolated(*step.regex, piece, &parts);
  } else if (!piece.empty()) {
    parts.emplace_back(piece);
  }
  for (const std::string& part : parts) out->push_back(byte_level::Encode(part));
}

void PreTokenizer::Split(std::string_view text, std::vector<std::string>* words) const {
  std::vector<std::string> pieces;
  if (!text.empty()) pieces.emplace_back(text);
  for (const Step& step : steps_) {
    std::vector<std::string> next;
    for (const std::string& piece : pieces) Apply(step, piece, &next);
    pieces = std::move(next);
  }
  for (std::string& piece : pieces) words->push_back(std::move(piece));
}

}  // namespace attnres
