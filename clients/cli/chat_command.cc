// `attnres-cli chat`: a conversation on the terminal. Each line read from stdin is a user turn;
// the whole conversation so far goes to the server as prompt.chat (written out there by the
// model's chat template) and the assistant's answer streams to stdout, one answer per turn, then
// joins the conversation. EOF ends the chat. The prompt "> " goes to stderr on a terminal only.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>

#include "cli_common.h"
#include "commands.h"

namespace attnres::cli {
namespace {

struct ChatFlags {
  std::string system;
  int max_tokens = 0;
  float temperature = 1, top_p = 1;
  uint64_t seed = 0;
  ResponseFormatFlags response_format;
  CLI::Option *o_max_tokens, *o_temperature, *o_top_p, *o_seed;
};

// What every turn's request carries (the conversation so far goes into a copy's prompt.chat):
// the sampling flags and the response format. Returns an empty string, or a usage error.
std::string BaseRequest(const ChatFlags& f, v1::GenerateRequest* r) {
  if (f.o_max_tokens->count() > 0) r->set_max_tokens(f.max_tokens);
  v1::SamplingParams* s = r->mutable_sampling();
  if (f.o_temperature->count() > 0) s->set_temperature(f.temperature);
  if (f.o_top_p->count() > 0) s->set_top_p(f.top_p);
  if (f.o_seed->count() > 0) s->set_seed(f.seed);
  return SetResponseFormat(f.response_format, r);
}

int RunChat(const CliState& state, const ChatFlags& f) {
  v1::GenerateRequest base;
  if (std::string error = BaseRequest(f, &base); !error.empty()) return PrintUsageError(error);
  auto stub = MakeStub(state);
  const bool terminal = isatty(STDIN_FILENO) != 0;
  v1::Chat chat;
  if (!f.system.empty()) {
    v1::ChatMessage* m = chat.add_messages();
    m->set_role("system");
    m->set_content(f.system);
  }
  std::string line;
  while (true) {
    if (terminal) std::cerr << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    v1::ChatMessage* user = chat.add_messages();
    user->set_role("user");
    user->set_content(line);
    grpc::ClientContext context;
    ConfigureContext(state, &context);
    v1::GenerateRequest request = base;
    *request.mutable_prompt()->mutable_chat() = chat;
    auto reader = stub->GenerateStream(&context, request);
    v1::GenerateStreamResponse chunk;
    std::string answer;
    while (reader->Read(&chunk)) {
      answer += chunk.text();
      std::cout << chunk.text() << std::flush;
    }
    const grpc::Status status = reader->Finish();
    if (status.ok() || !answer.empty()) std::cout << std::endl;
    if (!status.ok()) return PrintRpcError(status);
    v1::ChatMessage* assistant = chat.add_messages();
    assistant->set_role("assistant");
    assistant->set_content(answer);
  }
  return kExitOk;
}

}  // namespace

void AddChatCommands(CLI::App& app, CliState& state) {
  auto f = std::make_shared<ChatFlags>();
  CLI::App* cmd = app.add_subcommand(
      "chat", "Chat on the terminal: each stdin line is a user turn (needs a chat template)");
  cmd->add_option("--system", f->system, "A system message that starts the conversation");
  f->o_max_tokens = cmd->add_option("--max-tokens", f->max_tokens, "Tokens per answer at most");
  f->o_temperature = cmd->add_option("--temperature", f->temperature, "0: greedy");
  f->o_top_p = cmd->add_option("--top-p", f->top_p, "Nucleus probability mass, (0, 1]");
  f->o_seed = cmd->add_option("--seed", f->seed, "Random seed (unset: server picks)");
  AddResponseFormatOptions(cmd, &f->response_format);
  cmd->callback([&state, f] { state.run = [&state, f] { return RunChat(state, *f); }; });
}

}  // namespace attnres::cli
