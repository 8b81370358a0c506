#pragma once
// Small file helpers shared by the model readers and writers: whole-file reads with errors naming the file,
// JSON parsing with the file name in the message, and atomic writes (temp file in the same directory + rename,
// so a reader never sees a half-written file).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quasr::io {

bool file_exists(const std::string& path);
// Throws IoError "<path>: cannot open (...)" / "<path>: read failed".
std::vector<uint8_t> read_file_bytes(const std::string& path);
// Parses a JSON file; throws IoError naming the file and the parse error.
nlohmann::json read_json_file(const std::string& path);
// Writes `bytes` to `path` atomically; throws IoError naming the file on failure (the temp file is removed).
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
void write_text_file_atomic(const std::string& path, const std::string& text);

}  // namespace quasr::io
