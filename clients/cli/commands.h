// The attnres-cli command registry: each command group adds its CLI11 subcommands and, when
// one is chosen, sets CliState::run. A new group (e.g. bench) adds one Add*Commands function
// here and one line in kCommandGroups (main.cc).
#pragma once

#include <functional>
#include <string>

#include "CLI/CLI.hpp"

namespace attnres::cli {

// Process-wide options, filled by CLI11 before any command runs.
struct CliState {
  std::string target = "127.0.0.1:50051";
  double timeout_s = 0;      // 0: no deadline
  std::function<int()> run;  // the chosen command; returns the exit code
};

using AddCommandsFn = void (*)(CLI::App& app, CliState& state);

void AddHealthCommands(CLI::App& app, CliState& state);
void AddInfoCommands(CLI::App& app, CliState& state);
void AddTokenizeCommands(CLI::App& app, CliState& state);  // tokenize, detokenize
void AddGenerateCommands(CLI::App& app, CliState& state);
void AddChatCommands(CLI::App& app, CliState& state);
void AddBenchCommands(CLI::App& app, CliState& state);

}  // namespace attnres::cli
