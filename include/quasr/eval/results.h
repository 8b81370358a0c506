#pragma once
// Evaluation results on disk: one JSON record per utterance (JSONL) and a summary JSON per run, written
// atomically (temp file in the same directory + fsync + rename) so an interrupted run never leaves a truncated
// file that a later resume or report would trust.
//
// Typical use from a command:
//   auto n = make_normalizer("english");
//   for (utt : select(load_dataset(dir), {limit, seed}).utterances)
//     records.push_back(make_record(utt, transcribe(utt.audio), *n));
//   write_records(out / "utterances.jsonl", records);
//   auto base = summarize("fp16", records), q = summarize("int4-g64", records_q);
//   write_json_atomic(out / "summary.json", {{"systems", {to_json(base), to_json(q)}},
//                                           {"comparisons", {to_json(compare(base_records, q_records))}}});
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quasr/eval/dataset.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/wer.h"

namespace quasr::eval {

struct UtteranceRecord {
  std::string id;
  std::string audio;
  std::string reference, hypothesis;                        // raw text
  std::string reference_normalized, hypothesis_normalized;  // what was scored
  ErrorCounts words, characters;
  double audio_seconds = 0, decode_seconds = 0;  // 0 when unknown
  nlohmann::json extra = nlohmann::json::object();  // free-form: scheme, model, tokens...
};

// Normalizes both sides with `normalizer` and scores them.
UtteranceRecord make_record(const Utterance& utterance, const std::string& hypothesis,
                            const TextNormalizer& normalizer);

nlohmann::json to_json(const ErrorCounts& c);
ErrorCounts error_counts_from_json(const nlohmann::json& j);
nlohmann::json to_json(const UtteranceRecord& r);
UtteranceRecord utterance_record_from_json(const nlohmann::json& j);  // throws InvalidArgument naming the field
nlohmann::json to_json(const ConfidenceInterval& ci);
nlohmann::json to_json(const PairedComparison& c);

std::vector<ErrorCounts> word_counts(const std::vector<UtteranceRecord>& records);
std::vector<ErrorCounts> character_counts(const std::vector<UtteranceRecord>& records);

struct SystemSummary {
  std::string name;
  CorpusScore score;
  ConfidenceInterval wer_ci, cer_ci;
  double audio_seconds = 0, decode_seconds = 0;
};
SystemSummary summarize(const std::string& name, const std::vector<UtteranceRecord>& records,
                        const BootstrapOptions& options = {});
nlohmann::json to_json(const SystemSummary& s);

// Paired WER comparison of `system` against `baseline`; the records must be the same utterances (matched by
// id, in any order) or InvalidArgument says which id is missing.
PairedComparison compare_records(const std::vector<UtteranceRecord>& baseline,
                                 const std::vector<UtteranceRecord>& system, const BootstrapOptions& options = {});
// One line for people: "+1.18 points WER (4.42% -> 5.60%), 95% CI [+0.66, +1.78] (significant); better on 73,
// worse on 154, same on 305 utterances, sign test p = 8.08e-08" (`quasr eval --baseline`, `quasr compare`).
std::string comparison_text(const PairedComparison& c);

void write_text_atomic(const std::filesystem::path& path, const std::string& text);
void write_json_atomic(const std::filesystem::path& path, const nlohmann::json& j);  // pretty-printed
void write_jsonl_atomic(const std::filesystem::path& path, const std::vector<nlohmann::json>& rows);
void write_records(const std::filesystem::path& path, const std::vector<UtteranceRecord>& records);
// Reads what write_records wrote; errors name file:line.
std::vector<UtteranceRecord> read_records(const std::filesystem::path& path);

}  // namespace quasr::eval
