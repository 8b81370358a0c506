#include "quasr/eval/dataset.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "quasr/core/error.h"
#include "quasr/core/rng.h"

namespace quasr::eval {
namespace fs = std::filesystem;
namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string where(const fs::path& file, size_t line) { return file.string() + ":" + std::to_string(line); }

std::ifstream open_manifest(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IoError("manifest " + path.string() + " does not exist or is not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open manifest " + path.string());
  return in;
}

fs::path resolve_audio(const fs::path& manifest, const std::string& audio, size_t line) {
  if (audio.empty()) throw IoError(where(manifest, line) + ": empty audio path");
  fs::path p(audio);
  if (p.is_relative()) p = manifest.parent_path() / p;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    throw IoError(where(manifest, line) + ": audio file '" + audio + "' not found (resolved to " + p.string() + ")");
  return p.lexically_normal();
}

void sort_and_check_unique(Dataset& d) {
  std::sort(d.utterances.begin(), d.utterances.end(),
            [](const Utterance& a, const Utterance& b) { return a.id < b.id; });
  for (size_t i = 1; i < d.utterances.size(); ++i)
    if (d.utterances[i].id == d.utterances[i - 1].id)
      throw IoError(d.source + ": utterance id '" + d.utterances[i].id + "' appears twice");
  if (d.utterances.empty()) throw IoError(d.source + ": no utterances");
}

// Default id of a manifest entry: its audio path as written, without the extension (unique within a manifest
// unless the same audio is listed twice, which is reported).
std::string id_from_audio(const std::string& audio) {
  const fs::path p(audio);
  return (p.parent_path() / p.stem()).generic_string();
}

}  // namespace

const char* to_string(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::LibriSpeech: return "librispeech";
    case DatasetFormat::Tsv: return "tsv";
    case DatasetFormat::Jsonl: return "jsonl";
  }
  return "?";
}

Dataset load_librispeech(const fs::path& split_dir) {
  std::error_code ec;
  if (!fs::is_directory(split_dir, ec))
    throw IoError("LibriSpeech split directory " + split_dir.string() + " does not exist");
  Dataset d;
  d.source = split_dir.string();
  d.format = DatasetFormat::LibriSpeech;
  std::vector<fs::path> transcripts;
  for (auto it = fs::recursive_directory_iterator(split_dir, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file() && name.size() > 10 && name.ends_with(".trans.txt")) transcripts.push_back(it->path());
  }
  if (transcripts.empty())
    throw IoError(split_dir.string() + " has no <speaker>-<chapter>.trans.txt files: not a LibriSpeech split");
  std::sort(transcripts.begin(), transcripts.end());
  for (const fs::path& trans : transcripts) {
    std::ifstream in(trans, std::ios::binary);
    if (!in) throw IoError("cannot open " + trans.string());
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (strip(line).empty()) continue;
      const auto space = line.find(' ');
      if (space == std::string::npos || space == 0)
        throw IoError(where(trans, line_no) + ": expected '<utterance-id> <TRANSCRIPT>'");
      Utterance u;
      u.id = line.substr(0, space);
      u.reference = strip(line.substr(space + 1));
      u.audio = trans.parent_path() / (u.id + ".flac");
      if (!fs::is_regular_file(u.audio, ec))
        throw IoError(where(trans, line_no) + ": reference for '" + u.id + "' has no audio (" + u.audio.string() +
                      " not found)");
      d.utterances.push_back(std::move(u));
    }
  }
  sort_and_check_unique(d);
  return d;
}

Dataset load_tsv_manifest(const fs::path& manifest) {
  std::ifstream in = open_manifest(manifest);
  Dataset d;
  d.source = manifest.string();
  d.format = DatasetFormat::Tsv;
  static const std::set<std::string> kAudioNames = {"path", "audio", "audio_path", "audio_filepath", "file", "filename"};
  static const std::set<std::string> kTextNames = {"reference", "text", "transcript", "transcription", "sentence"};
  std::string line;
  size_t line_no = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (strip(line).empty()) continue;
    std::vector<std::string> cols;
    for (size_t start = 0;;) {
      const auto tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (first) {
      first = false;
      if (cols.size() >= 2 && kAudioNames.count(lower_ascii(strip(cols[0]))) &&
          kTextNames.count(lower_ascii(strip(cols[1]))))
        continue;  // header
    }
    if (cols.size() < 2 || cols.size() > 3)
      throw IoError(where(manifest, line_no) + ": expected 'audio<TAB>reference[<TAB>id]', got " +
                    std::to_string(cols.size()) + " column(s)");
    Utterance u;
    u.audio = resolve_audio(manifest, strip(cols[0]), line_no);
    u.reference = strip(cols[1]);
    u.id = cols.size() == 3 && !strip(cols[2]).empty() ? strip(cols[2]) : id_from_audio(strip(cols[0]));
    d.utterances.push_back(std::move(u));
  }
  sort_and_check_unique(d);
  return d;
}

Dataset load_jsonl_manifest(const fs::path& manifest) {
  std::ifstream in = open_manifest(manifest);
  Dataset d;
  d.source = manifest.string();
  d.format = DatasetFormat::Jsonl;
  std::string line;
  size_t line_no = 0;
  auto field = [&](const nlohmann::json& j, std::initializer_list<const char*> keys, const char* what) {
    for (const char* k : keys) {
      if (!j.contains(k)) continue;
      if (!j[k].is_string()) throw IoError(where(manifest, line_no) + ": \"" + k + "\" must be a string");
      return j[k].get<std::string>();
    }
    std::string names;
    for (const char* k : keys) names += std::string(names.empty() ? "" : ", ") + "\"" + k + "\"";
    throw IoError(where(manifest, line_no) + ": no " + what + " field (one of " + names + ")");
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (strip(line).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw IoError(where(manifest, line_no) + ": malformed JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw IoError(where(manifest, line_no) + ": expected a JSON object");
    Utterance u;
    const std::string audio = field(j, {"audio", "audio_filepath", "path"}, "audio");
    u.audio = resolve_audio(manifest, audio, line_no);
    u.reference = field(j, {"text", "reference", "sentence"}, "reference");
    u.id = j.contains("id") ? field(j, {"id"}, "id") : id_from_audio(audio);
    d.utterances.push_back(std::move(u));
  }
  sort_and_check_unique(d);
  return d;
}

Dataset load_dataset(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_librispeech(path);
  const std::string ext = lower_ascii(path.extension().string());
  if (ext == ".tsv") return load_tsv_manifest(path);
  if (ext == ".jsonl" || ext == ".json") return load_jsonl_manifest(path);
  if (!fs::exists(path, ec)) throw IoError("dataset " + path.string() + " does not exist");
  throw InvalidArgument("dataset " + path.string() +
                        ": expected a LibriSpeech split directory, a .tsv or a .jsonl manifest");
}

Dataset select(const Dataset& dataset, const Selection& selection) {
  Dataset out = dataset;
  if (selection.shuffle_seed) {
    Rng rng(*selection.shuffle_seed);
    auto& v = out.utterances;
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  }
  if (selection.limit && *selection.limit < out.utterances.size()) out.utterances.resize(*selection.limit);
  return out;
}

}  // namespace quasr::eval
