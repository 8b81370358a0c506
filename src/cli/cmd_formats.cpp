// Placeholder until the traits table lands (formats/traits.cpp); replaced by the real table printer.
#include "commands.h"

namespace quasr::cli {
void register_formats(CLI::App& app) {
  app.add_subcommand("formats", "List every number format with its bits per weight");
}
}  // namespace quasr::cli
