#pragma once
// SHA-256 (FIPS 180-4), written here so quasr needs no crypto library. Used for sweep point identities, source-model hashes in .quasr containers,
// model/dataset content ids and the self-checksum of each point file; not for anything security-sensitive.
#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace quasr {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const uint8_t> bytes);
  void update(std::string_view text);
  std::array<uint8_t, 32> finish();  // the object must not be updated afterwards
  std::string finish_hex();          // 64 lowercase hex digits

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(std::string_view bytes);
// Streams the file; throws IoError naming it when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace quasr
