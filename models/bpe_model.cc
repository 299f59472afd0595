// BPE vocabulary/merges loading and the rank-ordered merge loop (as HF's word.rs: a heap of
// candidate pairs over a linked list of symbols, stale candidates skipped when popped).
#include "models/bpe_model.h"

#include <queue>
#include <utility>

#include "models/tokenizer_json_util.h"
#include "models/utf8.h"

namespace attnres {

using json_util::LoadError;

absl::StatusOr<BpeModel> BpeModel::FromJson(const nlohmann::json& j, std::string_view origin) {
  std::string type;
  if (absl::Status s = json_util::GetString(j, "type", origin, "model", &type); !s.ok()) return s;
  if (type != "BPE") {
    return LoadError(origin, "model.type",
                     json_util::Cat("unsupported model \"", type, "\" (only BPE)"));
  }
  for (const char* unsupported : {"dropout", "unk_token"}) {
    if (j.contains(unsupported) && !j[unsupported].is_null()) {
      return LoadError(origin, json_util::Cat("model.", unsupported), "only null is supported");
    }
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (j.contains(affix) && !j[affix].is_null() &&
        !(j[affix].is_string() && j[affix].get<std::string>().empty())) {
      return LoadError(origin, json_util::Cat("model.", affix), "only null or \"\" is supported");
    }
  }
  bool byte_fallback = false;
  if (absl::Status s =
          json_util::GetBool(j, "byte_fallback", false, origin, "model", &byte_fallback);
      !s.ok()) {
    return s;
  }
  if (byte_fallback) return LoadError(origin, "model.byte_fallback", "only false is supported");
  BpeModel bpe;
  if (absl::Status s =
          json_util::GetBool(j, "ignore_merges", false, origin, "model", &bpe.ignore_merges_);
      !s.ok()) {
    return s;
  }
  if (!j.contains("vocab") || !j["vocab"].is_object()) {
    return LoadError(origin, "model.vocab", "missing or not an object");
  }
  int32_t max_id = -1;
  for (const auto& [token, id] : j["vocab"].items()) {
    if (!json_util::IsTokenId(id)) {
      return LoadError(origin, json_util::Cat("model.vocab[\"", token, "\"]"),
                       json_util::kTokenIdRule);
    }
    bpe.vocab_[token] = id.get<int32_t>();
    max_id = std::max(max_id, id.get<int32_t>());
  }
  bpe.id_to_token_.resize(max_id + 1);
  for (const auto& [token, id] : bpe.vocab_) bpe.id_to_token_[id] = token;
  if (!j.contains("merges") || !j["merges"].is_array()) {
    return LoadError(origin, "model.merges", "missing or not an array");
  }
  if (absl::Status s = bpe.LoadMerges(j["merges"], origin); !s.ok()) return s;
  return bpe;
}

absl::Status BpeModel::LoadMerges(const nlohmann::json& merges, std::string_view origin) {
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const nlohmann::json& m = merges[rank];
    const std::string key = json_util::Cat("model.merges[", rank, "]");
    std::string left, right;
    if (m.is_string()) {
      const std::string line = m.get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos) return LoadError(origin, key, "expected \"left right\"");
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return LoadError(origin, key, "expected \"left right\" or [left, right]");
    }
    const auto a = vocab_.find(left), b = vocab_.find(right);
    const auto merged = vocab_.find(left + right);
    if (a == vocab_.end() || b == vocab_.end() || merged == vocab_.end()) {
      return LoadError(origin, key, "merge uses or makes a token missing from model.vocab");
    }
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    merges_.insert_or_assign(PairKey(a->second, b->second),
                             Merge{static_cast<int32_t>(rank), merged->second});
  }
  return absl::OkStatus();
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(json_util::Absl(word)); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // indices into `symbols`; -1 at the ends
    bool alive;
  };
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < word.size();) {
    const size_t begin = pos;
    utf8::DecodeAt(word, &pos);
    const auto it = vocab_.find(json_util::Absl(word.substr(begin, pos - begin)));
    if (it == vocab_.end()) continue;  // no unk token: HF drops the character
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({it->second, n - 1, -1, true});
    if (n > 0) symbols[n - 1].next = n;
  }
  // Candidates ordered by (rank, position): the leftmost best merge first.
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push_pair = [&](int32_t pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    const auto it = merges_.find(PairKey(symbols[pos].id, symbols[symbols[pos].next].id));
    if (it != merges_.end()) heap.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    const auto it = merges_.find(PairKey(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.rank != top.rank) continue;  // stale candidate
    Symbol& right = symbols[left.next];
    right.alive = false;
    left.id = top.new_id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids->push_back(symbols[i].id);
  }
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  const auto it = vocab_.find(json_util::Absl(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id > max_id()) return nullptr;
  const std::string& token = id_to_token_[id];
  if (token.empty()) return nullptr;
  return &token;
}

}  // namespace attnres
