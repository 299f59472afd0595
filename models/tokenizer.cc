// Tokenizer: loads tokenizer.json into its parts (added tokens, normalizer, pre-tokenizer, BPE,
// post-processor, decoder) and runs HF's encode/decode pipeline over them; IncrementalDecoder.
// The parts own their own parsing; this file owns the order in which they run.
#include "models/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "models/added_vocabulary.h"
#include "models/bpe_model.h"
#include "models/byte_level.h"
#include "models/normalizer.h"
#include "models/post_processor.h"
#include "models/pretokenizer.h"
#include "models/tokenizer_json_util.h"
#include "models/utf8.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(AddedVocabulary added, Normalizer normalizer, PreTokenizer pre_tokenizer,
               BpeModel model, PostProcessor post_processor, bool byte_level_decoder)
      : added_(std::move(added)),
        normalizer_(std::move(normalizer)),
        pre_tokenizer_(std::move(pre_tokenizer)),
        model_(std::move(model)),
        post_processor_(std::move(post_processor)),
        byte_level_decoder_(byte_level_decoder) {}

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const override {
    std::string repaired;
    if (!utf8::IsValid(text)) {
      repaired = utf8::Lossy(text);
      text = repaired;
    }
    std::vector<int32_t> ids;
    std::vector<std::string> words;
    // Raw-text added tokens first, then normalize the rest, then normalized added tokens.
    for (const AddedVocabulary::Piece& raw : added_.Split(text, /*normalized=*/false)) {
      if (raw.id >= 0) {
        ids.push_back(raw.id);
        continue;
      }
      const std::string normalized =
          normalizer_.Normalize(text.substr(raw.begin, raw.end - raw.begin));
      for (const AddedVocabulary::Piece& piece : added_.Split(normalized, /*normalized=*/true)) {
        if (piece.id >= 0) {
          ids.push_back(piece.id);
          continue;
        }
        words.clear();
        pre_tokenizer_.Split(
            std::string_view(normalized).substr(piece.begin, piece.end - piece.begin), &words);
        for (const std::string& word : words) model_.Tokenize(word, &ids);
      }
    }
    post_processor_.Apply(add_special_tokens, &ids);
    return ids;
  }

  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string out;
    bool first = true;
    for (const int32_t id : ids) {
      const std::string* token = IdToToken(id);
      if (token == nullptr) continue;
      if (skip_special_tokens && added_.IsSpecialContent(*token)) continue;
      if (byte_level_decoder_) {
        byte_level::AppendDecodedToken(*token, &out);
      } else {
        if (!first) out += ' ';  // HF without a decoder joins the tokens with spaces
        out += *token;
      }
      first = false;
    }
    return byte_level_decoder_ ? utf8::Lossy(out) : out;
  }

  std::string TokenBytes(int32_t id) const override {
    const std::string* token = IdToToken(id);
    if (token == nullptr) return "";
    if (!byte_level_decoder_) return *token;
    std::string bytes;
    byte_level::AppendDecodedToken(*token, &bytes);
    return bytes;
  }

  std::optional<int32_t> TokenToId(std::string_view token) const override {
    if (auto id = added_.TokenToId(token)) return id;
    return model_.TokenToId(token);
  }

  bool IsSpecial(int32_t id) const override {
    const std::string* token = IdToToken(id);
    return token != nullptr && added_.IsSpecialContent(*token);
  }

  int32_t vocab_size() const override { return std::max(model_.max_id(), added_.max_id()) + 1; }

  bool byte_level_decoder() const { return byte_level_decoder_; }

 private:
  // Added tokens shadow the vocabulary, as in HF's decode.
  const std::string* IdToToken(int32_t id) const {
    if (const AddedToken* added = added_.FindById(id)) return &added->content;
    return model_.IdToToken(id);
  }

  AddedVocabulary added_;
  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  BpeModel model_;
  PostProcessor post_processor_;
  bool byte_level_decoder_;  // false: no decoder, tokens joined with spaces
};

// Returns the "decoder" kind: true for ByteLevel, false for null.
absl::StatusOr<bool> ParseDecoder(const nlohmann::json& j, std::string_view origin) {
  if (j.is_null()) return false;
  std::string type;
  if (absl::Status s = json_util::GetString(j, "type", origin, "decoder", &type); !s.ok()) {
    return s;
  }
  if (type != "ByteLevel") {
    return json_util::LoadError(origin, "decoder.type",
                                json_util::Cat("unsupported decoder \"", type, "\""));
  }
  return true;
}

const nlohmann::json& Field(const nlohmann::json& root, const char* name) {
  static const nlohmann::json* null_json = new nlohmann::json();
  return root.contains(name) ? root[name] : *null_json;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Build(const nlohmann::json& root,
                                                 std::string_view origin) {
  if (!root.is_object()) return json_util::LoadError(origin, "(root)", "expected an object");
  if (!root.contains("model")) return json_util::LoadError(origin, "model", "missing");
  auto normalizer = Normalizer::FromJson(Field(root, "normalizer"), origin);
  if (!normalizer.ok()) return normalizer.status();
  auto added = AddedVocabulary::FromJson(
      Field(root, "added_tokens"), origin,
      [&](std::string_view content) { return normalizer->Normalize(content); });
  if (!added.ok()) return added.status();
  auto pre_tokenizer = PreTokenizer::FromJson(Field(root, "pre_tokenizer"), origin);
  if (!pre_tokenizer.ok()) return pre_tokenizer.status();
  auto model = BpeModel::FromJson(root["model"], origin);
  if (!model.ok()) return model.status();
  auto post_processor = PostProcessor::FromJson(Field(root, "post_processor"), origin);
  if (!post_processor.ok()) return post_processor.status();
  // Encode's ids must lie in the vocabulary (the engine rejects others), so a template may only
  // add ids that model.vocab or added_tokens define.
  if (const int32_t vocab_size = std::max(model->max_id(), added->max_id()) + 1;
      post_processor->max_id() >= vocab_size) {
    return json_util::LoadError(
        origin, "post_processor",
        json_util::Cat("a template adds id ", post_processor->max_id(),
                       ", past the vocabulary (model.vocab and added_tokens end at ",
                       vocab_size - 1, ")"));
  }
  auto byte_level_decoder = ParseDecoder(Field(root, "decoder"), origin);
  if (!byte_level_decoder.ok()) return byte_level_decoder.status();
  return std::make_unique<BpeTokenizer>(*std::move(added), *std::move(normalizer),
                                        *std::move(pre_tokenizer), *std::move(model),
                                        *std::move(post_processor), *byte_level_decoder);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonText(std::string_view json_text,
                                                                   std::string_view origin) {
  // nlohmann reports parse and type errors by exception; they stop at this boundary.
  try {
    const nlohmann::json root = nlohmann::json::parse(json_text);
    return Build(root, origin);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        json_util::Cat(origin, ": invalid tokenizer JSON: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(json_util::Cat(path.string(), ": cannot open file"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(json_util::Cat(path.string(), ": read failed"));
  return FromJsonText(text.str(), path.string());
}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(&tokenizer);
  join_with_spaces_ = bpe != nullptr && !bpe->byte_level_decoder();
}

std::string IncrementalDecoder::Push(int32_t id) {
  if (skip_special_tokens_ && tokenizer_.IsSpecial(id)) return "";
  const std::string bytes = tokenizer_.TokenBytes(id);
  if (bytes.empty()) return "";  // out of range: Decode skips it too
  if (join_with_spaces_ && started_) pending_ += ' ';
  started_ = true;
  pending_ += bytes;
  std::string out;
  // Everything but a still-completable tail is decided: the lossy decode of the whole stream
  // makes the same choices at these bytes.
  pending_.erase(0, utf8::AppendLossyPrefix(pending_, &out));
  return out;
}

std::string IncrementalDecoder::Flush() {
  std::string out = utf8::Lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace attnres
