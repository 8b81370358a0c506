// QTensor: block mapping, bit packing, storage accounting, serialization, and the validating entry points that
// dispatch through the traits table.
#include "quasr/formats/qtensor.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "format_impl.h"
#include "quasr/core/error.h"

namespace quasr::formats {
namespace {

constexpr char kMagic[4] = {'Q', 'S', 'R', 'T'};
constexpr uint32_t kRevision = 1;
constexpr int kMaxRank = 8;
constexpr uint32_t kMaxSpecText = 256;
constexpr int64_t kMaxElements = int64_t{1} << 40;  // 4 TiB of FP32: beyond any model; keeps byte math in range

std::string shape_text(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Coordinates of a flat row-major index, for error messages.
std::string coords_text(std::span<const int64_t> shape, int64_t flat) {
  std::vector<int64_t> c(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    c[i] = flat % shape[i];
    flat /= shape[i];
  }
  return shape_text(c);
}

// Shape rules shared by quantize and deserialize; returns numel. Throws InvalidArgument.
int64_t checked_numel(std::span<const int64_t> shape) {
  if (shape.empty() || shape.size() > kMaxRank)
    throw InvalidArgument("tensor shape must have 1 to " + std::to_string(kMaxRank) + " dims, got " +
                          std::to_string(shape.size()));
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 1)
      throw InvalidArgument("empty tensor: dim " + std::to_string(i) + " of shape " + shape_text(shape) + " is " +
                            std::to_string(shape[i]) + " (quantizing needs at least one element)");
    if (shape[i] > kMaxElements || n > kMaxElements / shape[i])
      throw InvalidArgument("tensor shape " + shape_text(shape) + " has too many elements");
    n *= shape[i];
  }
  return n;
}

// Granularity rules that depend on the shape.
void check_granularity(std::span<const int64_t> shape, const Granularity& g) {
  if (g.kind == GranularityKind::kPerChannel && g.axis >= static_cast<int>(shape.size()))
    throw InvalidArgument("per-channel axis " + std::to_string(g.axis) + " is out of range for the " +
                          std::to_string(shape.size()) + "-D tensor of shape " + shape_text(shape));
  if (g.kind == GranularityKind::kPerGroup) {
    const int64_t k = shape.back();
    if (g.group < 1) throw InvalidArgument("group size must be >= 1, got " + std::to_string(g.group));
    if (k % g.group != 0)
      throw InvalidArgument("group size " + std::to_string(g.group) + " does not divide the last (reduction) axis "
                            "of length " + std::to_string(k) + " (shape " + shape_text(shape) + ")");
  }
}

int64_t num_codebooks(std::span<const int64_t> shape, const Granularity& g) {
  return g.kind == GranularityKind::kPerChannel ? shape[g.axis] : 1;
}

// Bounds-checked little-endian reader for deserialize.
struct Reader {
  std::span<const uint8_t> bytes;
  size_t pos = 0;
  void need(size_t n, const char* what) {
    if (bytes.size() - pos < n)
      throw IoError(std::string("QTensor: truncated data while reading ") + what + " at byte " +
                    std::to_string(pos) + " (have " + std::to_string(bytes.size()) + " bytes)");
  }
  uint32_t u32(const char* what) {
    need(4, what);
    const uint32_t v = detail::get_u32(bytes.data() + pos);
    pos += 4;
    return v;
  }
  uint64_t u64(const char* what) {
    const uint64_t lo = u32(what), hi = u32(what);
    return lo | (hi << 32);
  }
  std::vector<uint8_t> take(size_t n, const char* what) {
    need(n, what);
    std::vector<uint8_t> v(bytes.begin() + pos, bytes.begin() + pos + n);
    pos += n;
    return v;
  }
};

void append_u32(std::vector<uint8_t>& out, uint32_t v) {
  uint8_t b[4];
  detail::put_u32(b, v);
  out.insert(out.end(), b, b + 4);
}
void append_u64(std::vector<uint8_t>& out, uint64_t v) {
  append_u32(out, static_cast<uint32_t>(v));
  append_u32(out, static_cast<uint32_t>(v >> 32));
}

// Content checks on a deserialized tensor whose section sizes are already right: everything a quantizer can
// never produce is corruption (non-finite or negative scales, NaN element codes, set padding bits).
void check_contents(const QTensor& q) {
  const FormatTraits& f = traits(q.spec.format);
  auto corrupt = [](const std::string& what) { throw IoError("QTensor: corrupt data: " + what); };
  // Largest |code value| a scale multiplies: a scale that would overflow FP32 on it is not one a quantizer
  // (which derives scales from finite data) can write.
  double top_code = 1;
  if (f.kind == FormatKind::kInteger) top_code = std::ldexp(1.0, f.bits);
  if (f.element) top_code = f.element->max_finite();
  const int64_t nb = q.scales.empty() ? 0 : q.num_blocks();
  for (int64_t b = 0; b < nb; ++b) {
    if (q.spec.scale_type == ScaleType::kE8M0 && q.scales[b] == kE8M0Nan)
      corrupt("E8M0 scale of block " + std::to_string(b) + " is NaN");
    const float s = detail::read_scale(q.scales, b, q.spec.scale_type);
    if (!std::isfinite(s) || std::signbit(s) || !std::isfinite(static_cast<float>(top_code * s)))
      corrupt("scale of block " + std::to_string(b) + " is " + std::to_string(s));
  }
  if (f.kind == FormatKind::kNvfp4 &&
      !(std::isfinite(q.tensor_scale) && q.tensor_scale > 0 && std::isfinite(q.tensor_scale * 448.0f * 6.0f)))
    corrupt("NVFP4 tensor scale is " + std::to_string(q.tensor_scale));
  for (size_t i = 0; i + 1 < q.codebook.size(); i += 2)
    if (!std::isfinite(fp16_to_fp32(detail::get_u16(q.codebook.data() + i))))
      corrupt("codebook entry " + std::to_string(i / 2) + " is not finite");
  const int64_t n = q.numel();
  if (f.kind == FormatKind::kStorage) {
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* p = q.payload.data() + i * (f.bits / 8);
      const float v = f.id == FormatId::kFp16   ? fp16_to_fp32(detail::get_u16(p))
                      : f.id == FormatId::kBf16 ? bf16_to_fp32(detail::get_u16(p))
                                                : detail::get_f32(p);
      if (!std::isfinite(v)) corrupt("stored element " + std::to_string(i) + " is not finite");
    }
    return;
  }
  if (f.element && f.element->has_nan()) {
    const std::vector<uint8_t> codes = unpack_bits(q.payload, f.bits, static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(minifloat_decode(*f.element, codes[i])))
        corrupt("element code " + std::to_string(i) + " is NaN or Inf");
  }
  // Padding bits after the last code must be zero (pack_bits writes zeros; anything else is not ours).
  auto check_padding = [&](const std::vector<uint8_t>& packed, size_t count, const char* what) {
    const size_t used_bits = count * static_cast<size_t>(f.bits);
    if (used_bits % 8 && !packed.empty() && (packed.back() >> (used_bits % 8)))
      corrupt(std::string("nonzero padding bits after the last ") + what);
  };
  check_padding(q.payload, static_cast<size_t>(n), "element code");
  if (!q.zero_points.empty()) check_padding(q.zero_points, static_cast<size_t>(q.num_blocks()), "zero point");
}

// Throws InvalidArgument (message prefixed by `who`) unless q's sections have the sizes its spec and shape
// require; returns them. Every reader of a hand-made QTensor (dequantize, serialize, slice_rows) starts here.
StorageBytes check_sections(const QTensor& q, const std::string& who) {
  const StorageBytes want = expected_storage(q.spec, q.shape);
  const StorageBytes have = q.storage();
  if (have.payload != want.payload || have.scales != want.scales || have.zero_points != want.zero_points ||
      have.codebook != want.codebook)
    throw InvalidArgument(who + "QTensor " + q.spec.to_string() + " " + shape_text(q.shape) +
                          ": section sizes do not match its spec and shape");
  return have;
}

}  // namespace

// ---- StorageBytes ------------------------------------------------------------------------------------------------

StorageBytes& StorageBytes::operator+=(const StorageBytes& o) {
  payload += o.payload;
  scales += o.scales;
  zero_points += o.zero_points;
  codebook += o.codebook;
  tensor_scale += o.tensor_scale;
  elements += o.elements;
  return *this;
}

StorageBytes total_storage(std::span<const QTensor> tensors) {
  StorageBytes s;
  for (const QTensor& t : tensors) s += t.storage();
  return s;
}

// ---- blocks ------------------------------------------------------------------------------------------------------

int64_t num_blocks(std::span<const int64_t> shape, const Granularity& g) {
  const int64_t n = checked_numel(shape);
  check_granularity(shape, g);
  switch (g.kind) {
    case GranularityKind::kPerTensor: return 1;
    case GranularityKind::kPerChannel: return shape[g.axis];
    case GranularityKind::kPerGroup: return n / g.group;
  }
  return 0;
}

int64_t block_index(std::span<const int64_t> shape, const Granularity& g, int64_t flat_index) {
  const int64_t n = checked_numel(shape);
  check_granularity(shape, g);
  if (flat_index < 0 || flat_index >= n)
    throw InvalidArgument("flat index " + std::to_string(flat_index) + " out of range for shape " + shape_text(shape));
  return detail::BlockMapper(shape, g)(flat_index);
}

// ---- bit packing -------------------------------------------------------------------------------------------------

std::vector<uint8_t> pack_bits(std::span<const uint8_t> codes, int bits) {
  if (bits < 1 || bits > 8) throw InvalidArgument("pack_bits: bits must be 1..8, got " + std::to_string(bits));
  const unsigned limit = 1u << bits;
  std::vector<uint8_t> out(packed_bytes(codes.size(), bits), 0);
  if (bits == 8) {
    if (!codes.empty()) std::memcpy(out.data(), codes.data(), codes.size());  // memcpy(null, ..., 0) is UB
    return out;
  }
  size_t bitpos = 0;
  for (size_t i = 0; i < codes.size(); ++i, bitpos += bits) {
    if (codes[i] >= limit)
      throw InvalidArgument("pack_bits: code " + std::to_string(codes[i]) + " at index " + std::to_string(i) +
                            " does not fit in " + std::to_string(bits) + " bits");
    // A code spans at most two bytes (bits <= 8); write the low part, then the carry into the next byte.
    const size_t byte = bitpos >> 3, shift = bitpos & 7;
    out[byte] |= static_cast<uint8_t>(codes[i] << shift);
    if (shift + bits > 8) out[byte + 1] |= static_cast<uint8_t>(codes[i] >> (8 - shift));
  }
  return out;
}

std::vector<uint8_t> unpack_bits(std::span<const uint8_t> packed, int bits, size_t count) {
  if (bits < 1 || bits > 8) throw InvalidArgument("unpack_bits: bits must be 1..8, got " + std::to_string(bits));
  if (packed.size() < packed_bytes(count, bits))
    throw InvalidArgument("unpack_bits: " + std::to_string(count) + " codes of " + std::to_string(bits) +
                          " bits need " + std::to_string(packed_bytes(count, bits)) + " bytes, got " +
                          std::to_string(packed.size()));
  std::vector<uint8_t> out(count);
  if (bits == 8) {
    if (count) std::memcpy(out.data(), packed.data(), count);
    return out;
  }
  const unsigned mask = (1u << bits) - 1;
  size_t bitpos = 0;
  for (size_t i = 0; i < count; ++i, bitpos += bits) {
    const size_t byte = bitpos >> 3, shift = bitpos & 7;
    unsigned v = packed[byte] >> shift;
    if (shift + bits > 8) v |= static_cast<unsigned>(packed[byte + 1]) << (8 - shift);
    out[i] = static_cast<uint8_t>(v & mask);
  }
  return out;
}

// ---- QTensor -----------------------------------------------------------------------------------------------------

int64_t QTensor::numel() const {
  if (shape.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))  // a hand-built shape must not make this UB
      throw InvalidArgument("QTensor shape " + shape_text(shape) + " overflows the element count");
  return n;
}

int64_t QTensor::num_blocks() const {
  const FormatTraits& f = traits(spec.format);
  if (f.kind == FormatKind::kStorage) return 0;
  if (f.kind == FormatKind::kCodebook) {
    checked_numel(shape);
    check_granularity(shape, spec.granularity);
    return num_codebooks(shape, spec.granularity);
  }
  return formats::num_blocks(shape, spec.granularity);
}

StorageBytes QTensor::storage() const {
  StorageBytes s;
  s.payload = payload.size();
  s.scales = scales.size();
  s.zero_points = zero_points.size();
  s.codebook = codebook.size();
  s.tensor_scale = traits(spec.format).kind == FormatKind::kNvfp4 ? sizeof(float) : 0;
  s.elements = static_cast<size_t>(numel());
  return s;
}

std::vector<float> QTensor::dequantize() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  dequantize(out);
  return out;
}

void QTensor::dequantize(std::span<float> out) const {
  detail::check_dequantize_args(*this, out);
  traits(spec.format).dequantize_ref(*this, out);
}

// Bits [bit0, bit0 + nbits) of an LSB-first stream as a stream of their own (its padding bits zero).
static std::vector<uint8_t> copy_bit_range(std::span<const uint8_t> src, size_t bit0, size_t nbits) {
  std::vector<uint8_t> out((nbits + 7) / 8, 0);
  const size_t byte0 = bit0 >> 3, shift = bit0 & 7;
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned v = src[byte0 + i] >> shift;
    if (shift && byte0 + i + 1 < src.size()) v |= static_cast<unsigned>(src[byte0 + i + 1]) << (8 - shift);
    out[i] = static_cast<uint8_t>(v);
  }
  if (nbits & 7) out.back() &= static_cast<uint8_t>((1u << (nbits & 7)) - 1);
  return out;
}

QTensor slice_rows(const QTensor& q, int64_t r0, int64_t r1) {
  if (q.shape.size() < 2) throw InvalidArgument("slice_rows: needs a tensor of rank >= 2, got " + shape_text(q.shape));
  const int64_t rows = q.shape[0];
  if (r0 < 0 || r1 > rows || r0 >= r1)
    throw InvalidArgument("slice_rows: rows [" + std::to_string(r0) + ", " + std::to_string(r1) +
                          ") out of range for shape " + shape_text(q.shape));
  check_sections(q, "slice_rows: ");
  const FormatTraits& f = traits(q.spec.format);
  const size_t row_elems = static_cast<size_t>(q.numel() / rows);
  const size_t bits = static_cast<size_t>(f.bits);
  QTensor s;
  s.spec = q.spec;
  s.shape = q.shape;
  s.shape[0] = r1 - r0;
  s.tensor_scale = q.tensor_scale;
  s.payload = copy_bit_range(q.payload, static_cast<size_t>(r0) * row_elems * bits,
                             static_cast<size_t>(r1 - r0) * row_elems * bits);
  // The blocks (scales, zero points, codebooks) the rows use, as a range of block indices [b0, b1). Per-group
  // blocks run along the last axis and never straddle rows; per-channel blocks on axis 0 are the rows; any other
  // granularity (per-tensor, per-channel on an inner axis) uses every block, in the same order, for every row.
  const Granularity& g = q.spec.granularity;
  const int64_t nb = q.num_blocks();
  int64_t b0 = 0, b1 = nb;
  if (g.kind == GranularityKind::kPerGroup) {
    const int64_t per_row = static_cast<int64_t>(row_elems) / g.group;
    b0 = r0 * per_row;
    b1 = r1 * per_row;
  } else if (g.kind == GranularityKind::kPerChannel && g.axis == 0) {
    b0 = r0;
    b1 = r1;
  }
  auto block_bytes = [&](const std::vector<uint8_t>& v) {
    if (v.empty()) return std::vector<uint8_t>();
    const size_t per = v.size() / static_cast<size_t>(nb);
    return std::vector<uint8_t>(v.begin() + b0 * per, v.begin() + b1 * per);
  };
  s.scales = block_bytes(q.scales);      // whole bytes per block
  s.codebook = block_bytes(q.codebook);  // 2^b FP16 centroids per codebook
  if (!q.zero_points.empty())
    s.zero_points = copy_bit_range(q.zero_points, static_cast<size_t>(b0) * bits, static_cast<size_t>(b1 - b0) * bits);
  QUASR_ASSERT(s.storage().total() == expected_storage(s.spec, s.shape).total());
  return s;
}

size_t QTensor::header_bytes() const {
  return sizeof kMagic + 4 /*revision*/ + 4 + spec.to_string().size() + 4 + 8 * shape.size() + 5 * 8;
}

std::vector<uint8_t> QTensor::serialize() const {
  // Never write what deserialize would reject: the sections must be what the spec and shape require.
  const StorageBytes st = check_sections(*this, "serialize: ");
  const std::string text = spec.to_string();
  std::vector<uint8_t> out;
  out.reserve(header_bytes() + st.total());
  out.insert(out.end(), kMagic, kMagic + 4);
  append_u32(out, kRevision);
  append_u32(out, static_cast<uint32_t>(text.size()));
  out.insert(out.end(), text.begin(), text.end());
  append_u32(out, static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) append_u64(out, static_cast<uint64_t>(d));
  append_u64(out, st.payload);
  append_u64(out, st.scales);
  append_u64(out, st.zero_points);
  append_u64(out, st.codebook);
  append_u64(out, st.tensor_scale);
  QUASR_ASSERT(out.size() == header_bytes());
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), scales.begin(), scales.end());
  out.insert(out.end(), zero_points.begin(), zero_points.end());
  out.insert(out.end(), codebook.begin(), codebook.end());
  if (st.tensor_scale) {
    uint8_t b[4];
    detail::put_f32(b, tensor_scale);
    out.insert(out.end(), b, b + 4);
  }
  return out;
}

QTensor QTensor::deserialize(std::span<const uint8_t> bytes) {
  Reader r{bytes};
  r.need(4, "magic");
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) throw IoError("QTensor: bad magic (not a serialized QTensor)");
  r.pos = 4;
  const uint32_t rev = r.u32("revision");
  if (rev != kRevision)
    throw IoError("QTensor: unsupported revision " + std::to_string(rev) + " (this build reads revision " +
                  std::to_string(kRevision) + ")");
  const uint32_t text_len = r.u32("spec length");
  if (text_len == 0 || text_len > kMaxSpecText)
    throw IoError("QTensor: spec text length " + std::to_string(text_len) + " out of range");
  const std::vector<uint8_t> text_bytes = r.take(text_len, "spec text");
  QTensor q;
  const std::string text(text_bytes.begin(), text_bytes.end());
  try {
    q.spec = QuantSpec::parse(text);
  } catch (const InvalidArgument& e) {
    throw IoError(std::string("QTensor: bad spec text: ") + e.what());
  }
  // serialize() writes the canonical form; anything else was not written by it (and would not round-trip).
  if (q.spec.to_string() != text)
    throw IoError("QTensor: spec text '" + text + "' is not canonical (expected '" + q.spec.to_string() + "')");
  const uint32_t rank = r.u32("rank");
  if (rank < 1 || rank > kMaxRank) throw IoError("QTensor: rank " + std::to_string(rank) + " out of range");
  for (uint32_t i = 0; i < rank; ++i) {
    const uint64_t d = r.u64("shape");
    if (d < 1 || d > static_cast<uint64_t>(kMaxElements))
      throw IoError("QTensor: dim " + std::to_string(i) + " is " + std::to_string(d));
    q.shape.push_back(static_cast<int64_t>(d));
  }
  StorageBytes expect;
  try {
    expect = expected_storage(q.spec, q.shape);
  } catch (const InvalidArgument& e) {
    throw IoError(std::string("QTensor: spec does not fit the shape: ") + e.what());
  }
  const char* names[5] = {"payload", "scales", "zero points", "codebook", "tensor scale"};
  const size_t want[5] = {expect.payload, expect.scales, expect.zero_points, expect.codebook, expect.tensor_scale};
  size_t have[5];
  for (int i = 0; i < 5; ++i) {
    const uint64_t v = r.u64("section sizes");
    if (v != want[i])
      throw IoError(std::string("QTensor: ") + names[i] + " section is " + std::to_string(v) + " bytes, spec " +
                    text + " with shape " + shape_text(q.shape) + " needs " + std::to_string(want[i]));
    have[i] = static_cast<size_t>(v);
  }
  if (bytes.size() - r.pos != expect.total())
    throw IoError("QTensor: " + std::to_string(bytes.size() - r.pos) + " bytes after the header, expected " +
                  std::to_string(expect.total()) + (bytes.size() - r.pos < expect.total() ? " (truncated)" : ""));
  q.payload = r.take(have[0], names[0]);
  q.scales = r.take(have[1], names[1]);
  q.zero_points = r.take(have[2], names[2]);
  q.codebook = r.take(have[3], names[3]);
  if (have[4]) q.tensor_scale = detail::get_f32(r.take(4, names[4]).data());
  check_contents(q);
  return q;
}

// ---- validating entry points -------------------------------------------------------------------------------------

QTensor quantize(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  spec.validate();
  return traits(spec.format).quantize_ref(x, shape, spec);
}

namespace detail {

void validate_quantize_args(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  spec.validate();
  const int64_t n = checked_numel(shape);
  if (static_cast<size_t>(n) != x.size())
    throw InvalidArgument("shape " + shape_text(shape) + " has " + std::to_string(n) + " elements but the data has " +
                          std::to_string(x.size()));
  check_granularity(shape, spec.granularity);
  for (size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw InvalidArgument(std::string("non-finite weight (") + (std::isnan(x[i]) ? "NaN" : "Inf") +
                            ") at flat index " + std::to_string(i) + " " +
                            coords_text(shape, static_cast<int64_t>(i)) + "; quantizers need finite input");
}

}  // namespace detail

StorageBytes expected_storage(const QuantSpec& spec, std::span<const int64_t> shape) {
  spec.validate();
  const FormatTraits& f = traits(spec.format);
  const int64_t n = checked_numel(shape);
  check_granularity(shape, spec.granularity);
  StorageBytes s;
  s.elements = static_cast<size_t>(n);
  const size_t un = static_cast<size_t>(n);
  switch (f.kind) {
    case FormatKind::kStorage: s.payload = un * static_cast<size_t>(f.bits / 8); break;
    case FormatKind::kCodebook:
      s.payload = packed_bytes(un, f.bits);
      s.codebook = static_cast<size_t>(num_codebooks(shape, spec.granularity)) * (size_t{1} << f.bits) * 2;
      break;
    default: {
      const size_t nb = static_cast<size_t>(formats::num_blocks(shape, spec.granularity));
      s.payload = packed_bytes(un, f.bits);
      s.scales = nb * static_cast<size_t>(scale_type_bits(spec.scale_type) / 8);
      if (spec.zero_point) s.zero_points = packed_bytes(nb, f.bits);
      if (f.kind == FormatKind::kNvfp4) s.tensor_scale = sizeof(float);
    }
  }
  return s;
}

namespace detail {

void check_dequantize_args(const QTensor& q, std::span<float> out) {
  check_sections(q, "");
  if (out.size() != static_cast<size_t>(q.numel()))
    throw InvalidArgument("dequantize: output has " + std::to_string(out.size()) + " elements, tensor has " +
                          std::to_string(q.numel()));
}

BlockMapper::BlockMapper(std::span<const int64_t> shape, const Granularity& g) : kind(g.kind) {
  if (kind == GranularityKind::kPerChannel) {
    dim = shape[g.axis];
    stride = 1;
    for (size_t i = g.axis + 1; i < shape.size(); ++i) stride *= shape[i];
  } else if (kind == GranularityKind::kPerGroup) {
    group = g.group;
  }
}

BlockLayout group_elements(std::span<const int64_t> shape, const Granularity& g) {
  const int64_t n = checked_numel(shape);
  BlockLayout l;
  // Per-tensor, per-group and per-channel on the outermost axis (rows of a matrix, tokens of activations) are
  // runs of consecutive flat indices: offsets only, no index list to build or follow.
  const bool outer_channels = g.kind == GranularityKind::kPerChannel && g.axis == 0;
  if (g.kind == GranularityKind::kPerTensor || g.kind == GranularityKind::kPerGroup || outer_channels) {
    const int64_t nb = outer_channels ? shape[0] : g.kind == GranularityKind::kPerTensor ? 1 : n / g.group;
    const int64_t size = nb > 0 ? n / nb : 0;
    l.offsets.resize(nb + 1);
    for (int64_t b = 0; b <= nb; ++b) l.offsets[b] = b * size;
    return l;
  }
  // Per-channel: counting sort of flat indices by channel; each channel's indices stay ascending.
  const BlockMapper map(shape, g);
  const int64_t nb = shape[g.axis];
  l.contiguous = false;
  l.offsets.assign(nb + 1, n / nb);
  l.offsets[0] = 0;
  for (int64_t b = 1; b <= nb; ++b) l.offsets[b] = l.offsets[b - 1] + n / nb;
  std::vector<int64_t> fill(l.offsets.begin(), l.offsets.end() - 1);
  l.order.resize(n);
  for (int64_t i = 0; i < n; ++i) l.order[fill[map(i)]++] = i;
  return l;
}

void BlockLayout::gather(std::span<const float> x, int64_t b, std::span<float> dst) const {
  const int64_t n = size(b);
  QUASR_ASSERT(static_cast<int64_t>(dst.size()) == n);
  if (contiguous) {
    std::memcpy(dst.data(), x.data() + offsets[b], n * sizeof(float));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = x[order[offsets[b] + i]];
  }
}

float round_scale(double s, ScaleType t, int64_t block) {
  float stored = 0;
  switch (t) {
    case ScaleType::kFp32: stored = static_cast<float>(s); break;
    case ScaleType::kFp16: stored = fp16_to_fp32(fp32_to_fp16(static_cast<float>(s))); break;
    case ScaleType::kBf16: stored = bf16_to_fp32(fp32_to_bf16(static_cast<float>(s))); break;
    default: QUASR_ASSERT(false && "round_scale: E8M0/E4M3 scales are computed by their formats");
  }
  if (!std::isfinite(stored))
    throw InvalidArgument("scale " + std::to_string(s) + " of block " + std::to_string(block) +
                          " overflows its " + scale_type_name(t) + " storage; choose a wider scale type (s=fp32)");
  return stored;
}

void write_scale(std::vector<uint8_t>& scales, int64_t block, float stored, ScaleType t) {
  switch (t) {
    case ScaleType::kFp32: put_f32(scales.data() + 4 * block, stored); break;
    case ScaleType::kFp16: put_u16(scales.data() + 2 * block, fp32_to_fp16(stored)); break;
    case ScaleType::kBf16: put_u16(scales.data() + 2 * block, fp32_to_bf16(stored)); break;
    default: QUASR_ASSERT(false && "write_scale: E8M0/E4M3 scales are written by their formats");
  }
}

float read_scale(std::span<const uint8_t> scales, int64_t block, ScaleType t) {
  switch (t) {
    case ScaleType::kFp32: return get_f32(scales.data() + 4 * block);
    case ScaleType::kFp16: return fp16_to_fp32(get_u16(scales.data() + 2 * block));
    case ScaleType::kBf16: return bf16_to_fp32(get_u16(scales.data() + 2 * block));
    case ScaleType::kE8M0: return e8m0_decode(scales[block]);
    case ScaleType::kE4M3: return minifloat_decode(kFp8E4M3, scales[block]);
    case ScaleType::kNone: break;
  }
  QUASR_ASSERT(false && "read_scale: format has no scale");
  return 0;
}

double round_integer(double t, Rounding r) {
  if (r == Rounding::kHalfEven) return std::nearbyint(t);  // default FE_TONEAREST: ties to even
  return t >= 0 ? std::floor(t + 0.5) : -std::floor(-t + 0.5);
}

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
void put_f32(uint8_t* p, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  put_u32(p, u);
}
float get_f32(const uint8_t* p) {
  const uint32_t u = get_u32(p);
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

}  // namespace detail
}  // namespace quasr::formats
