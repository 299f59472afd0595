// Proto <-> native conversion (see proto_convert.h).
#include "server/grpc/proto_convert.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/grpc/chat_prompt.h"
#include "server/grpc/tokenization.h"
#include "server/grpc/tool_call_grammar.h"
#include "server/grpc/tool_call_response.h"
#include "server/structured/json_schema_grammar.h"
#include "server/structured/regex_grammar.h"

namespace attnres {
namespace {

std::string NewRequestId() {
  static std::atomic<uint64_t> counter{0};
  thread_local absl::BitGen gen;
  return absl::StrFormat("req-%08x-%d", absl::Uniform<uint32_t>(gen),
                         counter.fetch_add(1, std::memory_order_relaxed));
}

uint64_t NewSeed() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

// Request fields win over generation_config.json, which wins over SamplingParams defaults.
// top_k and min_p have no presence in the proto: 0 means "unset" there.
SamplingParams ToSamplingParams(const v1::SamplingParams& s, const GenerationConfig& d) {
  SamplingParams out;
  out.temperature = s.has_temperature() ? s.temperature() : d.temperature.value_or(1.0f);
  out.top_k = s.top_k() != 0 ? s.top_k() : d.top_k.value_or(0);
  out.top_p = s.has_top_p() ? s.top_p() : d.top_p.value_or(1.0f);
  out.min_p = s.min_p() != 0.0f ? s.min_p() : d.min_p.value_or(0.0f);
  out.seed = s.has_seed() ? s.seed() : NewSeed();
  out.repetition_penalty =
      s.has_repetition_penalty() ? s.repetition_penalty() : d.repetition_penalty.value_or(1.0f);
  out.presence_penalty = s.presence_penalty();
  out.frequency_penalty = s.frequency_penalty();
  out.logit_bias.assign(s.logit_bias().begin(), s.logit_bias().end());
  std::sort(out.logit_bias.begin(), out.logit_bias.end());
  return out;
}

// response_format's grammar; null when unset. A schema or pattern the compiler refuses is
// INVALID_ARGUMENT with its message (which names the schema location or the byte) after the field.
absl::StatusOr<std::shared_ptr<const structured::Grammar>> ResponseGrammar(
    const v1::GenerateRequest& request) {
  using GrammarOr = absl::StatusOr<std::shared_ptr<const structured::Grammar>>;
  const auto named = [](absl::string_view field, GrammarOr grammar) -> GrammarOr {
    if (grammar.ok()) return grammar;
    return absl::InvalidArgumentError(absl::StrCat(field, grammar.status().message()));
  };
  const v1::ResponseFormat& format = request.response_format();
  switch (format.format_case()) {
    case v1::ResponseFormat::kJsonObject:
      return structured::JsonObjectGrammar();
    case v1::ResponseFormat::kJsonSchema:
      return named("response_format.json_schema.schema_json: ",
                   structured::JsonSchemaGrammarFromText(format.json_schema().schema_json()));
    case v1::ResponseFormat::kRegex:
      return named("response_format.regex.pattern: ",
                   structured::RegexGrammar(format.regex().pattern()));
    case v1::ResponseFormat::kChoice: {
      const auto& choices = format.choice().choices();
      return named("response_format.choice.", structured::ChoiceGrammar(std::vector<std::string>(
                                                  choices.begin(), choices.end())));
    }
    default:
      return nullptr;
  }
}

size_t AppendLogprob(const TokenLogprob& in, const Tokenizer& tokenizer, v1::TokenLogprob* out) {
  out->set_token_id(in.token_id);
  out->set_token(TokenText(tokenizer, in.token_id));
  out->set_logprob(in.logprob);
  size_t bytes = 16 + out->token().size();
  for (const auto& [id, logprob] : in.top) {
    v1::TopLogprob* top = out->add_top();
    top->set_token_id(id);
    top->set_token(TokenText(tokenizer, id));
    top->set_logprob(logprob);
    bytes += 16 + top->token().size();
  }
  return bytes;
}

// Splits one token's flattened weights [total_weights] into the per-mix records.
size_t AppendMixWeights(const std::vector<float>& flat, const MixLayout& layout,
                        v1::TokenMixWeights* out) {
  if (layout.num_mixes == 0 || static_cast<int>(flat.size()) != layout.total_weights()) {
    return 0;  // standard-residual model (or a runner that did not report them)
  }
  const int final_mix = layout.num_mixes - 1;
  for (int m = 0; m < layout.num_mixes; ++m) {
    v1::MixWeights* mix = out->add_mixes();
    mix->set_site(m == final_mix ? "final" : (m % 2 == 0 ? "attn" : "mlp"));
    mix->set_layer(m == final_mix ? -1 : m / 2);
    mix->mutable_weights()->Add(flat.begin() + layout.weight_offset[m],
                                flat.begin() + layout.weight_offset[m + 1]);
  }
  return 12 * layout.num_mixes + 4 * flat.size();
}

template <typename Response>
size_t MergeDeltaImpl(const GenerationDelta& delta, const ServingContext& ctx, Response* response) {
  const Tokenizer& tokenizer = *ctx.tokenizer;
  size_t bytes = delta.text.size() + 4 * delta.token_ids.size();
  response->mutable_text()->append(delta.text);
  response->mutable_token_ids()->Add(delta.token_ids.begin(), delta.token_ids.end());
  for (const TokenLogprob& lp : delta.logprobs) {
    bytes += AppendLogprob(lp, tokenizer, response->add_logprobs());
  }
  for (const TokenLogprob& lp : delta.prompt_logprobs) {
    bytes += AppendLogprob(lp, tokenizer, response->add_prompt_logprobs());
  }
  for (const std::vector<float>& flat : delta.mix_weights) {
    bytes += AppendMixWeights(flat, ctx.mix_layout, response->add_mix_weights());
  }
  if (delta.finished) {
    response->set_finish_reason(ToProto(delta.finish_reason));
    response->set_stop_reason(delta.stop_reason);
    v1::Usage* usage = response->mutable_usage();
    usage->set_prompt_tokens(delta.usage.prompt_tokens);
    usage->set_completion_tokens(delta.usage.completion_tokens);
    usage->set_cached_prompt_tokens(delta.usage.cached_prompt_tokens);
  }
  return bytes;
}

}  // namespace

// Forcing calls needs the server's parser (it is the calls' format); response_format is refused
// with tools that are read for calls, whose text it would decide too. A named function is one
// call of it.
absl::StatusOr<std::shared_ptr<const structured::Grammar>> RequestGrammar(
    const v1::GenerateRequest& request, const ServingContext& ctx) {
  const v1::Chat& chat = request.prompt().chat();  // the default instance for other prompts
  const std::string& function = chat.tool_choice_function();
  const bool forced = chat.tool_choice() == v1::Chat::TOOL_CHOICE_REQUIRED || !function.empty();
  if (forced && !ctx.tool_call_parser.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        function.empty() ? "prompt.chat.tool_choice: required"
                         : "prompt.chat.tool_choice_function: a named function",
        " needs a server started with --tool-call-parser (the calls are written in its format)"));
  }
  const std::optional<ToolCallMode> mode = RequestToolCallMode(ctx, request);
  if (request.has_response_format() && mode.has_value()) {
    return absl::InvalidArgumentError(
        "response_format cannot be combined with prompt.chat.tools that are read for calls "
        "(tool_choice other than TOOL_CHOICE_NONE on a server with --tool-call-parser): both "
        "decide the output");
  }
  if (!forced) return ResponseGrammar(request);
  if (!mode.has_value()) {  // no tools (which validation refuses)
    return absl::InvalidArgumentError(
        "prompt.chat.tool_choice: forcing calls needs prompt.chat.tools");
  }
  ToolCallMode grammar_mode = *mode;
  if (!function.empty()) grammar_mode.parallel_tool_calls = false;  // one call of it
  return ToolCallGrammar(grammar_mode, chat.tools(), function);
}

absl::StatusOr<GenerationRequest> ToGenerationRequest(const v1::GenerateRequest& request,
                                                      const ServingContext& ctx,
                                                      absl::Time deadline) {
  GenerationRequest out;
  out.request_id = request.request_id().empty() ? NewRequestId() : request.request_id();
  if (request.prompt().kind_case() == v1::Prompt::kText) {
    out.prompt_ids = ctx.tokenizer->Encode(
        request.prompt().text(),
        request.has_add_special_tokens() ? request.add_special_tokens() : true);
  } else if (request.prompt().kind_case() == v1::Prompt::kChat) {
    absl::StatusOr<std::string> text = RenderChat(request.prompt().chat(), ctx);
    if (!text.ok()) return text.status();
    // The template writes the special tokens it wants.
    out.prompt_ids = ctx.tokenizer->Encode(
        *text, request.has_add_special_tokens() ? request.add_special_tokens() : false);
  } else {
    const auto& ids = request.prompt().token_ids().ids();
    out.prompt_ids.assign(ids.begin(), ids.end());
  }
  const int prompt_len = static_cast<int>(out.prompt_ids.size());
  std::optional<int> max_tokens;
  if (request.has_max_tokens()) max_tokens = request.max_tokens();
  absl::Status status = ValidatePromptLength(prompt_len, max_tokens, ctx.limits);
  if (!status.ok()) return status;

  out.sampling = ToSamplingParams(request.sampling(), ctx.defaults);
  const int room = ctx.limits.max_model_len - prompt_len;
  // An explicit max_tokens was checked against the room; a default is clamped into [1, room].
  out.stop.max_tokens = max_tokens.value_or(std::clamp(
      ctx.defaults.max_new_tokens.value_or(ctx.default_max_tokens), 1, std::max(1, room)));
  status = ValidateMinTokens(request.min_tokens(), out.stop.max_tokens);
  if (!status.ok()) return status;
  out.stop.min_tokens = request.min_tokens();
  out.stop.stop_strings.assign(request.stop().begin(), request.stop().end());
  out.stop.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  // generation_config.json's EOS ids are the engine's (EngineConfig::extra_eos_token_ids).
  out.stop.ignore_eos = request.ignore_eos();
  out.output.logprobs = request.has_logprobs() ? request.logprobs() : -1;
  out.output.prompt_logprobs = request.has_prompt_logprobs() ? request.prompt_logprobs() : -1;
  out.output.return_mix_weights =
      request.return_mix_weights() && ctx.engine->model_config().attn_res();
  out.output.skip_special_tokens =
      request.has_skip_special_tokens() ? request.skip_special_tokens() : true;
  absl::StatusOr<std::shared_ptr<const structured::Grammar>> grammar = RequestGrammar(request, ctx);
  if (!grammar.ok()) return grammar.status();
  out.grammar = *std::move(grammar);
  out.deadline = deadline;
  return out;
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
      break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

size_t MergeDelta(const GenerationDelta& delta, const ServingContext& ctx,
                  v1::GenerateResponse* response) {
  return MergeDeltaImpl(delta, ctx, response);
}

size_t MergeDelta(const GenerationDelta& delta, const ServingContext& ctx,
                  v1::GenerateStreamResponse* response) {
  return MergeDeltaImpl(delta, ctx, response);
}

v1::ModelInfo BuildModelInfo(const ServingContext& ctx) {
  const Engine& engine = *ctx.engine;
  const std::string& model_name = ctx.model_name;
  const ModelConfig& m = engine.model_config();
  const EngineConfig& e = engine.config();
  v1::ModelInfo info;
  info.set_model_name(model_name);
  info.set_architecture(m.architecture);
  info.set_device(engine.device_name());
  info.set_dtype(engine.compute_dtype());
  info.set_num_parameters(engine.num_parameters());
  info.set_vocab_size(m.vocab_size);
  info.set_hidden_size(m.hidden_size);
  info.set_intermediate_size(m.intermediate_size);
  info.set_num_layers(m.num_layers);
  info.set_num_attention_heads(m.num_heads);
  info.set_num_key_value_heads(m.num_kv_heads);
  info.set_head_dim(m.head_dim);
  info.set_max_position_embeddings(m.max_position_embeddings);
  info.mutable_eos_token_ids()->Add(m.eos_token_ids.begin(), m.eos_token_ids.end());
  for (int32_t id : e.extra_eos_token_ids) {  // generation_config.json's, when new
    if (std::find(m.eos_token_ids.begin(), m.eos_token_ids.end(), id) == m.eos_token_ids.end()) {
      info.add_eos_token_ids(id);
    }
  }
  info.set_bos_token_id(m.bos_token_id);

  v1::AttnResInfo* attn_res = info.mutable_attn_res();
  const MixLayout layout = MixLayout::For(m);
  attn_res->set_enabled(m.attn_res());
  attn_res->set_mode(ResidualModeName(m.residual_mode));
  attn_res->set_block_size(m.residual_mode == ResidualMode::kBlock ? m.attn_res_block_size : 0);
  attn_res->set_num_blocks(layout.num_bank_slots);
  attn_res->set_num_mixes(layout.num_mixes);
  attn_res->mutable_sources_per_mix()->Add(layout.num_sources.begin(), layout.num_sources.end());

  v1::ServingLimits* limits = info.mutable_limits();
  limits->set_max_model_len(e.max_model_len);
  limits->set_max_num_seqs(e.max_num_seqs);
  limits->set_max_num_batched_tokens(e.max_num_batched_tokens);
  limits->set_max_queued_requests(e.max_queued_requests);
  limits->set_kv_page_size(e.kv_page_size);
  limits->set_kv_num_pages(engine.kv_num_pages());
  limits->set_max_stop_strings(kMaxStopStrings);
  limits->set_max_logprobs(kMaxLogprobs);
  limits->set_max_logit_bias(kMaxLogitBias);
  info.set_has_chat_template(ctx.chat.has_value());
  return info;
}

}  // namespace attnres
