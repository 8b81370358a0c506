#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "eval_test_support.h"
#include "quasr/core/error.h"
#include "quasr/eval/dataset.h"

namespace quasr::eval {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text;

// EXPECT that `fn` throws E whose message contains `needle`.
template <typename E, typename F>
void expect_error(F&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

TEST(Dataset, LibriSpeechMiniEval) {
  const std::string dir = "/work/shared/data/LibriSpeech/mini-eval";
  const Dataset d = load_librispeech(dir);
  size_t flacs = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) flacs += e.path().extension() == ".flac";
  EXPECT_EQ(d.utterances.size(), 532u);
  EXPECT_EQ(d.utterances.size(), flacs);
  EXPECT_EQ(d.format, DatasetFormat::LibriSpeech);
  EXPECT_TRUE(std::is_sorted(d.utterances.begin(), d.utterances.end(),
                             [](const Utterance& a, const Utterance& b) { return a.id < b.id; }));
  for (const auto& u : d.utterances) {
    EXPECT_EQ(u.audio.stem().string(), u.id);
    EXPECT_TRUE(fs::is_regular_file(u.audio)) << u.audio;
    EXPECT_FALSE(u.reference.empty()) << u.id;
    EXPECT_EQ(u.reference.find(u.id), std::string::npos);  // the id is not part of the text
  }
  EXPECT_EQ(load_dataset(dir).utterances.size(), 532u);
}

// A two-chapter LibriSpeech-like tree with placeholder audio files (only their existence is checked here).
fs::path make_librispeech(const TempDir& tmp) {
  const fs::path root = tmp.path() / "split";
  fs::create_directories(root / "19" / "198");
  fs::create_directories(root / "7" / "70");
  write_text(root / "19" / "198" / "19-198.trans.txt", "19-198-0001 SECOND ONE\n19-198-0000 FIRST ONE\n");
  write_text(root / "7" / "70" / "7-70.trans.txt", "7-70-0000 A CHAPTER OF SEVEN\r\n\n");
  for (const char* f : {"19/198/19-198-0000.flac", "19/198/19-198-0001.flac", "7/70/7-70-0000.flac"})
    write_text(root / f, "");
  return root;
}

TEST(Dataset, LibriSpeechLayoutAndErrors) {
  TempDir tmp;
  const fs::path root = make_librispeech(tmp);
  const Dataset d = load_librispeech(root);
  ASSERT_EQ(d.utterances.size(), 3u);
  EXPECT_EQ(d.utterances[0].id, "19-198-0000");
  EXPECT_EQ(d.utterances[0].reference, "FIRST ONE");
  EXPECT_EQ(d.utterances[2].id, "7-70-0000");
  EXPECT_EQ(d.utterances[2].reference, "A CHAPTER OF SEVEN");  // CR stripped

  fs::remove(root / "19" / "198" / "19-198-0001.flac");
  expect_error<IoError>([&] { load_librispeech(root); }, "19-198.trans.txt:1: reference for '19-198-0001' has no audio");
  write_text(root / "19" / "198" / "19-198-0001.flac", "");
  write_text(root / "7" / "70" / "7-70.trans.txt", "7-70-0000 OK\nNOSPACE\n");
  expect_error<IoError>([&] { load_librispeech(root); }, "7-70.trans.txt:2:");
  expect_error<IoError>([&] { load_librispeech(tmp.path() / "missing"); }, "does not exist");
  fs::create_directories(tmp.path() / "empty");
  expect_error<IoError>([&] { load_librispeech(tmp.path() / "empty"); }, "not a LibriSpeech split");
}

TEST(Dataset, TsvManifest) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "wav");
  write_text(tmp.path() / "wav" / "b.wav", "");
  write_text(tmp.path() / "wav" / "a.wav", "");
  write_text(tmp.path() / "abs.flac", "");
  write_text(tmp.file("with_header.tsv"), "path\treference\nwav/b.wav\tbee\n" + tmp.file("abs.flac") +
                                              "\tabsolute path\t my-id \nwav/a.wav\t ay \n");
  const Dataset d = load_dataset(tmp.file("with_header.tsv"));
  EXPECT_EQ(d.format, DatasetFormat::Tsv);
  ASSERT_EQ(d.utterances.size(), 3u);
  EXPECT_EQ(d.utterances[0].id, "my-id");
  EXPECT_EQ(d.utterances[0].reference, "absolute path");
  EXPECT_EQ(d.utterances[1].id, "wav/a");
  EXPECT_EQ(d.utterances[1].reference, "ay");
  EXPECT_EQ(d.utterances[1].audio, (tmp.path() / "wav" / "a.wav").lexically_normal());
  EXPECT_EQ(d.utterances[2].id, "wav/b");

  write_text(tmp.file("no_header.tsv"), "wav/a.wav\tay\n");
  EXPECT_EQ(load_tsv_manifest(tmp.file("no_header.tsv")).utterances.size(), 1u);
  write_text(tmp.file("bad.tsv"), "audio\ttext\nwav/a.wav\tay\nwav/b.wav no tab here\n");
  expect_error<IoError>([&] { load_tsv_manifest(tmp.file("bad.tsv")); }, "bad.tsv:3: expected 'audio<TAB>reference");
  write_text(tmp.file("missing.tsv"), "wav/a.wav\tay\nwav/c.wav\tsee\n");
  expect_error<IoError>([&] { load_tsv_manifest(tmp.file("missing.tsv")); }, "missing.tsv:2: audio file 'wav/c.wav' not found");
  write_text(tmp.file("dup.tsv"), "wav/a.wav\tay\nwav/a.wav\tay again\n");
  expect_error<IoError>([&] { load_tsv_manifest(tmp.file("dup.tsv")); }, "'wav/a' appears twice");
  expect_error<IoError>([&] { load_tsv_manifest(tmp.file("nope.tsv")); }, "does not exist");
  write_text(tmp.file("empty.tsv"), "path\treference\n");
  expect_error<IoError>([&] { load_tsv_manifest(tmp.file("empty.tsv")); }, "no utterances");
}

TEST(Dataset, JsonlManifest) {
  TempDir tmp;
  write_text(tmp.file("x.flac"), "");
  write_text(tmp.file("y.flac"), "");
  write_text(tmp.file("m.jsonl"),
             R"({"audio": "y.flac", "text": "why"})" "\n\n"
             R"({"audio_filepath": "x.flac", "reference": "ex", "id": "utt-x"})" "\n");
  const Dataset d = load_dataset(tmp.file("m.jsonl"));
  EXPECT_EQ(d.format, DatasetFormat::Jsonl);
  ASSERT_EQ(d.utterances.size(), 2u);
  EXPECT_EQ(d.utterances[0].id, "utt-x");
  EXPECT_EQ(d.utterances[0].reference, "ex");
  EXPECT_EQ(d.utterances[1].id, "y");
  EXPECT_EQ(d.utterances[1].reference, "why");

  write_text(tmp.file("bad.jsonl"), R"({"audio": "x.flac", "text": "ok"})" "\n{\"audio\": \n");
  expect_error<IoError>([&] { load_jsonl_manifest(tmp.file("bad.jsonl")); }, "bad.jsonl:2: malformed JSON");
  write_text(tmp.file("notext.jsonl"), R"({"audio": "x.flac"})" "\n");
  expect_error<IoError>([&] { load_jsonl_manifest(tmp.file("notext.jsonl")); }, "notext.jsonl:1: no reference field");
  write_text(tmp.file("type.jsonl"), R"({"audio": "x.flac", "text": 5})" "\n");
  expect_error<IoError>([&] { load_jsonl_manifest(tmp.file("type.jsonl")); }, "\"text\" must be a string");
  write_text(tmp.file("noaudio.jsonl"), R"({"audio": "z.flac", "text": "zed"})" "\n");
  expect_error<IoError>([&] { load_jsonl_manifest(tmp.file("noaudio.jsonl")); }, "audio file 'z.flac' not found");
  write_text(tmp.file("list.txt"), "");
  expect_error<InvalidArgument>([&] { load_dataset(tmp.file("list.txt")); }, "expected a LibriSpeech split directory");
}

TEST(Dataset, SelectLimitAndSeededShuffle) {
  const Dataset d = load_librispeech("/work/shared/data/LibriSpeech/mini-eval");
  auto ids = [](const Dataset& x) {
    std::vector<std::string> v;
    for (const auto& u : x.utterances) v.push_back(u.id);
    return v;
  };
  const auto all = ids(d);
  EXPECT_EQ(ids(select(d, {})), all);
  const auto first10 = ids(select(d, {10, std::nullopt}));
  EXPECT_EQ(first10, std::vector<std::string>(all.begin(), all.begin() + 10));
  EXPECT_EQ(ids(select(d, {10000, std::nullopt})), all);

  const auto s1 = ids(select(d, {std::nullopt, 1}));
  EXPECT_EQ(ids(select(d, {std::nullopt, 1})), s1);  // deterministic
  EXPECT_NE(s1, all);
  EXPECT_NE(ids(select(d, {std::nullopt, 2})), s1);
  EXPECT_EQ(std::set<std::string>(s1.begin(), s1.end()), std::set<std::string>(all.begin(), all.end()));
  const auto s1_limited = ids(select(d, {25, 1}));
  EXPECT_EQ(s1_limited, std::vector<std::string>(s1.begin(), s1.begin() + 25));
  // The 25 drawn come from many speakers (a shuffle, not a rotation of the sorted list).
  std::set<std::string> speakers;
  for (const auto& id : s1_limited) speakers.insert(id.substr(0, id.find('-')));
  EXPECT_GE(speakers.size(), 5u);
}

}  // namespace
}  // namespace quasr::eval
