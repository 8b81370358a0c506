// `quasr transcribe` as a user runs it (the built binary, $QUASR_BIN set by CTest): output formats, the timing
// line, clear errors for absurd options, empty audio, and a 10-minute file through long-form decoding with its
// peak RSS bounded.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>

#include "../models/test_decode_util.h"
#include "quasr/audio/audio.h"

namespace qt = quasr::testing;

namespace {

std::string quasr_bin() {
  const char* bin = std::getenv("QUASR_BIN");
  return bin ? bin : std::string(QUASR_BINARY_DIR) + "/quasr";
}

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun run_quasr(const qt::TempDir& tmp, const std::string& args) {
  const std::string err_file = tmp.file("stderr.txt");
  auto [rc, out] = qt::run_command(quasr_bin() + " " + args + " 2>" + err_file);
  return {rc, out, qt::read_file(err_file)};
}

std::string first_clip() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(qt::librispeech_dir() + "/test-clean"))
    if (e.path().extension() == ".flac") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files.at(0);
}

}  // namespace

TEST(TranscribeCli, TextOutputAndTimingLine) {
  qt::TempDir tmp;
  const CliRun r = run_quasr(tmp, "transcribe --beam 1 --threads 2 " + first_clip());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("stew for dinner"), std::string::npos) << r.out;
  // One timing line with every stage.
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(load [0-9.]+ ms .*mel [0-9.]+ ms .*encode [0-9.]+ ms .*)"
                                                  R"(decode [0-9.]+ ms)")))
      << r.err;
}

TEST(TranscribeCli, JsonSrtVtt) {
  qt::TempDir tmp;
  const std::string clip = first_clip();
  const CliRun j = run_quasr(tmp, "transcribe --beam 1 -f json " + clip);
  ASSERT_EQ(j.rc, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["file"], clip);
  EXPECT_EQ(doc["language"], "en");
  ASSERT_GE(doc["segments"].size(), 1u);
  EXPECT_GE(doc["segments"][0]["end"].get<double>(), doc["segments"][0]["start"].get<double>());
  EXPECT_NE(doc["text"].get<std::string>().find("stew for dinner"), std::string::npos);

  const CliRun s = run_quasr(tmp, "transcribe --beam 1 --output-format srt " + clip);
  ASSERT_EQ(s.rc, 0) << s.err;
  EXPECT_TRUE(std::regex_search(s.out, std::regex(R"(^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\S)"))) << s.out;

  const CliRun v = run_quasr(tmp, "transcribe --beam 1 --output-format vtt " + clip);
  ASSERT_EQ(v.rc, 0) << v.err;
  EXPECT_TRUE(std::regex_search(v.out, std::regex(R"(^WEBVTT\n\n00:\d\d\.\d{3} --> 00:\d\d\.\d{3}\n\S)"))) << v.out;
}

TEST(TranscribeCli, AbsurdOptionsAreClearErrors) {
  qt::TempDir tmp;
  const std::string clip = first_clip();
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{{"--beam 0", "beam size"},
                                         {"--threads -3", "--threads"},
                                         {"--output-format xml", "unknown output format 'xml'"},
                                         {"--temperature -1", "temperature"},
                                         {"--model no-such-model", "no-such-model"}}) {
    const CliRun r = run_quasr(tmp, "transcribe " + c.args + " " + clip);
    EXPECT_EQ(r.rc, 1) << c.args;
    EXPECT_NE(r.err.find("quasr: error:"), std::string::npos) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args;
  }
  const CliRun missing = run_quasr(tmp, "transcribe /no/such/file.wav");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.err.find("/no/such/file.wav"), std::string::npos) << missing.err;
  const CliRun none = run_quasr(tmp, "transcribe");
  EXPECT_NE(none.rc, 0) << "no input file is a usage error";
  EXPECT_NE(none.err.find("files is required"), std::string::npos) << none.err;
}

TEST(TranscribeCli, EmptyAudioGivesEmptyTranscript) {
  qt::TempDir tmp;
  qt::write_wav16(tmp.file("empty.wav"), {});
  const CliRun r = run_quasr(tmp, "transcribe -f json " + tmp.file("empty.wav"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["text"], "");
  EXPECT_TRUE(doc["segments"].empty());
  const CliRun t = run_quasr(tmp, "transcribe " + tmp.file("empty.wav"));
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_EQ(t.out, "");
}

// Ten minutes of LibriSpeech speech in one WAV: long-form decoding over ~20 windows must finish with segments
// that tile the file in order, and the process's peak RSS must stay bounded (nothing grows with the length but
// the audio, the mel spectrogram and the transcript).
TEST(TranscribeCli, TenMinuteFileLongForm) {
  std::vector<std::string> clips;
  for (const auto& e : std::filesystem::recursive_directory_iterator(qt::librispeech_dir() + "/mini-calib"))
    if (e.path().extension() == ".flac") clips.push_back(e.path().string());
  std::sort(clips.begin(), clips.end());
  std::vector<float> audio;
  for (const auto& c : clips) {
    const auto s = quasr::audio::load_audio_16k(c);
    audio.insert(audio.end(), s.begin(), s.end());
    if (audio.size() >= 600u * 16000u) break;
  }
  ASSERT_GE(audio.size(), 600u * 16000u) << "not enough mini-calib audio";
  audio.resize(600u * 16000u);
  const double duration = 600.0;
  qt::TempDir tmp;
  qt::write_wav16(tmp.file("ten_minutes.wav"), audio);
  audio = {};

  const CliRun r = run_quasr(tmp, "transcribe --beam 1 --threads 2 -f json " + tmp.file("ten_minutes.wav"));
  ASSERT_EQ(r.rc, 0) << r.err;
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  const double peak_mib = usage.ru_maxrss / 1024.0;  // kilobytes on Linux
  std::printf("10-minute file: peak RSS %.0f MiB; %s", peak_mib, r.err.c_str());
  EXPECT_LT(peak_mib, 1024.0) << "peak RSS of quasr transcribe on a 10-minute file";

  const auto doc = nlohmann::json::parse(r.out);
  const auto& segs = doc["segments"];
  ASSERT_GE(segs.size(), 60u) << "10 minutes of read speech should give many segments";
  double prev_start = 0;
  for (const auto& s : segs) {
    const double start = s["start"], end = s["end"];
    const double window_start = s["seek"].get<int>() * 0.01;  // mel frames of 10 ms
    EXPECT_GE(start, prev_start - 1e-9) << "segments out of order";
    EXPECT_GT(end, start);
    // Timestamps lie in the segment's 30-s window; in the last, partly padded window the model may place the final
    // timestamp a little past the end of the audio, as faster-whisper's does, so the bound is the window.
    EXPECT_GE(start, window_start - 1e-9);
    EXPECT_LE(end, window_start + 30.0 + 1e-9);
    EXPECT_LE(end, duration + 30.0);
    prev_start = start;
  }
  EXPECT_GE(segs.back()["end"].get<double>(), duration - 30.0) << "the transcript stops before the audio ends";
  std::istringstream words(doc["text"].get<std::string>());
  size_t n_words = std::distance(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>());
  EXPECT_GT(n_words, 1000u) << "about 150 words a minute are expected";
}
