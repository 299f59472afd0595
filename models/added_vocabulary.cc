// Added-token loading and HF's find_matches: leftmost-longest literal matches, single_word
// filtering on \w boundaries, lstrip/rstrip widening over Unicode whitespace (Rust regex rules).
#include "models/added_vocabulary.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "models/tokenizer_json_util.h"
#include "models/utf8.h"

namespace attnres {
namespace {

// HF tests single_word with Rust regex's Unicode \w: Alphabetic, M*, Nd, Pc, Join_Control.
bool IsWordChar(char32_t c) {
  const auto u = static_cast<UChar32>(c);
  const int32_t mask = U_GET_GC_MASK(u);
  return u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL) ||
         (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

// Rust regex's Unicode \s (lstrip/rstrip): the White_Space property.
bool IsWhitespace(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

// Start of the character that ends right before `pos` (pos > 0).
size_t PrevCharStart(std::string_view text, size_t pos) {
  do {
    --pos;
  } while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80);
  return pos;
}

char32_t CharAt(std::string_view text, size_t pos) { return utf8::DecodeAt(text, &pos); }

}  // namespace

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(
    const nlohmann::json& j, std::string_view origin,
    const std::function<std::string(std::string_view)>& normalize) {
  AddedVocabulary vocab;
  if (j.is_null()) return vocab;
  if (!j.is_array()) return json_util::LoadError(origin, "added_tokens", "expected an array");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string key = json_util::Cat("added_tokens[", i, "]");
    const nlohmann::json& t = j[i];
    AddedToken token;
    if (!t.is_object() || !t.contains("id") || !json_util::IsTokenId(t["id"])) {
      return json_util::LoadError(origin, key + ".id", json_util::kTokenIdRule);
    }
    token.id = t["id"].get<int32_t>();
    if (absl::Status s = json_util::GetString(t, "content", origin, key, &token.content); !s.ok()) {
      return s;
    }
    if (!utf8::IsValid(token.content)) {
      return json_util::LoadError(origin, key + ".content", "not valid UTF-8");
    }
    for (auto [name, field, fallback] :
         {std::tuple{"special", &token.special, false}, std::tuple{"lstrip", &token.lstrip, false},
          std::tuple{"rstrip", &token.rstrip, false},
          std::tuple{"single_word", &token.single_word, false}}) {
      if (absl::Status s = json_util::GetBool(t, name, fallback, origin, key, field); !s.ok()) {
        return s;
      }
    }
    // HF's default: special tokens are matched on the raw text, others after normalization.
    if (absl::Status s =
            json_util::GetBool(t, "normalized", !token.special, origin, key, &token.normalized);
        !s.ok()) {
      return s;
    }
    token.match = token.normalized ? normalize(token.content) : token.content;
    vocab.max_id_ = std::max(vocab.max_id_, token.id);
    if (token.special) vocab.special_contents_.insert(token.content);
    vocab.by_id_[token.id] = vocab.tokens_.size();
    vocab.by_content_[token.content] = vocab.tokens_.size();
    vocab.tokens_.push_back(std::move(token));
  }
  for (size_t i = 0; i < vocab.tokens_.size(); ++i) {
    const AddedToken& token = vocab.tokens_[i];
    if (token.match.empty()) continue;
    vocab.by_first_byte_[token.normalized][static_cast<unsigned char>(token.match[0])].push_back(i);
  }
  for (auto& trie : vocab.by_first_byte_) {
    for (auto& list : trie) {
      std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        return vocab.tokens_[a].match.size() > vocab.tokens_[b].match.size();
      });
    }
  }
  return vocab;
}

const AddedToken* AddedVocabulary::LongestAt(std::string_view text, size_t pos,
                                             bool normalized) const {
  for (const size_t i : by_first_byte_[normalized][static_cast<unsigned char>(text[pos])]) {
    const std::string& match = tokens_[i].match;
    if (text.substr(pos, match.size()) == match) return &tokens_[i];
  }
  return nullptr;
}

std::vector<AddedVocabulary::Piece> AddedVocabulary::Split(std::string_view text,
                                                           bool normalized) const {
  std::vector<Piece> pieces;
  size_t start_offset = 0;  // end of the previous piece
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken* token = LongestAt(text, pos, normalized);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + token->match.size();
    pos = stop;  // the match scan resumes after the literal match, as aho-corasick's find_iter
    if (token->single_word) {
      const bool word_before = start > 0 && IsWordChar(CharAt(text, PrevCharStart(text, start)));
      const bool word_after = stop < text.size() && IsWordChar(CharAt(text, stop));
      if (word_before || word_after) continue;
    }
    if (token->lstrip) {
      while (start > start_offset && IsWhitespace(CharAt(text, PrevCharStart(text, start)))) {
        start = PrevCharStart(text, start);
      }
    }
    if (token->rstrip) {
      while (stop < text.size() && IsWhitespace(CharAt(text, stop))) {
        size_t next = stop;
        utf8::DecodeAt(text, &next);
        stop = next;
      }
    }
    if (start > start_offset) pieces.push_back({start_offset, start, -1});
    pieces.push_back({start, stop, token->id});
    start_offset = stop;
  }
  if (start_offset < text.size()) pieces.push_back({start_offset, text.size(), -1});
  return pieces;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::TokenToId(std::string_view content) const {
  const auto it = by_content_.find(json_util::Absl(content));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

}  // namespace attnres
