// `quasr compare BASELINE SYSTEM...`: the paired comparison of finished `quasr eval` runs on the same
// utterances, without decoding anything again. Each argument is an eval output directory (or its
// utterances.jsonl); every SYSTEM is compared with BASELINE the way `eval --baseline` does (paired bootstrap over
// utterances of the corpus WER difference, and the exact sign test).
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/eval/results.h"

namespace quasr::cli {

namespace {

struct CompareArgs {
  std::string baseline;
  std::vector<std::string> systems;
  std::string json_out;
};

std::filesystem::path records_path(const std::string& arg) {
  const std::filesystem::path p(arg);
  if (std::filesystem::is_directory(p)) {
    const auto f = p / "utterances.jsonl";
    if (!std::filesystem::exists(f))
      throw InvalidArgument(arg + ": no utterances.jsonl there (an output directory of quasr eval is expected)");
    return f;
  }
  if (!std::filesystem::exists(p)) throw InvalidArgument(arg + ": no such directory or file");
  return p;
}

void run(const CompareArgs& a) {
  const auto base = eval::read_records(records_path(a.baseline));
  if (base.empty()) throw InvalidArgument(a.baseline + ": no utterances to compare");
  std::printf("quasr compare: baseline %s (%zu utterances)\n", a.baseline.c_str(), base.size());
  nlohmann::json out = {{"baseline", a.baseline}, {"systems", nlohmann::json::array()}};
  for (const std::string& s : a.systems) {
    eval::PairedComparison c;
    try {
      c = eval::compare_records(base, eval::read_records(records_path(s)));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(s + " against " + a.baseline + ": " + e.what());
    }
    std::printf("  %s\n    %s\n", s.c_str(), eval::comparison_text(c).c_str());
    out["systems"].push_back({{"dir", s}, {"comparison", eval::to_json(c)}});
  }
  if (!a.json_out.empty()) {
    eval::write_json_atomic(a.json_out, out);
    std::printf("comparison: %s\n", a.json_out.c_str());
  }
}

}  // namespace

void register_compare(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Paired test of finished eval runs against a baseline (WER change, bootstrap CI, sign test)");
  cmd->add_option("baseline", a->baseline, "Output directory of the baseline's quasr eval (or its utterances.jsonl)")
      ->required();
  cmd->add_option("systems", a->systems, "Output directories of the evals to compare with it")->required();
  cmd->add_option("--json", a->json_out, "Also write the comparisons to this JSON file (atomically)");
  cmd->callback([a] { run(*a); });
}

}  // namespace quasr::cli
