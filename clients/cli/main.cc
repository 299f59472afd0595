// attnres-cli: command-line client of attnres-server. Parses the global flags, lets each command
// group (commands.h) register its subcommands, and runs the chosen one. Exit codes: 0 ok,
// 1 RPC or server error, 2 usage error.
#include <iostream>

#include "cli_common.h"
#include "commands.h"

namespace attnres::cli {
namespace {

constexpr AddCommandsFn kCommandGroups[] = {
    AddHealthCommands,   AddInfoCommands, AddTokenizeCommands,
    AddGenerateCommands, AddChatCommands, AddBenchCommands,
};

int Run(int argc, char** argv) {
  CLI::App app{"attnres-cli: client of attnres-server"};
  CliState state;
  app.add_option("--target", state.target, "Server address HOST:PORT")->capture_default_str();
  app.add_option("--timeout", state.timeout_s, "Deadline of each call in seconds (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.require_subcommand(1);
  app.fallthrough();  // global flags (--target, --timeout) may also follow the command
  for (AddCommandsFn add : kCommandGroups) add(app, state);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return state.run ? state.run() : kExitUsage;
}

}  // namespace
}  // namespace attnres::cli

int main(int argc, char** argv) { return attnres::cli::Run(argc, argv); }
