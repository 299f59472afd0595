// `attnres-cli tokenize --text T [--no-special] [--json]` and
// `attnres-cli detokenize --ids 1,2,3 [--keep-special] [--json]`.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "cli_common.h"
#include "commands.h"

namespace attnres::cli {
namespace {

struct TokenizeFlags {
  std::string text;
  bool no_special = false;
  bool json = false;
};

struct DetokenizeFlags {
  std::string ids;
  bool keep_special = false;
  bool json = false;
};

int RunTokenize(const CliState& state, const TokenizeFlags& f) {
  auto stub = MakeStub(state);
  grpc::ClientContext context;
  ConfigureContext(state, &context);
  v1::TokenizeRequest request;
  request.set_text(f.text);
  if (f.no_special) request.set_add_special_tokens(false);
  v1::TokenizeResponse response;
  grpc::Status status = stub->Tokenize(&context, request, &response);
  if (!status.ok()) return PrintRpcError(status);
  if (f.json) {
    std::cout << ProtoToJson(response).dump() << std::endl;
  } else {
    std::cout << absl::StrJoin(response.token_ids(), ",") << std::endl;
  }
  return kExitOk;
}

int RunDetokenize(const CliState& state, const DetokenizeFlags& f) {
  std::vector<int32_t> ids;
  if (!ParseIdList(f.ids, &ids)) {
    return PrintUsageError("--ids must be a comma-separated list of integers, got '" + f.ids + "'");
  }
  auto stub = MakeStub(state);
  grpc::ClientContext context;
  ConfigureContext(state, &context);
  v1::DetokenizeRequest request;
  request.mutable_token_ids()->Add(ids.begin(), ids.end());
  if (f.keep_special) request.set_skip_special_tokens(false);
  v1::DetokenizeResponse response;
  grpc::Status status = stub->Detokenize(&context, request, &response);
  if (!status.ok()) return PrintRpcError(status);
  if (f.json) {
    std::cout << ProtoToJson(response).dump() << std::endl;
  } else {
    std::cout << response.text() << std::endl;
  }
  return kExitOk;
}

}  // namespace

void AddTokenizeCommands(CLI::App& app, CliState& state) {
  auto tf = std::make_shared<TokenizeFlags>();
  CLI::App* tok = app.add_subcommand("tokenize", "Text -> token ids");
  tok->add_option("--text", tf->text, "Text to tokenize")->required();
  tok->add_flag("--no-special", tf->no_special, "Do not add special tokens (e.g. BOS)");
  tok->add_flag("--json", tf->json, "Print one JSON object");
  tok->callback([&state, tf] { state.run = [&state, tf] { return RunTokenize(state, *tf); }; });

  auto df = std::make_shared<DetokenizeFlags>();
  CLI::App* detok = app.add_subcommand("detokenize", "Token ids -> text");
  detok->add_option("--ids", df->ids, "Comma-separated token ids, e.g. 1,2,3")->required();
  detok->add_flag("--keep-special", df->keep_special, "Keep special tokens in the text");
  detok->add_flag("--json", df->json, "Print one JSON object");
  detok->callback([&state, df] { state.run = [&state, df] { return RunDetokenize(state, *df); }; });
}

}  // namespace attnres::cli
