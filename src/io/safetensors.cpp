#include "quasr/io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/io/file_util.h"

namespace quasr::io {
namespace {

// A header larger than this is not a model header but a corrupt length (the reference implementation uses the
// same bound).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

bool dtype_from_safetensors(const std::string& s, DType& out) {
  if (s == "F32") out = DType::kF32;
  else if (s == "F16") out = DType::kF16;
  else if (s == "BF16") out = DType::kBF16;
  else if (s == "I8") out = DType::kI8;
  else if (s == "I16") out = DType::kI16;
  else if (s == "I32") out = DType::kI32;
  else return false;
  return true;
}

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI8: return "I8";
    case DType::kI16: return "I16";
    case DType::kI32: return "I32";
  }
  return "?";
}

// Every dtype name of the safetensors format and its element size (the raw API accepts all of them).
size_t raw_dtype_size(const std::string& s) {
  static const std::pair<const char*, size_t> kSizes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},
                                                          {"I64", 8}, {"U64", 8}, {"I32", 4}, {"U32", 4},
                                                          {"I16", 2}, {"U16", 2}, {"I8", 1},  {"U8", 1},
                                                          {"BOOL", 1}};
  for (const auto& [name, size] : kSizes)
    if (s == name) return size;
  return 0;
}

struct Entry {
  std::string name;
  std::string dtype;
  size_t elem_size = 0;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// An opened, fully validated safetensors file: the header's entries sorted by offset, the data block's start.
struct ParsedFile {
  std::ifstream f;
  uint64_t data_start = 0;
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

// Parses and checks the header. `element_size` maps a dtype name to its size (0: not readable by this reader, the
// error then lists `readable`).
ParsedFile parse_safetensors(const std::string& path, size_t (*element_size)(const std::string&),
                             const char* readable) {
  ParsedFile out;
  std::ifstream& f = out.f;
  f.open(path, std::ios::binary | std::ios::ate);
  if (!f) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  const uint64_t file_size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  auto fail = [&](const std::string& msg) -> IoError { return IoError(path + ": " + msg); };
  if (file_size < 8) throw fail("truncated: " + std::to_string(file_size) + " bytes, too short for a safetensors header");
  uint8_t len_bytes[8];
  f.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len_bytes[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes) throw fail("corrupt: header length " + std::to_string(header_len) + " is implausible");
  if (header_len > file_size - 8)
    throw fail("truncated: header of " + std::to_string(header_len) + " bytes but the file has " + std::to_string(file_size));
  std::string header(header_len, '\0');
  if (!f.read(header.data(), static_cast<std::streamsize>(header_len))) throw fail("read failed in the header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("corrupt: header is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw fail("corrupt: header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_len;
  out.data_start = 8 + header_len;

  std::vector<Entry>& entries = out.entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) throw fail("corrupt: __metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) throw fail("corrupt: __metadata__ value '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string w = "tensor '" + it.key() + "'";
    const auto& v = it.value();
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw fail("corrupt: " + w + " lacks dtype, shape or data_offsets");
    Entry e;
    e.name = it.key();
    if (v["dtype"].is_string()) {
      e.dtype = v["dtype"].get<std::string>();
      e.elem_size = element_size(e.dtype);
    }
    if (e.elem_size == 0)
      throw fail(w + " has unsupported dtype " + v["dtype"].dump() + " (quasr reads " + readable + ")");
    if (!v["shape"].is_array()) throw fail("corrupt: " + w + " shape is not an array");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw fail("corrupt: " + w + " has a non-integer or negative dimension");
      e.shape.push_back(static_cast<int64_t>(d.get<uint64_t>() > (1ull << 40) ? -1 : d.get<uint64_t>()));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw fail("corrupt: " + w + " data_offsets is not a pair of unsigned integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      throw fail("corrupt or truncated: " + w + " data_offsets [" + std::to_string(e.begin) + ", " +
                 std::to_string(e.end) + ") outside the data block of " + std::to_string(data_size) + " bytes");
    const int64_t numel = checked_numel(e.shape, static_cast<int64_t>(data_size));
    if (numel < 0 || static_cast<uint64_t>(numel) * e.elem_size != e.end - e.begin)
      throw fail("corrupt: " + w + " shape and dtype need " +
                 (numel < 0 ? std::string("more bytes than the file has")
                            : std::to_string(static_cast<uint64_t>(numel) * e.elem_size) + " bytes") +
                 " but data_offsets span " + std::to_string(e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // The data block must be tiled exactly by the tensors: no overlap (two tensors sharing bytes) and no hole.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expect = 0;
  for (const Entry& e : entries) {
    if (e.begin != expect)
      throw fail("corrupt: tensor '" + e.name + "' starts at data offset " + std::to_string(e.begin) + ", expected " +
                 std::to_string(expect) + (e.begin < expect ? " (overlaps the previous tensor)" : " (hole)"));
    expect = e.end;
  }
  if (expect != data_size)
    throw fail("corrupt: " + std::to_string(data_size - expect) + " bytes after the last tensor's data");
  return out;
}

void read_entry(ParsedFile& p, const std::string& path, const Entry& e, std::vector<uint8_t>& raw) {
  raw.resize(e.end - e.begin);
  p.f.seekg(static_cast<std::streamoff>(p.data_start + e.begin));
  if (!raw.empty() && !p.f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size())))
    throw IoError(path + ": read failed in tensor '" + e.name + "'");
}

size_t typed_dtype_size(const std::string& s) {
  DType t;
  return dtype_from_safetensors(s, t) ? dtype_size(t) : 0;
}

// Header entries are added while the data block grows; `finish` writes both atomically.
void add_header_entry(nlohmann::json& header, const std::string& name, const std::string& dtype,
                      const std::vector<int64_t>& shape, uint64_t begin, uint64_t end) {
  if (name == "__metadata__") throw InvalidArgument("safetensors: '__metadata__' is not a valid tensor name");
  header[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

void finish_safetensors(const std::string& path, const nlohmann::json& header, const std::vector<uint8_t>& data) {
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data block to 8 bytes, as the reference writer does
  std::vector<uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  bytes.insert(bytes.end(), h.begin(), h.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  write_file_atomic(path, bytes);
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  ParsedFile p = parse_safetensors(path, typed_dtype_size, "F32, F16, BF16, I8, I16, I32");
  SafetensorsFile out;
  out.metadata = std::move(p.metadata);
  std::vector<uint8_t> raw;
  for (Entry& e : p.entries) {
    read_entry(p, path, e, raw);
    Tensor t;
    dtype_from_safetensors(e.dtype, t.source_dtype);
    t.shape = std::move(e.shape);
    t.values.resize(raw.size() / e.elem_size);
    decode_to_f32(t.source_dtype, raw.data(), t.values.size(), t.values.data());
    out.tensors.emplace(std::move(e.name), std::move(t));
  }
  return out;
}

RawSafetensorsFile read_safetensors_raw(const std::string& path) {
  ParsedFile p = parse_safetensors(path, raw_dtype_size, "F64, F32, F16, BF16, I64, U64, I32, U32, I16, U16, I8, U8, BOOL");
  RawSafetensorsFile out;
  out.metadata = std::move(p.metadata);
  for (Entry& e : p.entries) {
    RawTensor t;
    read_entry(p, path, e, t.bytes);
    t.dtype = std::move(e.dtype);
    t.shape = std::move(e.shape);
    out.tensors.emplace(std::move(e.name), std::move(t));
  }
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata, const DType* force_dtype) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint8_t> data;
  for (const auto& [name, t] : tensors) {
    if (static_cast<size_t>(t.numel()) != t.values.size())
      throw InvalidArgument("safetensors: tensor '" + name + "' has shape " + t.shape_string() + " but " +
                            std::to_string(t.values.size()) + " values");
    const DType dt = force_dtype ? *force_dtype : t.source_dtype;
    if (!dtype_is_float(dt))
      throw InvalidArgument("safetensors: tensor '" + name + "' would be stored as " + dtype_name(dt) +
                            "; only float32, float16 and bfloat16 can be written");
    const uint64_t begin = data.size();
    encode_from_f32(dt, t.values, data);
    add_header_entry(header, name, safetensors_dtype(dt), t.shape, begin, data.size());
  }
  finish_safetensors(path, header, data);
}

void write_safetensors_raw(const std::string& path, const std::map<std::string, RawTensor, std::less<>>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint8_t> data;
  for (const auto& [name, t] : tensors) {
    const size_t es = raw_dtype_size(t.dtype);
    if (es == 0) throw InvalidArgument("safetensors: tensor '" + name + "' has unknown dtype '" + t.dtype + "'");
    const int64_t numel = checked_numel(t.shape, int64_t{1} << 50);
    if (numel < 0 || static_cast<uint64_t>(numel) * es != t.bytes.size())
      throw InvalidArgument("safetensors: tensor '" + name + "' has " + std::to_string(t.bytes.size()) +
                            " bytes, which does not match its shape and dtype " + t.dtype);
    const uint64_t begin = data.size();
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    add_header_entry(header, name, t.dtype, t.shape, begin, data.size());
  }
  finish_safetensors(path, header, data);
}

}  // namespace quasr::io
