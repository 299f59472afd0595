// Post-processor parsing (TemplateProcessing's "single" items and "special_tokens" table) and
// the special-token wrapping of an encoded sequence.
#include "models/post_processor.h"

#include <algorithm>
#include <string>

#include "models/tokenizer_json_util.h"

namespace attnres {

using json_util::LoadError;

absl::StatusOr<PostProcessor> PostProcessor::FromJson(const nlohmann::json& j,
                                                      std::string_view origin) {
  PostProcessor post;
  if (j.is_null()) return post;
  if (absl::Status s = AddProcessors(j, origin, "post_processor", &post.templates_); !s.ok()) {
    return s;
  }
  return post;
}

absl::Status PostProcessor::AddProcessors(const nlohmann::json& j, std::string_view origin,
                                          const std::string& key,
                                          std::vector<Template>* templates) {
  std::string type;
  if (absl::Status s = json_util::GetString(j, "type", origin, key, &type); !s.ok()) return s;
  if (type == "ByteLevel") return absl::OkStatus();  // adjusts offsets only
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) {
      return LoadError(origin, key + ".processors", "missing or not an array");
    }
    for (size_t i = 0; i < j["processors"].size(); ++i) {
      const std::string item_key = json_util::Cat(key, ".processors[", i, "]");
      if (absl::Status s = AddProcessors(j["processors"][i], origin, item_key, templates);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  if (type == "TemplateProcessing") {
    absl::StatusOr<Template> t = ParseTemplate(j, origin, key);
    if (!t.ok()) return t.status();
    templates->push_back(*std::move(t));
    return absl::OkStatus();
  }
  return LoadError(origin, key + ".type",
                   json_util::Cat("unsupported post-processor \"", type, "\""));
}

absl::StatusOr<PostProcessor::Template> PostProcessor::ParseTemplate(const nlohmann::json& j,
                                                                     std::string_view origin,
                                                                     const std::string& key) {
  if (!j.contains("single") || !j["single"].is_array()) {
    return LoadError(origin, key + ".single", "missing or not an array of template pieces");
  }
  const nlohmann::json& table =
      j.contains("special_tokens") ? j["special_tokens"] : nlohmann::json::object();
  Template t;
  bool seen_sequence = false;
  for (size_t i = 0; i < j["single"].size(); ++i) {
    const nlohmann::json& item = j["single"][i];
    const std::string item_key = json_util::Cat(key, ".single[", i, "]");
    if (item.is_object() && item.contains("Sequence")) {
      std::string id;
      if (seen_sequence ||
          !json_util::GetString(item["Sequence"], "id", origin, item_key, &id).ok() || id != "A") {
        return LoadError(origin, item_key, "a single template holds exactly one $A");
      }
      seen_sequence = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken") || !item["SpecialToken"].is_object() ||
        !item["SpecialToken"].contains("id") || !item["SpecialToken"]["id"].is_string()) {
      return LoadError(origin, item_key,
                       "expected {\"SpecialToken\": {\"id\": ...}} or "
                       "{\"Sequence\": {\"id\": \"A\"}}");
    }
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    if (!table.is_object() || !table.contains(name) || !table[name].is_object() ||
        !table[name].contains("ids") || !table[name]["ids"].is_array()) {
      return LoadError(origin, json_util::Cat(key, ".special_tokens[\"", name, "\"].ids"),
                       "missing special token used by the template");
    }
    std::vector<int32_t>& side = seen_sequence ? t.after : t.before;
    for (const nlohmann::json& id : table[name]["ids"]) {
      if (!json_util::IsTokenId(id)) {
        return LoadError(origin, json_util::Cat(key, ".special_tokens[\"", name, "\"].ids"),
                         json_util::kTokenIdRule);
      }
      side.push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence)
    return LoadError(origin, key + ".single", "no {\"Sequence\": {\"id\": \"A\"}}");
  return t;
}

int32_t PostProcessor::max_id() const {
  int32_t out = -1;
  for (const Template& t : templates_) {
    for (const auto* side : {&t.before, &t.after}) {
      for (int32_t id : *side) out = std::max(out, id);
    }
  }
  return out;
}

void PostProcessor::Apply(bool add_special_tokens, std::vector<int32_t>* ids) const {
  if (!add_special_tokens) return;
  for (const Template& t : templates_) {
    ids->insert(ids->begin(), t.before.begin(), t.before.end());
    ids->insert(ids->end(), t.after.begin(), t.after.end());
  }
}

}  // namespace attnres
