#pragma once
// Evaluation sets: utterances (id, audio file, reference text) read from
//   - a LibriSpeech split directory: <spk>/<chapter>/<spk>-<chapter>-<utt>.flac + <spk>-<chapter>.trans.txt
//   - a TSV manifest: audio path <TAB> reference, one per line; an optional header line whose first two
//     columns name them (e.g. "path<TAB>reference", "audio<TAB>text"); an optional third column "id"
//   - a JSONL manifest: {"audio": ..., "text": ...} per line ("path"/"audio_filepath" and "reference"/
//     "sentence" are accepted too), optional "id".
// Relative audio paths in manifests are relative to the manifest's directory. Utterances are sorted by id, so
// the order never depends on the file system; select() then shuffles (seeded) and/or truncates.
// Errors name the file and line: a missing directory, a malformed line, a reference whose audio is missing,
// duplicate ids. Audio is not decoded here (audio/ does that), only checked to exist.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace quasr::eval {

struct Utterance {
  std::string id;
  std::filesystem::path audio;
  std::string reference;  // as written in the source (not normalized)
};

enum class DatasetFormat { LibriSpeech, Tsv, Jsonl };

struct Dataset {
  std::string source;  // the directory or manifest it was read from
  DatasetFormat format = DatasetFormat::LibriSpeech;
  std::vector<Utterance> utterances;
};

Dataset load_librispeech(const std::filesystem::path& split_dir);
Dataset load_tsv_manifest(const std::filesystem::path& manifest);
Dataset load_jsonl_manifest(const std::filesystem::path& manifest);
// A directory -> LibriSpeech; *.tsv -> TSV; *.jsonl / *.json -> JSONL; anything else -> InvalidArgument.
Dataset load_dataset(const std::filesystem::path& path);

struct Selection {
  std::optional<size_t> limit;         // keep the first N (after shuffling, when shuffling)
  std::optional<uint64_t> shuffle_seed;  // seeded Fisher-Yates over the sorted utterances (quasr::Rng)
};
// The same (dataset, selection) always gives the same utterances in the same order, on every machine.
Dataset select(const Dataset& dataset, const Selection& selection);

const char* to_string(DatasetFormat format);

}  // namespace quasr::eval
