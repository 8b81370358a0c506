#include "quasr/io/ct2_model_bin.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "quasr/core/error.h"
#include "quasr/io/file_util.h"

namespace quasr::io {
namespace {

// Sequential reader over the file that knows how many bytes remain, so no length read from the file can make
// us allocate more than the file holds.
class BoundedReader {
 public:
  explicit BoundedReader(const std::string& path) : path_(path), f_(path, std::ios::binary | std::ios::ate) {
    if (!f_) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
    size_ = static_cast<uint64_t>(f_.tellg());
    f_.seekg(0);
  }
  uint64_t remaining() const { return size_ - pos_; }
  uint64_t pos() const { return pos_; }

  void read(void* dst, uint64_t n, const std::string& what) {
    if (n > remaining())
      throw IoError(path_ + ": truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                    std::to_string(pos_) + " but only " + std::to_string(remaining()) + " remain");
    if (n && !f_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n)))
      throw IoError(path_ + ": read failed at offset " + std::to_string(pos_));
    pos_ += n;
  }
  template <typename T>
  T scalar(const std::string& what) {
    uint8_t b[sizeof(T)];
    read(b, sizeof(T), what);
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(b[i]) << (8 * i));
    return v;
  }
  std::string string(const std::string& what) {
    const uint16_t len = scalar<uint16_t>(what + " length");
    if (len == 0) throw IoError(path_ + ": corrupt: " + what + " has length 0 (must count its NUL terminator)");
    std::string s(len, '\0');
    read(s.data(), len, what);
    if (s.back() != '\0') throw IoError(path_ + ": corrupt: " + what + " is not NUL-terminated");
    s.pop_back();
    if (s.find('\0') != std::string::npos) throw IoError(path_ + ": corrupt: " + what + " contains a NUL byte");
    return s;
  }
  [[noreturn]] void fail(const std::string& msg) const { throw IoError(path_ + ": " + msg); }

 private:
  std::string path_;
  std::ifstream f_;
  uint64_t size_ = 0, pos_ = 0;
};

// Type ids of model_spec.py's _dtype_to_type_id.
DType ct2_dtype(uint8_t id, BoundedReader& r, const std::string& name) {
  switch (id) {
    case 0: return DType::kF32;
    case 1: return DType::kI8;
    case 2: return DType::kI16;
    case 3: return DType::kI32;
    case 4: return DType::kF16;
    case 5: return DType::kBF16;
    default: r.fail("corrupt: variable '" + name + "' has unknown dtype id " + std::to_string(id));
  }
}

}  // namespace

const Tensor* Ct2ModelBin::find(const std::string& name) const {
  if (auto it = variables.find(name); it != variables.end()) return &it->second;
  if (auto a = aliases.find(name); a != aliases.end())
    if (auto it = variables.find(a->second); it != variables.end()) return &it->second;
  return nullptr;
}

Ct2ModelBin read_ct2_model_bin(const std::string& path) {
  BoundedReader r(path);
  Ct2ModelBin m;
  m.path = path;
  m.binary_version = r.scalar<uint32_t>("binary version");
  if (m.binary_version != kCt2BinaryVersion)
    r.fail("unsupported CTranslate2 binary version " + std::to_string(m.binary_version) + " (quasr reads version " +
           std::to_string(kCt2BinaryVersion) + ", written by ctranslate2 >= 3.0; re-convert the model)");
  m.spec_name = r.string("spec name");
  m.spec_revision = r.scalar<uint32_t>("spec revision");
  const uint32_t n_vars = r.scalar<uint32_t>("variable count");
  // Each variable needs at least 2+1 (name) + 1 (rank) + 1 (dtype) + 4 (size) bytes.
  if (n_vars > r.remaining() / 9) 
    r.fail("truncated or corrupt: " + std::to_string(n_vars) + " variables cannot fit in the " +
           std::to_string(r.remaining()) + " bytes left");
  std::vector<uint8_t> raw;
  for (uint32_t i = 0; i < n_vars; ++i) {
    const std::string what = "variable #" + std::to_string(i);
    std::string name = r.string(what + " name");
    const std::string vw = "variable '" + name + "'";
    const uint8_t rank = r.scalar<uint8_t>(vw + " rank");
    Tensor t;
    for (uint8_t d = 0; d < rank; ++d) t.shape.push_back(r.scalar<uint32_t>(vw + " dimension"));
    t.source_dtype = ct2_dtype(r.scalar<uint8_t>(vw + " dtype"), r, name);
    const uint32_t n_bytes = r.scalar<uint32_t>(vw + " byte count");
    const int64_t numel = checked_numel(t.shape, static_cast<int64_t>(r.remaining()));
    if (numel < 0 || static_cast<uint64_t>(numel) * dtype_size(t.source_dtype) != n_bytes)
      r.fail("corrupt: " + vw + " has shape " + t.shape_string() + " of " + dtype_name(t.source_dtype) + " but " +
             std::to_string(n_bytes) + " data bytes");
    if (n_bytes > r.remaining())
      r.fail("truncated: " + vw + " needs " + std::to_string(n_bytes) + " data bytes at offset " +
             std::to_string(r.pos()) + " but only " + std::to_string(r.remaining()) + " remain");
    raw.resize(n_bytes);
    r.read(raw.data(), n_bytes, vw + " data");
    t.values.resize(static_cast<size_t>(numel));
    decode_to_f32(t.source_dtype, raw.data(), static_cast<size_t>(numel), t.values.data());
    if (!m.variables.emplace(std::move(name), std::move(t)).second) r.fail("corrupt: duplicate " + vw);
  }
  const uint32_t n_aliases = r.scalar<uint32_t>("alias count");
  if (n_aliases > r.remaining() / 4) 
    r.fail("truncated or corrupt: " + std::to_string(n_aliases) + " aliases cannot fit in the " +
           std::to_string(r.remaining()) + " bytes left");
  for (uint32_t i = 0; i < n_aliases; ++i) {
    std::string alias = r.string("alias #" + std::to_string(i));
    std::string target = r.string("target of alias '" + alias + "'");
    if (!m.variables.count(target))
      r.fail("corrupt: alias '" + alias + "' points to unknown variable '" + target + "'");
    m.aliases.emplace(std::move(alias), std::move(target));
  }
  if (r.remaining() != 0) r.fail("corrupt: " + std::to_string(r.remaining()) + " unexpected bytes after the alias table");
  return m;
}

namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  if (s.size() + 1 > 0xFFFF) throw InvalidArgument("model.bin: name too long: " + s.substr(0, 64) + "...");
  put<uint16_t>(out, static_cast<uint16_t>(s.size() + 1));
  out.insert(out.end(), s.begin(), s.end());
  out.push_back(0);
}

uint8_t ct2_dtype_id(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kI8: return 1;
    case DType::kI16: return 2;
    case DType::kI32: return 3;
    case DType::kF16: return 4;
    case DType::kBF16: return 5;
  }
  return 0;
}

void encode_any(DType t, const std::vector<float>& values, std::vector<uint8_t>& out) {
  if (dtype_is_float(t)) return encode_from_f32(t, values, out);
  for (float v : values) {
    const int64_t i = static_cast<int64_t>(v);
    if (t == DType::kI8) put<int8_t>(out, static_cast<int8_t>(i));
    else if (t == DType::kI16) put<int16_t>(out, static_cast<int16_t>(i));
    else put<int32_t>(out, static_cast<int32_t>(i));
  }
}

}  // namespace

void write_ct2_model_bin(const std::string& path, const Ct2ModelBin& m) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, kCt2BinaryVersion);
  put_string(out, m.spec_name);
  put<uint32_t>(out, m.spec_revision);
  put<uint32_t>(out, static_cast<uint32_t>(m.variables.size()));
  for (const auto& [name, t] : m.variables) {
    if (static_cast<size_t>(t.numel()) != t.values.size())
      throw InvalidArgument("model.bin: variable '" + name + "' has shape " + t.shape_string() + " but " +
                            std::to_string(t.values.size()) + " values");
    put_string(out, name);
    put<uint8_t>(out, static_cast<uint8_t>(t.shape.size()));
    for (int64_t d : t.shape) put<uint32_t>(out, static_cast<uint32_t>(d));
    put<uint8_t>(out, ct2_dtype_id(t.source_dtype));
    put<uint32_t>(out, static_cast<uint32_t>(t.values.size() * dtype_size(t.source_dtype)));
    encode_any(t.source_dtype, t.values, out);
  }
  put<uint32_t>(out, static_cast<uint32_t>(m.aliases.size()));
  for (const auto& [alias, target] : m.aliases) {
    put_string(out, alias);
    put_string(out, target);
  }
  write_file_atomic(path, out);
}

}  // namespace quasr::io
