// `attnres-cli generate`: builds a GenerateRequest from flags and runs it unary or streamed
// (--stream prints and flushes each chunk's text as it arrives). --json prints one JSON object
// (the GenerateResponse, streamed chunks merged) instead of the text.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.h"
#include "commands.h"

namespace attnres::cli {
namespace {

struct GenerateFlags {
  std::string prompt, prompt_ids, request_id;
  int max_tokens = 0, min_tokens = 0, top_k = 0, logprobs = 0, prompt_logprobs = 0;
  float temperature = 1, top_p = 1, min_p = 0, repetition_penalty = 1;
  float presence_penalty = 0, frequency_penalty = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  std::vector<std::string> logit_bias;  // "ID=VALUE"
  std::vector<std::string> messages;    // "ROLE:TEXT", a chat prompt
  bool no_generation_prompt = false, continue_final_message = false;
  std::string stop_token_ids;
  bool mix_weights = false, ignore_eos = false, stream = false, json = false;
  bool keep_special = false, no_special = false;
  ResponseFormatFlags response_format;
  // Options whose presence matters (proto3 `optional` fields).
  CLI::Option *o_prompt, *o_prompt_ids, *o_messages, *o_max_tokens, *o_temperature, *o_top_p,
      *o_seed;
  CLI::Option *o_repetition, *o_logprobs, *o_prompt_logprobs;
};

// Returns an empty string, or a usage error.
std::string BuildRequest(const GenerateFlags& f, v1::GenerateRequest* r) {
  if ((f.o_prompt->count() > 0) + (f.o_prompt_ids->count() > 0) + (f.o_messages->count() > 0) !=
      1) {
    return "give exactly one of --prompt, --prompt-ids and --message";
  }
  if (f.o_prompt->count() > 0) {
    r->mutable_prompt()->set_text(f.prompt);
  } else if (f.o_messages->count() > 0) {
    v1::Chat* chat = r->mutable_prompt()->mutable_chat();
    for (const std::string& m : f.messages) {
      const size_t colon = m.find(':');
      if (colon == std::string::npos || colon == 0) {
        return "--message must be ROLE:TEXT (e.g. user:Hello), got " + m;
      }
      v1::ChatMessage* message = chat->add_messages();
      message->set_role(m.substr(0, colon));
      message->set_content(m.substr(colon + 1));
    }
    if (f.no_generation_prompt) chat->set_add_generation_prompt(false);
    if (f.continue_final_message) chat->set_continue_final_message(true);
  } else {
    std::vector<int32_t> ids;
    if (!ParseIdList(f.prompt_ids, &ids)) return "--prompt-ids must be comma-separated integers";
    r->mutable_prompt()->mutable_token_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  }
  r->set_request_id(f.request_id);
  if (f.o_max_tokens->count() > 0) r->set_max_tokens(f.max_tokens);
  v1::SamplingParams* s = r->mutable_sampling();
  if (f.o_temperature->count() > 0) s->set_temperature(f.temperature);
  s->set_top_k(f.top_k);
  if (f.o_top_p->count() > 0) s->set_top_p(f.top_p);
  s->set_min_p(f.min_p);
  if (f.o_seed->count() > 0) s->set_seed(f.seed);
  if (f.o_repetition->count() > 0) s->set_repetition_penalty(f.repetition_penalty);
  s->set_presence_penalty(f.presence_penalty);
  s->set_frequency_penalty(f.frequency_penalty);
  for (const std::string& entry : f.logit_bias) {
    int32_t id = 0;
    float bias = 0;
    if (!ParseIdValue(entry, &id, &bias)) return "--logit-bias must be ID=VALUE, got " + entry;
    (*s->mutable_logit_bias())[id] = bias;
  }
  r->set_min_tokens(f.min_tokens);
  for (const std::string& stop : f.stop) r->add_stop(stop);
  if (!f.stop_token_ids.empty()) {
    std::vector<int32_t> ids;
    if (!ParseIdList(f.stop_token_ids, &ids)) return "--stop-token-ids must be integers";
    r->mutable_stop_token_ids()->Add(ids.begin(), ids.end());
  }
  r->set_ignore_eos(f.ignore_eos);
  if (f.o_logprobs->count() > 0) r->set_logprobs(f.logprobs);
  if (f.o_prompt_logprobs->count() > 0) r->set_prompt_logprobs(f.prompt_logprobs);
  r->set_return_mix_weights(f.mix_weights);
  if (f.no_special) r->set_add_special_tokens(false);
  if (f.keep_special) r->set_skip_special_tokens(false);
  return SetResponseFormat(f.response_format, r);
}

// Appends a stream chunk to the merged response (the shape --json prints).
void MergeChunk(const v1::GenerateStreamResponse& chunk, v1::GenerateResponse* merged) {
  merged->set_request_id(chunk.request_id());
  merged->mutable_text()->append(chunk.text());
  merged->mutable_token_ids()->MergeFrom(chunk.token_ids());
  merged->mutable_logprobs()->MergeFrom(chunk.logprobs());
  merged->mutable_prompt_logprobs()->MergeFrom(chunk.prompt_logprobs());
  merged->mutable_mix_weights()->MergeFrom(chunk.mix_weights());
  if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    merged->set_finish_reason(chunk.finish_reason());
    merged->set_stop_reason(chunk.stop_reason());
    *merged->mutable_usage() = chunk.usage();
    merged->mutable_tool_calls()->MergeFrom(chunk.tool_calls());
  }
}

int Finish(const v1::GenerateResponse& response, bool json, bool text_printed, int chunks) {
  if (json) {
    nlohmann::json out = ProtoToJson(response);
    if (chunks >= 0) out["num_chunks"] = chunks;
    std::cout << out.dump() << std::endl;
  } else {
    if (!text_printed) std::cout << response.text();
    std::cout << std::endl;
    // After the text it was read from (the server's --tool-call-parser with a chat's tools).
    for (const v1::ToolCall& call : response.tool_calls()) {
      std::cout << "tool call " << call.id() << ": " << call.name() << " " << call.arguments_json()
                << std::endl;
    }
    std::cerr << "[" << v1::FinishReason_Name(response.finish_reason()) << ", "
              << response.usage().prompt_tokens() << " prompt + "
              << response.usage().completion_tokens() << " completion tokens]" << std::endl;
  }
  return kExitOk;
}

int RunGenerate(const CliState& state, const GenerateFlags& f) {
  v1::GenerateRequest request;
  if (std::string error = BuildRequest(f, &request); !error.empty()) {
    return PrintUsageError(error);
  }
  auto stub = MakeStub(state);
  grpc::ClientContext context;
  ConfigureContext(state, &context);
  v1::GenerateResponse response;
  if (!f.stream) {
    grpc::Status status = stub->Generate(&context, request, &response);
    if (!status.ok()) return PrintRpcError(status);
    return Finish(response, f.json, false, -1);
  }
  auto reader = stub->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    ++chunks;
    MergeChunk(chunk, &response);
    if (!f.json && !chunk.text().empty()) std::cout << chunk.text() << std::flush;
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    if (!f.json && !response.text().empty()) std::cout << std::endl;
    return PrintRpcError(status);
  }
  return Finish(response, f.json, true, chunks);
}

}  // namespace

void AddGenerateCommands(CLI::App& app, CliState& state) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate a completion");
  f->o_prompt = cmd->add_option("--prompt", f->prompt, "Prompt text");
  f->o_prompt_ids = cmd->add_option("--prompt-ids", f->prompt_ids, "Prompt token ids: 1,2,3");
  f->o_messages = cmd->add_option("--message", f->messages,
                                  "ROLE:TEXT, a chat message (repeatable, in order): the prompt "
                                  "is the conversation, written out by the model's chat template")
                      ->expected(1)
                      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--no-generation-prompt", f->no_generation_prompt,
                "Chat: leave the last message as the template closes it instead of starting "
                "the assistant's turn");
  cmd->add_flag("--continue-final-message", f->continue_final_message,
                "Chat: continue the last message's text (e.g. a started assistant answer): the "
                "conversation is cut right after it, without the generation prompt");
  f->o_prompt->excludes(f->o_prompt_ids);
  cmd->add_option("--request-id", f->request_id, "Caller-chosen request id");
  f->o_max_tokens = cmd->add_option("--max-tokens", f->max_tokens, "Tokens to generate at most");
  cmd->add_option("--min-tokens", f->min_tokens, "Tokens to generate before EOS or a stop counts");
  f->o_temperature = cmd->add_option("--temperature", f->temperature, "0: greedy");
  cmd->add_option("--top-k", f->top_k, "0: off");
  f->o_top_p = cmd->add_option("--top-p", f->top_p, "Nucleus probability mass, (0, 1]");
  cmd->add_option("--min-p", f->min_p, "Minimum probability relative to the top token");
  f->o_seed = cmd->add_option("--seed", f->seed, "Random seed (unset: server picks)");
  cmd->add_option("--stop", f->stop, "Stop string (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--stop-token-ids", f->stop_token_ids, "Stop token ids: 1,2,3");
  f->o_repetition = cmd->add_option("--repetition-penalty", f->repetition_penalty, "(0, 10]");
  cmd->add_option("--presence-penalty", f->presence_penalty, "[-2, 2]");
  cmd->add_option("--frequency-penalty", f->frequency_penalty, "[-2, 2]");
  cmd->add_option("--logit-bias", f->logit_bias, "ID=VALUE added to a token's logit (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  f->o_logprobs = cmd->add_option("--logprobs", f->logprobs, "Top alternatives per token, [0, 20]");
  f->o_prompt_logprobs = cmd->add_option("--prompt-logprobs", f->prompt_logprobs,
                                         "Prompt token logprobs with N alternatives");
  cmd->add_flag("--mix-weights", f->mix_weights, "Return AttnRes depth-attention weights");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "Keep generating past EOS");
  cmd->add_flag("--no-special", f->no_special, "Do not add special tokens to a text prompt");
  cmd->add_flag("--keep-special", f->keep_special, "Keep special tokens in the output text");
  AddResponseFormatOptions(cmd, &f->response_format);
  cmd->add_flag("--stream", f->stream, "Stream the text as it is generated");
  cmd->add_flag("--json", f->json, "Print one JSON object");
  cmd->callback([&state, f] { state.run = [&state, f] { return RunGenerate(state, *f); }; });
}

}  // namespace attnres::cli
