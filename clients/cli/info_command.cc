// `attnres-cli info [--json]`: GetModelInfo, as a short human summary or the full JSON object.
#include <iostream>
#include <memory>

#include "absl/strings/str_join.h"
#include "cli_common.h"
#include "commands.h"

namespace attnres::cli {
namespace {

void PrintSummary(const v1::ModelInfo& info) {
  const v1::AttnResInfo& ar = info.attn_res();
  const v1::ServingLimits& lim = info.limits();
  std::cout << "model:        " << info.model_name() << " (" << info.architecture() << ")\n"
            << "device:       " << info.device() << ", " << info.dtype() << "\n"
            << "parameters:   " << info.num_parameters() << "\n"
            << "shape:        " << info.num_layers() << " layers, hidden " << info.hidden_size()
            << ", mlp " << info.intermediate_size() << ", heads " << info.num_attention_heads()
            << "/" << info.num_key_value_heads() << " x " << info.head_dim() << "\n"
            << "vocab:        " << info.vocab_size() << " (bos " << info.bos_token_id() << ", eos "
            << absl::StrJoin(info.eos_token_ids(), ",") << ")\n"
            << "residual:     " << ar.mode();
  if (ar.enabled()) {
    std::cout << " (block size " << ar.block_size() << ", " << ar.num_blocks() << " blocks, "
              << ar.num_mixes() << " mixes)";
  }
  std::cout << "\n"
            << "limits:       max_model_len " << lim.max_model_len() << ", max_num_seqs "
            << lim.max_num_seqs() << ", max_num_batched_tokens " << lim.max_num_batched_tokens()
            << ", kv " << lim.kv_num_pages() << " pages x " << lim.kv_page_size() << " tokens\n";
}

int RunInfo(const CliState& state, bool json) {
  auto stub = MakeStub(state);
  grpc::ClientContext context;
  ConfigureContext(state, &context);
  v1::ModelInfo info;
  grpc::Status status = stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) return PrintRpcError(status);
  if (json) {
    std::cout << ProtoToJson(info).dump(2) << std::endl;
  } else {
    PrintSummary(info);
  }
  return kExitOk;
}

}  // namespace

void AddInfoCommands(CLI::App& app, CliState& state) {
  CLI::App* cmd = app.add_subcommand("info", "Show the model and serving limits");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([&state, json] { state.run = [&state, json] { return RunInfo(state, *json); }; });
}

}  // namespace attnres::cli
