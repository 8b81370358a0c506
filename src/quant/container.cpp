// The .quasr container (see container.h): a safetensors file with U8 sections for quantized tensors and the
// per-tensor format in its metadata. The reader trusts nothing: every size and offset is checked before use.
#include "quasr/quant/container.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/io/file_util.h"
#include "quasr/quant/hadamard.h"
#include "quasr/quant/recipe.h"

namespace quasr::quant {
namespace {

using nlohmann::json;

constexpr const char* kSections[] = {"payload", "scales", "zero_points", "codebook"};
constexpr const char* kSep = "#";
constexpr const char* kInputScale = "input_scale";
constexpr uint64_t kMaxHeader = 256ull << 20;

std::vector<uint8_t>& section(formats::QTensor& q, int i) {
  std::vector<uint8_t>* s[] = {&q.payload, &q.scales, &q.zero_points, &q.codebook};
  return *s[i];
}
const std::vector<uint8_t>& section(const formats::QTensor& q, int i) {
  return section(const_cast<formats::QTensor&>(q), i);
}
size_t expected_section(const formats::StorageBytes& s, int i) {
  const size_t v[] = {s.payload, s.scales, s.zero_points, s.codebook};
  return v[i];
}

const char* st_dtype(io::DType t) {
  switch (t) {
    case io::DType::kF32: return "F32";
    case io::DType::kF16: return "F16";
    case io::DType::kBF16: return "BF16";
    default: return nullptr;
  }
}

std::string hex_float(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", static_cast<double>(v));
  return buf;
}

// Writes `bytes` to a temp file next to `path`, fsyncs it, renames it into place and fsyncs the directory.
void write_durably(const std::string& path, const std::vector<uint8_t>& bytes) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path + ": cannot create temporary file (" + std::strerror(errno) + ")");
  size_t done = 0;
  bool ok = true;
  while (ok && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  const std::string why = std::strerror(errno);
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError(path + ": write failed (" + why + ")");
  }
  const std::string dir = fs::path(path).has_parent_path() ? fs::path(path).parent_path().string() : ".";
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// The reduction dimension K of a tensor of the container (quantized: its [out][K] view; dense: the product of its
// trailing dims), or -1 when the container has no tensor of that name.
int64_t reduction_dim(const Container& c, const std::string& name) {
  if (auto q = c.quantized.find(name); q != c.quantized.end())
    return q->second.q.shape.size() == 2 ? q->second.q.shape[1] : -1;
  auto d = c.dense.find(name);
  if (d == c.dense.end() || d->second.shape.empty() || d->second.shape[0] <= 0) return -1;
  return d->second.numel() / d->second.shape[0];
}

// Why an input scale is unusable, or "" when it is fine.
std::string input_scale_problem(const Container& c, const std::string& name, const std::vector<float>& s) {
  const int64_t k = reduction_dim(c, name);
  if (k < 0) return "belongs to no tensor of the container";
  if (static_cast<int64_t>(s.size()) != k)
    return "has " + std::to_string(s.size()) + " values, the tensor's reduction dimension K is " + std::to_string(k);
  for (size_t j = 0; j < s.size(); ++j)
    if (!std::isfinite(s[j]) || !(s[j] > 0))
      return "holds " + std::to_string(s[j]) + " at index " + std::to_string(j) + " (must be positive and finite)";
  return "";
}

// Why a tensor's Hadamard block is unusable, or "" when it is fine.
std::string hadamard_problem(const ContainerTensor& ct) {
  const int64_t b = ct.hadamard_block, k = ct.q.shape.size() == 2 ? ct.q.shape[1] : -1;
  if (!valid_hadamard_block(k, b))
    return "Hadamard block " + std::to_string(b) + " is not a power of two >= 2 dividing the reduction dimension " +
           std::to_string(k);
  return "";
}

}  // namespace

void write_container(const std::string& path, const Container& c) {
  struct Blob {
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Blob> blobs;
  json tensors = json::object();
  bool rotated = false;
  for (const auto& [name, ct] : c.quantized) {
    if (name.find(kSep) != std::string::npos) throw InvalidArgument("tensor name '" + name + "' contains '#'");
    const formats::StorageBytes want = formats::expected_storage(ct.q.spec, ct.q.shape);
    for (int i = 0; i < 4; ++i) {
      const auto& s = section(ct.q, i);
      QUASR_ASSERT(s.size() == expected_section(want, i));
      if (!s.empty()) blobs[name + kSep + kSections[i]] = {"U8", {static_cast<int64_t>(s.size())}, s};
    }
    json e = {{"spec", ct.q.spec.to_string()}, {"shape", ct.q.shape}, {"act", activation_text(ct.act)}};
    if (want.tensor_scale) e["tensor_scale"] = hex_float(ct.q.tensor_scale);
    if (ct.hadamard_block != 0) {
      if (const std::string why = hadamard_problem(ct); !why.empty())
        throw InvalidArgument("tensor '" + name + "': " + why);
      e["hadamard"] = ct.hadamard_block;
      rotated = true;
    }
    tensors[name] = e;
  }
  for (const auto& [name, t] : c.dense) {
    if (c.quantized.count(name)) throw InvalidArgument("tensor '" + name + "' is both dense and quantized");
    const char* dt = st_dtype(t.source_dtype);
    const io::DType store = dt ? t.source_dtype : io::DType::kF32;
    Blob b{dt ? dt : "F32", t.shape, {}};
    io::encode_from_f32(store, t.values, b.bytes);
    blobs[name] = std::move(b);
  }
  json scale_names = json::array();
  for (const auto& [name, s] : c.input_scales) {
    if (const std::string why = input_scale_problem(c, name, s); !why.empty())
      throw InvalidArgument("input scale of tensor '" + name + "' " + why);
    Blob b{"F32", {static_cast<int64_t>(s.size())}, {}};
    io::encode_from_f32(io::DType::kF32, s, b.bytes);
    blobs[name + kSep + kInputScale] = std::move(b);
    scale_names.push_back(name);
  }
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, b] : blobs) {
    header[name] = {{"dtype", b.dtype}, {"shape", b.shape}, {"data_offsets", {offset, offset + b.bytes.size()}}};
    offset += b.bytes.size();
  }
  json meta = json::object();
  for (const auto& [k, v] : c.extra) {
    if (k.rfind("quasr.", 0) == 0) throw InvalidArgument("metadata key '" + k + "' is reserved");
    meta[k] = v;
  }
  meta["quasr.format"] = "quasr-container";
  const int revision = rotated                  ? kContainerRevision
                       : !c.input_scales.empty() ? kContainerRevisionInputScales
                                                 : kContainerRevisionNoInputScales;
  meta["quasr.revision"] = std::to_string(revision);
  if (revision >= kContainerRevisionInputScales) meta["quasr.input_scales"] = scale_names.dump();
  meta["quasr.tensors"] = tensors.dump();
  meta["quasr.recipe"] = c.recipe;
  meta["quasr.source_sha256"] = c.source_sha256;
  header["__metadata__"] = meta;
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';
  std::vector<uint8_t> out(8);
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), h.begin(), h.end());
  out.reserve(out.size() + offset);
  for (const auto& [name, b] : blobs) out.insert(out.end(), b.bytes.begin(), b.bytes.end());
  write_durably(path, out);
}

Container read_container(const std::string& path) {
  const std::vector<uint8_t> file = io::read_file_bytes(path);
  auto bad = [&](const std::string& why) -> IoError { return IoError(path + ": not a valid quasr container: " + why); };
  if (file.size() < 8) throw bad("file of " + std::to_string(file.size()) + " bytes is too short for a header");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(file[i]) << (8 * i);
  if (n > kMaxHeader || n > file.size() - 8)
    throw bad("header length " + std::to_string(n) + " exceeds the file (" + std::to_string(file.size()) +
              " bytes): truncated or corrupt");
  json header;
  try {
    header = json::parse(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const std::exception& e) {
    throw bad(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  const uint8_t* data = file.data() + 8 + n;
  const uint64_t data_size = file.size() - 8 - n;

  // Metadata first: format and revision decide how to read the rest.
  if (!header.contains("__metadata__") || !header["__metadata__"].is_object())
    throw bad("no __metadata__ (a plain safetensors file, not a quasr container)");
  const json& meta = header["__metadata__"];
  auto meta_str = [&](const char* key) -> std::string {
    if (!meta.contains(key) || !meta[key].is_string()) throw bad(std::string("metadata lacks '") + key + "'");
    return meta[key].get<std::string>();
  };
  if (meta_str("quasr.format") != "quasr-container") throw bad("quasr.format is not 'quasr-container'");
  const std::string rev = meta_str("quasr.revision");
  int revision = 0;
  for (int r = kContainerRevisionNoInputScales; r <= kContainerRevision; ++r)
    if (rev == std::to_string(r)) revision = r;
  if (!revision)
    throw bad("unknown container revision '" + rev + "' (this build reads revisions " +
              std::to_string(kContainerRevisionNoInputScales) + " to " + std::to_string(kContainerRevision) + ")");

  // Every tensor entry: known dtype, sane shape, offsets that tile the data block exactly.
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const json& e = it.value();
    Entry en{it.key(), "", {}, 0, 0};
    try {
      en.dtype = e.at("dtype").get<std::string>();
      en.shape = e.at("shape").get<std::vector<int64_t>>();
      const auto off = e.at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2) throw bad("tensor '" + en.name + "': data_offsets must have 2 entries");
      en.begin = off[0], en.end = off[1];
    } catch (const IoError&) {
      throw;
    } catch (const std::exception& ex) {
      throw bad("tensor '" + en.name + "': malformed entry (" + ex.what() + ")");
    }
    size_t elem = en.dtype == "U8" ? 1 : en.dtype == "F32" ? 4 : (en.dtype == "F16" || en.dtype == "BF16") ? 2 : 0;
    if (!elem) throw bad("tensor '" + en.name + "': unsupported dtype '" + en.dtype + "' (U8, F32, F16, BF16)");
    const int64_t numel = io::checked_numel(en.shape, int64_t(1) << 40);
    if (numel < 0) throw bad("tensor '" + en.name + "': invalid shape");
    if (en.begin > en.end || en.end > data_size)
      throw bad("tensor '" + en.name + "': data_offsets [" + std::to_string(en.begin) + ", " + std::to_string(en.end) +
                ") outside the data block of " + std::to_string(data_size) + " bytes (truncated file?)");
    if (en.end - en.begin != static_cast<uint64_t>(numel) * elem)
      throw bad("tensor '" + en.name + "': " + std::to_string(en.end - en.begin) + " bytes do not hold its shape");
    entries.push_back(std::move(en));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t pos = 0;
  for (const Entry& e : entries) {
    if (e.begin != pos) throw bad("tensor '" + e.name + "' does not start where the previous one ends (gap or overlap)");
    pos = e.end;
  }
  if (pos != data_size)
    throw bad("the tensors end at byte " + std::to_string(pos) + " of a " + std::to_string(data_size) +
              "-byte data block (truncated or trailing bytes)");

  Container c;
  c.recipe = meta_str("quasr.recipe");
  c.source_sha256 = meta_str("quasr.source_sha256");
  for (auto it = meta.begin(); it != meta.end(); ++it)
    if (it.key().rfind("quasr.", 0) != 0 && it.value().is_string()) c.extra[it.key()] = it.value().get<std::string>();
  json qmeta;
  try {
    qmeta = json::parse(meta_str("quasr.tensors"));
  } catch (const IoError&) {
    throw;
  } catch (const std::exception& e) {
    throw bad(std::string("quasr.tensors is not valid JSON (") + e.what() + ")");
  }
  if (!qmeta.is_object()) throw bad("quasr.tensors is not a JSON object");
  for (auto it = qmeta.begin(); it != qmeta.end(); ++it) {
    ContainerTensor ct;
    const std::string& name = it.key();
    try {
      ct.q.spec = formats::QuantSpec::parse(it.value().at("spec").get<std::string>());
      ct.q.shape = it.value().at("shape").get<std::vector<int64_t>>();
      ct.act = parse_activation(it.value().at("act").get<std::string>());
      if (it.value().contains("hadamard")) ct.hadamard_block = it.value().at("hadamard").get<int64_t>();
    } catch (const std::exception& e) {
      throw bad("tensor '" + name + "': bad format entry (" + e.what() + ")");
    }
    formats::StorageBytes want;
    try {
      want = formats::expected_storage(ct.q.spec, ct.q.shape);
    } catch (const std::exception& e) {
      throw bad("tensor '" + name + "': spec does not fit its shape (" + e.what() + ")");
    }
    if (want.tensor_scale) {
      if (!it.value().contains("tensor_scale") || !it.value()["tensor_scale"].is_string())
        throw bad("tensor '" + name + "': missing tensor_scale");
      const std::string s = it.value()["tensor_scale"].get<std::string>();
      char* end = nullptr;
      const double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || !std::isfinite(v)) throw bad("tensor '" + name + "': bad tensor_scale '" + s + "'");
      ct.q.tensor_scale = static_cast<float>(v);
    }
    if (it.value().contains("hadamard")) {
      if (revision < kContainerRevision)
        throw bad("tensor '" + name + "': input rotations need container revision " +
                  std::to_string(kContainerRevision) + ", this file says " + rev);
      if (const std::string why = hadamard_problem(ct); !why.empty()) throw bad("tensor '" + name + "': " + why);
    }
    c.quantized.emplace(name, std::move(ct));
  }
  // Revision 2: the names of the tensors that have an input scale; each must come with its NAME#input_scale.
  std::map<std::string, bool> listed_scales;  // name -> its tensor was seen
  if (revision >= kContainerRevisionInputScales) {
    json names;
    try {
      names = json::parse(meta_str("quasr.input_scales"));
    } catch (const IoError&) {
      throw;
    } catch (const std::exception& e) {
      throw bad(std::string("quasr.input_scales is not valid JSON (") + e.what() + ")");
    }
    if (!names.is_array()) throw bad("quasr.input_scales is not a JSON array of tensor names");
    for (const json& n : names) {
      if (!n.is_string()) throw bad("quasr.input_scales is not a JSON array of tensor names");
      listed_scales[n.get<std::string>()] = false;
    }
  }
  for (const Entry& e : entries) {
    const size_t sep = e.name.find(kSep);
    if (sep != std::string::npos && e.name.substr(sep + 1) == kInputScale) {
      const std::string base = e.name.substr(0, sep);
      auto l = listed_scales.find(base);
      if (l == listed_scales.end())
        throw bad("input scale '" + e.name + "' is not listed in quasr.input_scales" +
                  (revision < kContainerRevisionInputScales ? " (input scales need container revision 2, this file says " + rev + ")" : ""));
      if (e.dtype != "F32" || e.shape.size() != 1) throw bad("input scale '" + e.name + "' is not a 1-D F32 tensor");
      std::vector<float>& s = c.input_scales[base];
      s.resize(static_cast<size_t>(e.shape[0]));
      io::decode_to_f32(io::DType::kF32, data + e.begin, s.size(), s.data());
      l->second = true;
      continue;
    }
    if (sep == std::string::npos) {
      if (e.dtype == "U8") throw bad("tensor '" + e.name + "': U8 data outside a quantized tensor");
      io::Tensor t;
      t.shape = e.shape;
      t.source_dtype = e.dtype == "F32" ? io::DType::kF32 : e.dtype == "F16" ? io::DType::kF16 : io::DType::kBF16;
      t.values.resize(static_cast<size_t>(t.numel()));
      io::decode_to_f32(t.source_dtype, data + e.begin, t.values.size(), t.values.data());
      if (c.quantized.count(e.name)) throw bad("tensor '" + e.name + "' is stored both dense and quantized");
      c.dense.emplace(e.name, std::move(t));
      continue;
    }
    const std::string base = e.name.substr(0, sep), part = e.name.substr(sep + 1);
    auto q = c.quantized.find(base);
    if (q == c.quantized.end()) throw bad("section '" + e.name + "' belongs to no tensor listed in quasr.tensors");
    int idx = -1;
    for (int i = 0; i < 4; ++i)
      if (part == kSections[i]) idx = i;
    if (idx < 0 || e.dtype != "U8" || e.shape.size() != 1) throw bad("section '" + e.name + "': unknown or not 1-D U8");
    section(q->second.q, idx).assign(data + e.begin, data + e.end);
  }
  for (const auto& [name, seen] : listed_scales)
    if (!seen) throw bad("input scale of tensor '" + name + "' (" + name + kSep + kInputScale +
                         ", listed in quasr.input_scales) is missing");
  for (const auto& [name, s] : c.input_scales)
    if (const std::string why = input_scale_problem(c, name, s); !why.empty())
      throw bad("input scale of tensor '" + name + "' " + why);
  for (auto& [name, ct] : c.quantized) {
    const formats::StorageBytes want = formats::expected_storage(ct.q.spec, ct.q.shape);
    for (int i = 0; i < 4; ++i)
      if (section(ct.q, i).size() != expected_section(want, i))
        throw bad("tensor '" + name + "': " + kSections[i] + " holds " + std::to_string(section(ct.q, i).size()) +
                  " bytes, " + ct.q.spec.to_string() + " of this shape needs " +
                  std::to_string(expected_section(want, i)));
  }
  return c;
}

}  // namespace quasr::quant
