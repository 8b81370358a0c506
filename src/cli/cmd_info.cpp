#include <cstdio>

#include "commands.h"
#include "quasr/core/cpu_features.h"

namespace quasr::cli {

void register_info(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("info", "Show the build and the CPU features kernels can use");
  cmd->callback([] {
    std::printf("quasr %s\n", QUASR_VERSION);
    std::printf("cpu features: %s\n", cpu_features().summary().c_str());
    std::printf("kernel isa:   %s (cap with QUASR_ISA=scalar|avx2|avxvnni|avx512|avx512vnni|amx)\n", isa_name(best_isa()));
  });
}

}  // namespace quasr::cli
