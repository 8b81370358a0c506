// evaluate(): model + recipe + dataset selection -> per-utterance records, WER/CER with CIs, exact size,
// modelled and measured memory, and speed. Size and memory accounting live here too (model_size,
// model_memory), so `quasr eval`, `quasr sweep` and the tests all use one implementation.
#include "quasr/eval/run.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "quasr/audio/audio.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/models/kv_cache.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_spec.h"
#include "quasr/quant/container.h"
#include "quasr/quant/recipe.h"

namespace fs = std::filesystem;

namespace quasr::eval {

namespace {

// "fp32" is the unquantized model (every weight as the runtime computes with it); anything else is a quant
// recipe (text, preset name or @file), parsed by the quant module so the grammar lives in one place.
quant::Recipe parse_recipe(const std::string& recipe) {
  if (recipe.empty()) throw InvalidArgument("empty recipe (use fp32 for the unquantized model)");
  if (recipe == "fp32") {
    quant::Recipe r;
    r.text = "fp32";
    return r;
  }
  return quant::Recipe::from_argument(recipe);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The identity of a run: a resumed file must come from the same one.
nlohmann::json run_identity(const EvalRequest& req, const std::string& model_dir) {
  return {{"model", model_dir},
          {"recipe", req.recipe},
          {"simulate", req.simulate},
          {"beam_size", req.beam_size},
          {"language", req.language},
          {"normalizer", req.normalizer}};
}

}  // namespace

SizeReport model_size(const models::WhisperConfig& config, const std::string& recipe) {
  const quant::Recipe rec = parse_recipe(recipe);
  const auto plan = quant::resolve_plan(rec, models::whisper_quantizable_tensors(config));
  std::map<std::string, const quant::PlanEntry*> by_name;
  for (const auto& e : plan) by_name.emplace(e.tensor.name, &e);
  const formats::QuantSpec fp32 = formats::QuantSpec::defaults(formats::FormatId::kFp32);
  SizeReport r;
  for (const auto& s : models::whisper_tensor_specs(config)) {
    if (!s.hf_stored) continue;
    TensorSize t;
    t.tensor = s.name;
    t.role = models::role_name(s.role);
    t.layer = s.layer;
    formats::StorageBytes b;
    if (auto it = by_name.find(s.name); it != by_name.end()) {
      const quant::PlanEntry& e = *it->second;
      b = e.storage;  // exact: expected_storage of the spec over the tensor's shape (FP32 when not quantized)
      // A runtime input scale (AWQ) is stored with its tensor: K FP32 values, counted with the scales.
      if (models::whisper_input_scaled(rec, e)) b.scales += 4 * static_cast<size_t>(e.tensor.shape.at(1));
      t.format = e.quantized ? e.weight.to_string() : fp32.to_string();
      t.activation = e.quantized ? quant::activation_text(e.act) : "none";
      t.linear = e.tensor.kind == quant::TensorInfo::Kind::kLinear;
    } else {  // norms, biases, positional embeddings: never quantized
      b = formats::expected_storage(fp32, s.shape);
      t.format = fp32.to_string();
    }
    t.bytes = static_cast<int64_t>(b.total());
    t.elements = static_cast<int64_t>(b.elements);
    r.model.bytes += t.bytes;
    r.model.elements += t.elements;
    if (t.linear) {
      r.linear.bytes += t.bytes;
      r.linear.elements += t.elements;
    }
    r.tensors.push_back(std::move(t));
  }
  return r;
}

MemoryModel model_memory(const models::WhisperConfig& c, int64_t weight_bytes, int beam_size, int threads,
                         quant::KvPrecision kv) {
  if (beam_size < 1) throw InvalidArgument("model_memory: beam size must be >= 1");
  MemoryModel m;
  m.weights = weight_bytes;
  const models::KvCacheBytes kvb = models::whisper_kv_cache_bytes(c, kv);
  m.kv_precision = quant::kv_precision_name(kv);
  m.kv_bytes_per_element = kvb.bytes_per_value();
  m.kv_self = kvb.self_total(beam_size);
  m.kv_cross = kvb.cross_total();
  const int64_t T = c.n_audio_ctx, frames = 2 * T, d = c.n_audio_state, ffn = c.n_audio_ffn;
  const int64_t mel = int64_t{c.n_mels} * frames;
  const int64_t stem = mel + frames * std::max<int64_t>(c.n_mels, d) * 3 + frames * d + T * d;
  const int64_t block = T * d + 6 * T * d + T * ffn + int64_t{std::max(threads, 1)} * 256 * T;
  m.activations = (std::max(stem, block) + T * d) * 4;
  return m;
}

int64_t peak_rss_bytes() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long long kib = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    std::fclose(f);
    if (kib >= 0) return kib * 1024;
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

void reset_peak_rss() {
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

void check_recipe(const std::string& recipe) { parse_recipe(recipe); }

fs::path resolve_dataset(const std::string& data) {
  if (data.empty()) throw InvalidArgument("no dataset given (--data: a split directory, a manifest, or mini-eval, "
                                          "mini-calib, test-clean)");
  if (fs::exists(data)) return data;
  std::vector<fs::path> candidates;
  const bool plain_name = data.find('/') == std::string::npos;
  if (plain_name) {
    if (const char* env = std::getenv("QUASR_DATA_DIR"); env && *env) {
      candidates.push_back(fs::path(env) / data);
      candidates.push_back(fs::path(env) / "LibriSpeech" / data);
    }
    const fs::path repo = QUASR_SOURCE_DIR;
    candidates.push_back(repo.parent_path() / "shared/data/LibriSpeech" / data);
    candidates.push_back(repo / "shared/data/LibriSpeech" / data);
    // A git worktree under <root>/wt/<name> shares <root>/shared.
    candidates.push_back(repo.parent_path().parent_path() / "shared/data/LibriSpeech" / data);
    for (const auto& c : candidates)
      if (fs::is_directory(c)) return c;
  }
  std::string where;
  for (const auto& c : candidates) where += (where.empty() ? "" : ", ") + c.string();
  throw InvalidArgument("dataset '" + data + "' not found: not an existing path" +
                        (plain_name ? "; looked for " + where : std::string()));
}

EvalResult evaluate(const EvalRequest& req) {
  std::ostream& log = req.progress ? *req.progress : std::cerr;
  if (req.beam_size < 1) throw InvalidArgument("beam size must be >= 1, got " + std::to_string(req.beam_size));
  if (req.threads < 0) throw InvalidArgument("threads must be >= 0 (0 = all cores), got " +
                                             std::to_string(req.threads));
  if (req.selection.limit && *req.selection.limit == 0) throw InvalidArgument("limit must be >= 1");
  if (req.write_every == 0) throw InvalidArgument("write_every must be >= 1");
  if (req.jobs < 1) throw InvalidArgument("jobs must be >= 1, got " + std::to_string(req.jobs));
  // A .quasr container is quantized already: the recipe stored in it decides the reported recipe, the size, the
  // modelled memory (its kv= precision) and the execution path.
  const bool container = models::is_model_file(req.model);
  if (container && req.recipe != "fp32")
    throw InvalidArgument("model " + req.model + " is a quantized .quasr container; a recipe (" + req.recipe +
                          ") applies to float models only");
  std::string recipe_text = req.recipe;
  if (container) {
    recipe_text = quant::read_container(req.model).recipe;
    if (recipe_text.empty()) recipe_text = "fp32";
  }
  const quant::Recipe recipe = parse_recipe(recipe_text);  // a bad recipe fails before anything loads
  const auto normalizer = make_normalizer(req.normalizer);
  // Dataset first: a missing dataset should fail before the model load.
  const fs::path data_path = resolve_dataset(req.data);
  const Dataset dataset = select(load_dataset(data_path), req.selection);
  if (dataset.utterances.empty()) throw InvalidArgument("dataset " + data_path.string() + " has no utterances");

  // With jobs > 1 the pool runs one decoding loop per job; the kernels inside a pool task run inline, so each
  // utterance is decoded on one thread.
  set_num_threads(req.jobs > 1 ? req.jobs : req.threads);
  reset_peak_rss();
  EvalResult res;
  res.model = req.model;
  res.recipe = recipe_text;
  res.data_source = dataset.source;
  res.beam_size = req.beam_size;
  res.jobs = req.jobs;
  res.threads = req.jobs > 1 ? 1 : num_threads();

  const auto t_load = std::chrono::steady_clock::now();
  // Quantized recipes run on the native low-bit kernels, or with `simulate` through the simulation path
  // (weights dequantized for FP32 compute, activations fake-quantized): the scheme's accuracy, not its speed.
  models::WhisperLoadOptions load;
  load.simulate = req.simulate;
  if (req.recipe != "fp32") load.recipe = req.recipe;
  res.execution = recipe_text == "fp32" ? "fp32" : req.simulate ? "simulated" : "native";
  const auto model = models::load_whisper_model(req.model, load);
  const auto tokenizer = models::Tokenizer::load(model->directory());
  res.speed.load_seconds = seconds_since(t_load);
  res.model_dir = model->directory();
  res.size = model_size(model->config(), recipe_text);
  std::error_code ec;
  const auto file_bytes = fs::file_size(fs::path(res.model_dir) / "model.bin", ec);
  res.size.source_file_bytes = ec ? 0 : static_cast<int64_t>(file_bytes);
  // The size report counts unquantized matrices at FP32 (the studies' baseline); the runtime holds those whose
  // values are FP16 numbers in 2 bytes each.
  res.memory = model_memory(model->config(), res.size.model.bytes - 2 * model->weight_values_held_as_fp16(),
                            req.beam_size, res.threads, recipe.kv);
  const nlohmann::json identity = run_identity(req, res.model_dir);

  const fs::path jsonl = req.out_dir.empty() ? fs::path() : req.out_dir / "utterances.jsonl";
  if (!req.out_dir.empty()) fs::create_directories(req.out_dir);

  // Resume: keep the records of utterances in this selection that a previous run of the same configuration
  // finished; everything else is decoded again.
  std::map<std::string, UtteranceRecord> done;
  if (req.resume && !jsonl.empty() && fs::exists(jsonl)) {
    for (auto& r : read_records(jsonl)) {
      const nlohmann::json got = r.extra.value("run", nlohmann::json());
      if (got != identity)
        throw ResumeMismatch("--resume: " + jsonl.string() + " holds results of another run (" + got.dump() +
                              "), not of " + identity.dump() + "; use another output directory");
      done.emplace(r.id, std::move(r));
    }
  }

  models::TranscribeOptions opt;
  opt.beam_size = req.beam_size;
  opt.language = req.language;
  opt.validate();

  const size_t n = dataset.utterances.size();
  // One slot per utterance, filled as utterances finish (in any order with jobs > 1); `mu` guards the slots, the
  // counters and the progress output.
  std::vector<std::optional<UtteranceRecord>> slots(n);
  std::vector<size_t> to_decode;
  std::mutex mu;
  ErrorCounts running;
  size_t finished = 0, since_write = 0;
  auto flush = [&] {  // under mu
    if (!jsonl.empty()) {
      std::vector<UtteranceRecord> so_far;
      for (const auto& s : slots)
        if (s) so_far.push_back(*s);
      write_records(jsonl, so_far);
    }
    since_write = 0;
  };
  auto report = [&](size_t i, bool decoded) {  // under mu
    running += slots[i]->words;
    ++finished;
    if (decoded && req.on_utterance) req.on_utterance(finished, n);
    if (!req.quiet) {
      char line[256];
      std::snprintf(line, sizeof line, "[%zu/%zu] %s WER so far %.1f%%\n", finished, n,
                    dataset.utterances[i].id.c_str(), 100.0 * running.rate());
      log << line << std::flush;
    }
  };
  for (size_t i = 0; i < n; ++i) {
    if (auto it = done.find(dataset.utterances[i].id); it != done.end()) {
      slots[i] = std::move(it->second);
      ++res.resumed;
      report(i, false);
    } else {
      to_decode.push_back(i);
    }
  }
  if (req.on_utterance) req.on_utterance(finished, n);  // the resumed ones at once, before any decoding

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto decode_loop = [&] {
    for (size_t w; !failed.load() && (w = next.fetch_add(1)) < to_decode.size();) {
      const size_t i = to_decode[w];
      const Utterance& u = dataset.utterances[i];
      try {
        const std::vector<float> samples = audio::load_audio_16k(u.audio.string());
        const auto t0 = std::chrono::steady_clock::now();
        const models::Transcription t = models::transcribe(*model, tokenizer, samples, opt);
        const double wall = seconds_since(t0);
        UtteranceRecord r = make_record(u, t.text(), *normalizer);
        r.audio_seconds = t.duration;
        r.decode_seconds = wall;
        r.extra["mel_seconds"] = t.times.mel_s;
        r.extra["encode_seconds"] = t.times.encode_s;
        r.extra["decoder_seconds"] = t.times.decode_s;
        r.extra["windows"] = t.times.windows;
        r.extra["run"] = identity;
        std::lock_guard lock(mu);
        res.speed.audio_seconds += t.duration;
        res.speed.wall_seconds += wall;
        res.speed.mel_seconds += t.times.mel_s;
        res.speed.encode_seconds += t.times.encode_s;
        res.speed.decode_seconds += t.times.decode_s;
        slots[i] = std::move(r);
        report(i, true);
        if (++since_write >= req.write_every) flush();
      } catch (...) {
        failed = true;  // the other jobs stop after their current utterance
        throw;
      }
    }
  };
  try {
    if (req.jobs == 1) {
      decode_loop();
    } else {
      parallel_for(0, req.jobs, 1, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) decode_loop();
      });
    }
  } catch (...) {
    std::lock_guard lock(mu);
    flush();  // keep every utterance that did finish; a rerun with resume starts after them
    throw;
  }
  flush();
  res.records.reserve(n);
  for (auto& s : slots) res.records.push_back(std::move(*s));
  res.summary = summarize(recipe_text, res.records, req.bootstrap);
  res.peak_rss_bytes = peak_rss_bytes();
  if (!req.out_dir.empty()) write_json_atomic(req.out_dir / "summary.json", summary_json(res));
  return res;
}

nlohmann::json summary_json(const EvalResult& r, bool with_tensors) {
  auto breakdown = [](const SizeBreakdown& b) {
    return nlohmann::json{{"bytes", b.bytes},
                          {"elements", b.elements},
                          {"bits_per_weight", b.bits_per_weight()},
                          {"compression_vs_fp32", b.compression_vs_fp32()},
                          {"compression_vs_fp16", b.compression_vs_fp16()}};
  };
  nlohmann::json size = {{"model", breakdown(r.size.model)},
                         {"linear", breakdown(r.size.linear)},
                         {"source_file_bytes", r.size.source_file_bytes}};
  if (with_tensors) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : r.size.tensors)
      tensors.push_back({{"tensor", t.tensor}, {"role", t.role}, {"layer", t.layer}, {"format", t.format}, {"activation", t.activation},
                         {"bytes", t.bytes}, {"elements", t.elements}, {"linear", t.linear}});
    size["tensors"] = std::move(tensors);
  }
  return {
      {"model", r.model},
      {"model_dir", r.model_dir},
      {"recipe", r.recipe},
      {"execution", r.execution},
      {"data", r.data_source},
      {"utterances", r.records.size()},
      {"resumed", r.resumed},
      {"beam_size", r.beam_size},
      {"threads", r.threads},
      {"jobs", r.jobs},
      {"accuracy", to_json(r.summary)},
      {"size", size},
      {"memory",
       {{"modelled",
         {{"weights", r.memory.weights},
          {"kv_self", r.memory.kv_self},
          {"kv_cross", r.memory.kv_cross},
          {"kv_precision", r.memory.kv_precision},
          {"kv_bytes_per_element", r.memory.kv_bytes_per_element},
          {"activations", r.memory.activations},
          {"total", r.memory.total()}}},
        {"peak_rss_bytes", r.peak_rss_bytes}}},
      {"speed",
       {{"audio_seconds", r.speed.audio_seconds},
        {"wall_seconds", r.speed.wall_seconds},
        {"rtf", r.speed.rtf()},
        {"mel_seconds", r.speed.mel_seconds},
        {"encode_seconds", r.speed.encode_seconds},
        {"decode_seconds", r.speed.decode_seconds},
        {"load_seconds", r.speed.load_seconds}}},
  };
}

}  // namespace quasr::eval
