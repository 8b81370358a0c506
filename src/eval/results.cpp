#include "quasr/eval/results.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unordered_map>

#include "quasr/core/error.h"

namespace quasr::eval {
namespace fs = std::filesystem;
using nlohmann::json;

UtteranceRecord make_record(const Utterance& utterance, const std::string& hypothesis,
                            const TextNormalizer& normalizer) {
  UtteranceRecord r;
  r.id = utterance.id;
  r.audio = utterance.audio.string();
  r.reference = utterance.reference;
  r.hypothesis = hypothesis;
  r.reference_normalized = normalizer(utterance.reference);
  r.hypothesis_normalized = normalizer(hypothesis);
  const UtteranceScore s = score_utterance(r.reference_normalized, r.hypothesis_normalized);
  r.words = s.words;
  r.characters = s.characters;
  r.extra["normalizer"] = normalizer.name();
  return r;
}

json to_json(const ErrorCounts& c) {
  return {{"hits", c.hits},           {"substitutions", c.substitutions}, {"deletions", c.deletions},
          {"insertions", c.insertions}, {"errors", c.errors()},           {"ref_length", c.ref_length()}};
}

namespace {

template <typename T>
T get_field(const json& j, const char* key, const char* what) {
  if (!j.is_object() || !j.contains(key)) throw InvalidArgument(std::string(what) + ": missing field \"" + key + "\"");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw InvalidArgument(std::string(what) + ": field \"" + key + "\" has the wrong type (" + e.what() + ")");
  }
}

}  // namespace

ErrorCounts error_counts_from_json(const json& j) {
  ErrorCounts c;
  c.hits = get_field<int64_t>(j, "hits", "error counts");
  c.substitutions = get_field<int64_t>(j, "substitutions", "error counts");
  c.deletions = get_field<int64_t>(j, "deletions", "error counts");
  c.insertions = get_field<int64_t>(j, "insertions", "error counts");
  if (c.hits < 0 || c.substitutions < 0 || c.deletions < 0 || c.insertions < 0)
    throw InvalidArgument("error counts: negative count");
  return c;
}

json to_json(const UtteranceRecord& r) {
  json j = {{"id", r.id},
            {"audio", r.audio},
            {"reference", r.reference},
            {"hypothesis", r.hypothesis},
            {"reference_normalized", r.reference_normalized},
            {"hypothesis_normalized", r.hypothesis_normalized},
            {"wer", r.words.rate()},
            {"cer", r.characters.rate()},
            {"words", to_json(r.words)},
            {"characters", to_json(r.characters)}};
  if (r.audio_seconds > 0) j["audio_seconds"] = r.audio_seconds;
  if (r.decode_seconds > 0) j["decode_seconds"] = r.decode_seconds;
  if (!r.extra.empty()) j["extra"] = r.extra;
  return j;
}

UtteranceRecord utterance_record_from_json(const json& j) {
  UtteranceRecord r;
  const char* what = "utterance record";
  r.id = get_field<std::string>(j, "id", what);
  r.audio = get_field<std::string>(j, "audio", what);
  r.reference = get_field<std::string>(j, "reference", what);
  r.hypothesis = get_field<std::string>(j, "hypothesis", what);
  r.reference_normalized = get_field<std::string>(j, "reference_normalized", what);
  r.hypothesis_normalized = get_field<std::string>(j, "hypothesis_normalized", what);
  r.words = error_counts_from_json(get_field<json>(j, "words", what));
  r.characters = error_counts_from_json(get_field<json>(j, "characters", what));
  if (j.contains("audio_seconds")) r.audio_seconds = get_field<double>(j, "audio_seconds", what);
  if (j.contains("decode_seconds")) r.decode_seconds = get_field<double>(j, "decode_seconds", what);
  if (j.contains("extra")) r.extra = j.at("extra");
  return r;
}

json to_json(const ConfidenceInterval& ci) {
  return {{"estimate", ci.estimate}, {"lower", ci.lower}, {"upper", ci.upper}, {"level", ci.level},
          {"resamples", ci.resamples}, {"method", "percentile bootstrap over utterances"}};
}

json to_json(const PairedComparison& c) {
  return {{"rate_a", c.rate_a},
          {"rate_b", c.rate_b},
          {"delta", c.delta},
          {"delta_ci", {{"lower", c.delta_lower}, {"upper", c.delta_upper}, {"level", c.level}}},
          {"prob_b_worse", c.prob_b_worse},
          {"resamples", c.resamples},
          {"significant", c.significant()},
          {"sign_test", {{"b_better", c.b_better}, {"b_worse", c.b_worse}, {"ties", c.ties}, {"p", c.sign_test_p}}}};
}

std::vector<ErrorCounts> word_counts(const std::vector<UtteranceRecord>& records) {
  std::vector<ErrorCounts> out;
  for (const auto& r : records) out.push_back(r.words);
  return out;
}

std::vector<ErrorCounts> character_counts(const std::vector<UtteranceRecord>& records) {
  std::vector<ErrorCounts> out;
  for (const auto& r : records) out.push_back(r.characters);
  return out;
}

SystemSummary summarize(const std::string& name, const std::vector<UtteranceRecord>& records,
                        const BootstrapOptions& options) {
  if (records.empty()) throw InvalidArgument("summary of system '" + name + "': no utterances");
  SystemSummary s;
  s.name = name;
  std::vector<UtteranceScore> scores;
  for (const auto& r : records) {
    scores.push_back({r.words, r.characters});
    s.audio_seconds += r.audio_seconds;
    s.decode_seconds += r.decode_seconds;
  }
  s.score = score_corpus(scores);
  s.wer_ci = bootstrap_rate(word_counts(records), options);
  s.cer_ci = bootstrap_rate(character_counts(records), options);
  return s;
}

json to_json(const SystemSummary& s) {
  json j = {{"name", s.name},
            {"utterances", s.score.utterances},
            {"wer", s.score.wer()},
            {"cer", s.score.cer()},
            {"wer_ci", to_json(s.wer_ci)},
            {"cer_ci", to_json(s.cer_ci)},
            {"words", to_json(s.score.words)},
            {"characters", to_json(s.score.characters)}};
  if (s.audio_seconds > 0) j["audio_seconds"] = s.audio_seconds;
  if (s.decode_seconds > 0) j["decode_seconds"] = s.decode_seconds;
  return j;
}

PairedComparison compare_records(const std::vector<UtteranceRecord>& baseline,
                                 const std::vector<UtteranceRecord>& system, const BootstrapOptions& options) {
  if (baseline.size() != system.size())
    throw InvalidArgument("paired comparison: baseline has " + std::to_string(baseline.size()) +
                          " utterances, system " + std::to_string(system.size()));
  std::unordered_map<std::string, const UtteranceRecord*> by_id;
  for (const auto& r : system) by_id[r.id] = &r;
  std::vector<ErrorCounts> a, b;
  for (const auto& r : baseline) {
    const auto it = by_id.find(r.id);
    if (it == by_id.end()) throw InvalidArgument("paired comparison: utterance '" + r.id + "' missing from system");
    a.push_back(r.words);
    b.push_back(it->second->words);
  }
  return compare_paired(a, b, options);
}

std::string comparison_text(const PairedComparison& c) {
  char b[320];
  std::snprintf(b, sizeof b,
                "%+.2f points WER (%.2f%% -> %.2f%%), %.0f%% CI [%+.2f, %+.2f]%s; better on %lld, worse on %lld, "
                "same on %lld utterances, sign test p = %.3g",
                100 * c.delta, 100 * c.rate_a, 100 * c.rate_b, 100 * c.level, 100 * c.delta_lower,
                100 * c.delta_upper, c.significant() ? " (significant)" : " (not significant)",
                static_cast<long long>(c.b_better), static_cast<long long>(c.b_worse),
                static_cast<long long>(c.ties), c.sign_test_p);
  return b;
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  static std::atomic<int> counter{0};
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError("cannot write " + path.string() + ": directory " + dir.string() + " does not exist");
  std::string tmp_name = path.filename().string();  // hidden sibling: ".<name>.tmp.<pid>.<n>"
  tmp_name.insert(tmp_name.begin(), '.');
  tmp_name += ".tmp.";
  tmp_name += std::to_string(::getpid());
  tmp_name += '.';
  tmp_name += std::to_string(counter++);
  const fs::path tmp = dir / tmp_name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      fs::remove(tmp, ec);
      throw IoError("cannot write " + tmp.string() + ": " + err);
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string err = std::strerror(errno);
    fs::remove(tmp, ec);
    throw IoError("cannot flush " + tmp.string() + ": " + err);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  }
}

void write_json_atomic(const fs::path& path, const json& j) { write_text_atomic(path, j.dump(2) + "\n"); }

void write_jsonl_atomic(const fs::path& path, const std::vector<json>& rows) {
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  write_text_atomic(path, text);
}

void write_records(const fs::path& path, const std::vector<UtteranceRecord>& records) {
  std::vector<json> rows;
  rows.reserve(records.size());
  for (const auto& r : records) rows.push_back(to_json(r));
  write_jsonl_atomic(path, rows);
}

std::vector<UtteranceRecord> read_records(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + path.string());
  std::vector<UtteranceRecord> out;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw IoError(where + ": malformed JSON (" + e.what() + ")");
    }
    try {
      out.push_back(utterance_record_from_json(j));
    } catch (const InvalidArgument& e) {
      throw IoError(where + ": " + e.what());
    }
  }
  return out;
}

}  // namespace quasr::eval
