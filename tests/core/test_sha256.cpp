// SHA-256 against the FIPS 180-4 example messages (NIST "Cryptographic Standards and Guidelines: Examples with
// Intermediate Values", SHA256.pdf / SHA256 long message) and against coreutils' sha256sum on a file.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "quasr/core/error.h"
#include "quasr/core/sha256.h"

using quasr::Sha256;
using quasr::sha256_file_hex;
using quasr::sha256_hex;

TEST(Sha256, FipsExampleVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingInAnyPiecesEqualsOneShot) {
  std::mt19937 rng(7);
  std::string data(3000, '\0');
  for (auto& c : data) c = char(rng());
  const std::string whole = sha256_hex(data);
  for (size_t piece : {1, 3, 55, 56, 63, 64, 65, 127, 1000}) {
    Sha256 h;
    for (size_t pos = 0; pos < data.size(); pos += piece) h.update(std::string_view(data).substr(pos, piece));
    EXPECT_EQ(h.finish_hex(), whole) << "piece " << piece;
  }
  // Lengths around the padding boundary (55/56/64 bytes) each give a distinct digest.
  EXPECT_NE(sha256_hex(data.substr(0, 55)), sha256_hex(data.substr(0, 56)));
}

TEST(Sha256, FileDigestMatchesCoreutilsSha256sum) {
  auto path = std::filesystem::temp_directory_path() / "quasr_sha256_file.bin";
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937 rng(11);
    for (int i = 0; i < (3 << 20) + 17; ++i) out.put(char(rng()));
  }
  FILE* pipe = popen(("sha256sum " + path.string()).c_str(), "r");
  if (!pipe) GTEST_SKIP() << "sha256sum not available";
  char buf[65] = {0};
  size_t got = fread(buf, 1, 64, pipe);
  int rc = pclose(pipe);
  if (rc != 0 || got != 64) GTEST_SKIP() << "sha256sum did not run";
  EXPECT_EQ(sha256_file_hex(path), std::string(buf, 64));
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file_hex(path), quasr::IoError);
}
