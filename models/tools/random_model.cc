// Random model directories: counter-based uniform weights (so any tensor can be made in
// parallel and reproduced from the seed alone), written through WriteSafetensors.
#include "models/tools/random_model.h"

#include <cmath>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/half.h"
#include "models/sampler.h"
#include "models/weight_spec.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

// Uniform values with the given mean and standard deviation, from (seed, tensor, index).
void FillUniform(uint64_t seed, float mean, float stddev, std::vector<float>* out) {
  const double half_width = stddev * std::sqrt(3.0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(out->size()); ++i) {
    (*out)[i] = static_cast<float>(mean + (2.0 * SampleUniform(seed, i) - 1.0) * half_width);
  }
}

uint64_t TensorSeed(uint64_t seed, const std::string& name) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ull + 1469598103934665603ull;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

std::vector<uint8_t> Encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> bytes(v.size() * DTypeSize(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(&bytes[4 * i], &v[i], 4);
    } else {
      const uint16_t h = dtype == DType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
      std::memcpy(&bytes[2 * i], &h, 2);
    }
  }
  return bytes;
}

// Mean and std for a tensor by the role its name gives it.
std::pair<float, float> InitFor(const WeightSpec& spec, const ModelConfig& c, double query_std) {
  const std::string& n = spec.name;
  auto ends_with = [&](std::string_view s) { return n.size() >= s.size() &&
                                                    n.compare(n.size() - s.size(), s.size(), s) == 0; };
  if (ends_with("_res_proj.weight")) {
    return {0.0f, static_cast<float>(query_std < 0 ? 1.0 / std::sqrt(c.hidden_size) : query_std)};
  }
  if (spec.shape.size() == 1) return {1.0f, 0.1f};  // norm gains around 1
  // Embeddings small next to the sublayer outputs (so the layers shape the logits, and a tied
  // head gives logits of std ~2 rather than echoing the last token).
  if (n == kEmbedName) return {0.0f, static_cast<float>(2.0 / std::sqrt(c.hidden_size))};
  return {0.0f, static_cast<float>(1.0 / std::sqrt(static_cast<double>(spec.shape[1])))};
}

absl::Status WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) return absl::InternalError(absl::StrCat(path.string(), ": write failed"));
  return absl::OkStatus();
}

}  // namespace

std::string ByteLevelTokenizerJson() {
  // GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 + n.
  nlohmann::json vocab = nlohmann::json::object();
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    const uint32_t cp = printable ? b : 256 + n++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    vocab[s] = b;
  }
  vocab["<|endoftext|>"] = 256;
  nlohmann::json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {{{"id", 256}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
         {"rstrip", false}, {"normalized", false}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
        {"use_regex", true}}},
      {"post_processor",
       {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false},
        {"use_regex", true}}},
      {"decoder",
       {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
        {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
        {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""},
        {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  return j.dump(1);
}

absl::StatusOr<ModelConfig> RandomModelPreset(const std::string& name) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-5;
  c.eos_token_ids = {256};
  auto tiny = [&](int layers) {
    c.hidden_size = 64;
    c.intermediate_size = 160;
    c.num_layers = layers;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.vocab_size = 300;
    c.max_position_embeddings = 512;
    c.tie_word_embeddings = true;
  };
  auto llama = [&](bool eight_b) {
    c.hidden_size = eight_b ? 4096 : 2048;
    c.intermediate_size = eight_b ? 14336 : 8192;
    c.num_layers = eight_b ? 32 : 16;
    c.num_heads = 32;
    c.num_kv_heads = 8;
    c.head_dim = eight_b ? 128 : 64;
    c.vocab_size = 128256;
    c.max_position_embeddings = 131072;
    c.rope_theta = 500000.0;
    c.rope_scaling = RopeScaling{eight_b ? 8.0 : 32.0, 1.0, 4.0, 8192};
    c.tie_word_embeddings = !eight_b;
  };
  if (name == "tiny-std") {
    tiny(4);
  } else if (name == "tiny-block") {
    tiny(5);
    c.residual_mode = ResidualMode::kBlock;
    c.attn_res_block_size = 2;
  } else if (name == "tiny-full") {
    tiny(3);
    c.residual_mode = ResidualMode::kFull;
    c.tie_word_embeddings = false;
    c.rope_scaling = RopeScaling{4.0, 1.0, 4.0, 64};
  } else if (name == "small-block") {
    c.hidden_size = 256;
    c.intermediate_size = 640;
    c.num_layers = 6;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 64;
    c.vocab_size = 512;
    c.max_position_embeddings = 2048;
    c.tie_word_embeddings = true;
    c.residual_mode = ResidualMode::kBlock;
    c.attn_res_block_size = 2;
  } else if (name == "llama-1b" || name == "llama-1b-block") {
    llama(false);
    if (name == "llama-1b-block") c.attn_res_block_size = 2;  // 16 layers: 8 blocks
  } else if (name == "llama-8b" || name == "llama-8b-block") {
    llama(true);
    if (name == "llama-8b-block") c.attn_res_block_size = 4;  // 32 layers: 8 blocks
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown preset \"", name, "\" (tiny-std, tiny-block, tiny-full, small-block, llama-1b, "
        "llama-1b-block, llama-8b, llama-8b-block)"));
  }
  if (c.attn_res_block_size > 0) c.residual_mode = ResidualMode::kBlock;
  if (c.attn_res()) c.architecture = "AttnResLlamaForCausalLM";
  return c;
}

absl::Status WriteRandomModel(const ModelConfig& c, const RandomModelOptions& o,
                              const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir.string(), ": ", ec.message()));
  if (auto st = WriteText(dir / "config.json", ModelConfigToJson(c)); !st.ok()) return st;
  std::string tokenizer = ByteLevelTokenizerJson();
  if (!o.tokenizer_json.empty()) {
    std::ifstream in(o.tokenizer_json);
    if (!in) return absl::NotFoundError(absl::StrCat(o.tokenizer_json, ": cannot open"));
    tokenizer.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (auto st = WriteText(dir / "tokenizer.json", tokenizer); !st.ok()) return st;
  nlohmann::json gen = {{"temperature", 1.0}, {"top_p", 1.0}};
  if (!c.eos_token_ids.empty()) gen["eos_token_id"] = c.eos_token_ids;
  if (auto st = WriteText(dir / "generation_config.json", gen.dump(2)); !st.ok()) return st;

  const std::vector<WeightSpec> specs = RequiredWeights(c, o.qk_norm);
  const int shards = std::max(1, std::min<int>(o.num_shards, static_cast<int>(specs.size())));
  nlohmann::json weight_map = nlohmann::json::object();
  size_t next = 0;
  for (int s = 0; s < shards; ++s) {
    const std::string file =
        shards == 1 ? "model.safetensors"
                    : absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, shards);
    std::vector<TensorToWrite> tensors;
    const size_t end = specs.size() * (s + 1) / shards;
    for (; next < end; ++next) {
      const WeightSpec& spec = specs[next];
      int64_t n = 1;
      for (int64_t d : spec.shape) n *= d;
      std::vector<float> values(static_cast<size_t>(n));
      auto [mean, stddev] = InitFor(spec, c, o.query_std);
      if (stddev > 0) {
        FillUniform(TensorSeed(o.seed, spec.name), mean, stddev, &values);
      } else {
        std::fill(values.begin(), values.end(), mean);
      }
      tensors.push_back({spec.name, o.dtype, spec.shape, Encode(values, o.dtype)});
      weight_map[spec.name] = file;
    }
    if (auto st = WriteSafetensors(dir / file, tensors); !st.ok()) return st;
  }
  if (shards > 1) {
    nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", weight_map}};
    if (auto st = WriteText(dir / "model.safetensors.index.json", index.dump(2)); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace attnres
