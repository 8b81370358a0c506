// Output formats of a transcription: plain text, JSON (segments with timings and decoding statistics), SubRip
// and WebVTT subtitles (laid out as openai-whisper's writers do).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/models/transcribe.h"

namespace quasr::models {

namespace {

std::string trim_spaces(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\n\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

TranscriptFormat parse_transcript_format(const std::string& name) {
  if (name == "txt") return TranscriptFormat::kText;
  if (name == "json") return TranscriptFormat::kJson;
  if (name == "srt") return TranscriptFormat::kSrt;
  if (name == "vtt") return TranscriptFormat::kVtt;
  throw InvalidArgument("unknown output format '" + name + "' (use txt, json, srt or vtt)");
}

std::string format_timestamp(double seconds, bool always_hours, char decimal_marker) {
  if (!(seconds >= 0)) throw InvalidArgument("negative or NaN timestamp");
  long long ms = std::llround(seconds * 1000.0);
  const long long hours = ms / 3600000;
  ms -= hours * 3600000;
  const long long minutes = ms / 60000;
  ms -= minutes * 60000;
  const long long secs = ms / 1000;
  ms -= secs * 1000;
  char buf[64];
  if (always_hours || hours > 0)
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", hours, minutes, secs, decimal_marker, ms);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld%c%03lld", minutes, secs, decimal_marker, ms);
  return buf;
}

std::string format_transcript(const Transcription& t, TranscriptFormat format, const std::string& source) {
  std::string out;
  switch (format) {
    case TranscriptFormat::kText:
      for (const auto& s : t.segments) out += trim_spaces(s.text) + "\n";
      break;
    case TranscriptFormat::kSrt:
      for (size_t i = 0; i < t.segments.size(); ++i) {
        const auto& s = t.segments[i];
        out += std::to_string(i + 1) + "\n" + format_timestamp(s.start, true, ',') + " --> " +
               format_timestamp(s.end, true, ',') + "\n" + trim_spaces(s.text) + "\n\n";
      }
      break;
    case TranscriptFormat::kVtt:
      out = "WEBVTT\n\n";
      for (const auto& s : t.segments)
        out += format_timestamp(s.start) + " --> " + format_timestamp(s.end) + "\n" + trim_spaces(s.text) + "\n\n";
      break;
    case TranscriptFormat::kJson: {
      nlohmann::json j;
      if (!source.empty()) j["file"] = source;
      j["language"] = t.language;
      j["language_probability"] = t.language_probability;
      j["duration"] = t.duration;
      j["text"] = t.text();
      j["segments"] = nlohmann::json::array();
      for (const auto& s : t.segments) {
        j["segments"].push_back({{"id", s.id},
                                 {"seek", s.seek},
                                 {"start", s.start},
                                 {"end", s.end},
                                 {"text", s.text},
                                 {"tokens", s.tokens},
                                 {"temperature", s.temperature},
                                 {"avg_logprob", s.avg_logprob},
                                 {"compression_ratio", s.compression_ratio},
                                 {"no_speech_prob", s.no_speech_prob}});
      }
      // Replace invalid UTF-8 rather than throw: decoded text is already valid, file names may not be.
      out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      break;
    }
  }
  return out;
}

}  // namespace quasr::models
