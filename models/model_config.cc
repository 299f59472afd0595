// Parsing and validation of config.json, and the AttnRes mix layout derived from it.
#include "models/model_config.h"

#include "absl/strings/str_cat.h"
#include "models/config_json.h"
#include "models/file_text.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

using config_json::KeyError;
using config_json::ReadDouble;
using config_json::ReadInt;
using config_json::ReadString;
using config_json::ReadTokenIds;
using nlohmann::json;

absl::Status ParseRopeScaling(const json& j, absl::string_view origin, ModelConfig* c) {
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return KeyError(origin, "rope_scaling", "must be an object or null");
  std::string type;  // "rope_type", or the older "type"
  if (auto st = ReadString(*it, origin, "type", &type); !st.ok()) return st;
  if (auto st = ReadString(*it, origin, "rope_type", &type); !st.ok()) return st;
  if (type == "default") return absl::OkStatus();
  if (type != "llama3") {
    return KeyError(origin, "rope_scaling.rope_type",
                    absl::StrCat("must be \"llama3\" or \"default\", got \"", type, "\""));
  }
  RopeScaling s;
  if (auto st = ReadDouble(*it, origin, "factor", &s.factor); !st.ok()) return st;
  if (auto st = ReadDouble(*it, origin, "low_freq_factor", &s.low_freq_factor); !st.ok()) return st;
  if (auto st = ReadDouble(*it, origin, "high_freq_factor", &s.high_freq_factor); !st.ok()) {
    return st;
  }
  if (auto st = ReadInt(*it, origin, "original_max_position_embeddings", false, 1,
                        &s.original_max_position_embeddings);
      !st.ok()) {
    return st;
  }
  if (s.factor <= 0 || s.low_freq_factor <= 0 || s.high_freq_factor <= s.low_freq_factor) {
    return KeyError(origin, "rope_scaling",
                    "needs factor > 0 and high_freq_factor > low_freq_factor > 0");
  }
  c->rope_scaling = s;
  return absl::OkStatus();
}

absl::Status ParseAttnRes(const json& j, absl::string_view origin, ModelConfig* c) {
  if (auto st = ReadInt(j, origin, "attn_res_block_size", false, 0, &c->attn_res_block_size);
      !st.ok()) {
    return st;
  }
  std::string mode = "block";
  if (auto st = ReadString(j, origin, "attn_res_mode", &mode); !st.ok()) return st;
  if (mode == "full") {
    c->residual_mode = ResidualMode::kFull;
  } else if (mode == "block") {
    c->residual_mode =
        c->attn_res_block_size > 0 ? ResidualMode::kBlock : ResidualMode::kStandard;
  } else if (mode == "standard" || mode == "none") {
    c->residual_mode = ResidualMode::kStandard;
  } else {
    return KeyError(origin, "attn_res_mode",
                    absl::StrCat("must be \"block\", \"full\" or \"standard\", got \"", mode, "\""));
  }
  return absl::OkStatus();
}

absl::Status Validate(const ModelConfig& c, absl::string_view origin) {
  if (c.num_heads % c.num_kv_heads != 0) {
    return KeyError(origin, "num_key_value_heads",
                    absl::StrCat("must divide num_attention_heads (", c.num_heads, "), got ",
                                 c.num_kv_heads));
  }
  if (c.head_dim % 2 != 0) {
    return KeyError(origin, "head_dim", absl::StrCat("must be even for RoPE, got ", c.head_dim));
  }
  if (c.rms_norm_eps <= 0) return KeyError(origin, "rms_norm_eps", "must be > 0");
  if (c.rope_theta <= 0) return KeyError(origin, "rope_theta", "must be > 0");
  if (c.bos_token_id >= c.vocab_size) {
    return KeyError(origin, "bos_token_id", absl::StrCat("must be < vocab_size (", c.vocab_size, ")"));
  }
  for (int32_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) {
      return KeyError(origin, "eos_token_id",
                      absl::StrCat("ids must be in [0, vocab_size=", c.vocab_size, "), got ", id));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* ResidualModeName(ResidualMode mode) {
  switch (mode) {
    case ResidualMode::kStandard: return "standard";
    case ResidualMode::kBlock: return "block";
    case ResidualMode::kFull: return "full";
  }
  return "?";
}

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text, absl::string_view origin) {
  json j = json::parse(std::string(json_text), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(std::string(origin), ": not valid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(std::string(origin), ": not a JSON object"));
  ModelConfig c;
  if (auto it = j.find("architectures"); it != j.end() && it->is_array() && !it->empty() &&
                                         (*it)[0].is_string()) {
    c.architecture = (*it)[0].get<std::string>();
  } else {
    c.architecture = "llama";
    if (auto st = ReadString(j, origin, "model_type", &c.architecture); !st.ok()) return st;
  }
  struct IntKey { const char* key; bool required; int min; int* out; };
  c.num_kv_heads = -1;
  c.head_dim = -1;
  c.max_position_embeddings = 2048;
  const IntKey int_keys[] = {
      {"hidden_size", true, 1, &c.hidden_size},
      {"intermediate_size", true, 1, &c.intermediate_size},
      {"num_hidden_layers", true, 1, &c.num_layers},
      {"num_attention_heads", true, 1, &c.num_heads},
      {"num_key_value_heads", false, 1, &c.num_kv_heads},
      {"head_dim", false, 1, &c.head_dim},
      {"vocab_size", true, 1, &c.vocab_size},
      {"max_position_embeddings", false, 1, &c.max_position_embeddings},
  };
  for (const IntKey& k : int_keys) {
    if (auto st = ReadInt(j, origin, k.key, k.required, k.min, k.out); !st.ok()) return st;
  }
  if (c.num_kv_heads < 0) c.num_kv_heads = c.num_heads;
  if (c.head_dim < 0) {
    if (c.hidden_size % c.num_heads != 0) {
      return KeyError(origin, "head_dim", "is required when num_attention_heads does not divide "
                                          "hidden_size");
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (auto st = ReadDouble(j, origin, "rope_theta", &c.rope_theta); !st.ok()) return st;
  if (auto st = ReadDouble(j, origin, "rms_norm_eps", &c.rms_norm_eps); !st.ok()) return st;
  if (auto it = j.find("tie_word_embeddings"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return KeyError(origin, "tie_word_embeddings", "must be a boolean");
    c.tie_word_embeddings = it->get<bool>();
  }
  if (auto it = j.find("attention_bias"); it != j.end() && it->is_boolean() && it->get<bool>()) {
    return KeyError(origin, "attention_bias", "true is not supported (no projection biases)");
  }
  std::string hidden_act = "silu";
  if (auto st = ReadString(j, origin, "hidden_act", &hidden_act); !st.ok()) return st;
  if (hidden_act != "silu") return KeyError(origin, "hidden_act", "must be \"silu\" (SwiGLU)");
  if (auto st = ReadInt(j, origin, "bos_token_id", false, 0, &c.bos_token_id); !st.ok()) return st;
  if (auto st = ReadTokenIds(j, origin, "eos_token_id", &c.eos_token_ids); !st.ok()) return st;
  if (auto st = ParseRopeScaling(j, origin, &c); !st.ok()) return st;
  if (auto st = ParseAttnRes(j, origin, &c); !st.ok()) return st;
  if (auto st = Validate(c, origin); !st.ok()) return st;
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "config.json";
  absl::StatusOr<std::string> text = ReadFileText(path);
  if (!text.ok()) return text.status();
  return ParseModelConfig(*text, path.string());
}

std::string ModelConfigToJson(const ModelConfig& c) {
  json j;
  j["architectures"] = {c.attn_res() ? "AttnResLlamaForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope_theta;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  if (c.rope_scaling) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling->factor},
                         {"low_freq_factor", c.rope_scaling->low_freq_factor},
                         {"high_freq_factor", c.rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings",
                          c.rope_scaling->original_max_position_embeddings}};
  }
  if (c.residual_mode == ResidualMode::kBlock) {
    j["attn_res_block_size"] = c.attn_res_block_size;
    j["attn_res_mode"] = "block";
  } else if (c.residual_mode == ResidualMode::kFull) {
    j["attn_res_mode"] = "full";
  }
  return j.dump(2);
}

MixLayout MixLayout::For(const ModelConfig& c) {
  MixLayout m;
  if (!c.attn_res()) return m;
  const int num_sublayers = 2 * c.num_layers;
  m.num_mixes = num_sublayers + 1;
  m.snapshot_before.resize(num_sublayers);
  int bank = 0;
  for (int s = 0; s < num_sublayers; ++s) {
    // The mix of sublayer s runs before its snapshot: it reads the bank so far plus the prefix.
    m.num_sources.push_back(bank + 1);
    m.snapshot_before[s] =
        c.residual_mode == ResidualMode::kFull || s % (2 * c.attn_res_block_size) == 0;
    if (m.snapshot_before[s]) ++bank;
  }
  m.num_sources.push_back(bank + 1);  // final mix
  m.num_bank_slots = bank;
  m.later_mixes.assign(num_sublayers, 0);
  for (int s = 0; s < num_sublayers; ++s) {
    if (!m.snapshot_before[s]) continue;
    int next = s + 1;
    while (next < num_sublayers && !m.snapshot_before[next]) ++next;
    m.later_mixes[s] = (next == num_sublayers ? m.num_mixes : next) - (s + 1);
  }
  m.weight_offset.push_back(0);
  for (int n : m.num_sources) m.weight_offset.push_back(m.weight_offset.back() + n);
  return m;
}

}  // namespace attnres
