// The Whisper network in FP32 (see whisper.h): built from WhisperWeights (whisper_spec.h), all matrix products
// through kernels::sgemm, rows / heads in parallel with quasr::parallel_for. Numerics follow CTranslate2's CPU
// path: pre-LN blocks, LayerNorm eps 1e-5, exact (erf) GELU, queries scaled by 1/sqrt(d_head) inside Q.K^T.
#include <algorithm>
#include <cstdlib>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <filesystem>
#include <numeric>
#include <regex>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/release.h"
#include "quasr/kernels/gemm.h"
#include "quasr/models/whisper.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_spec.h"
#include "kv_cache.h"
#include "whisper_model_layers.h"

namespace quasr::models {
namespace fs = std::filesystem;
using detail::AttentionShape;
using detail::KvCache;
using detail::LayerNorm;
using detail::Linear;

namespace {

struct EncoderLayer {
  LayerNorm attn_norm;
  Linear q, k, v, out;
  LayerNorm mlp_norm;
  Linear fc1, fc2;
};

struct DecoderLayer {
  LayerNorm attn_norm;
  Linear q, k, v, out;
  LayerNorm cross_norm;
  Linear cross_q, cross_k, cross_v, cross_out;
  LayerNorm mlp_norm;
  Linear fc1, fc2;
};

// The per-batch decoder state. All sequences have the same length (they advance together).
struct WhisperDecoderState final : DecoderState {
  int batch = 0;
  int length = 0;
  int capacity = 0;  // n_text_ctx: the cache never grows past the model's context
  // Per decoder layer, at the recipe's kv= precision (kv_cache.h): self-attention keys/values
  // [batch][capacity][d] and cross-attention keys/values of the encoder output [n_audio_ctx][d], shared by the batch.
  std::vector<KvCache> self_k, self_v;
  std::vector<KvCache> cross_k, cross_v;
  // Reorder target, kept between calls so a beam search's per-step reorder neither allocates nor zero-fills.
  KvCache spare;
};

// Takes tensors out of the weights by table query (stack, layer, role, param).
class WeightTaker {
 public:
  WeightTaker(WhisperWeights& w, const QuantizedLinears& q, const InputScales& s)
      : w_(w), q_(q), s_(s), specs_(whisper_tensor_specs(w.config)) {
    const char* env = std::getenv("QUASR_FP32_WEIGHTS");
    keep_fp32_ = env && std::string(env) == "1";
  }
  const std::string& name(WhisperStack st, int layer, WhisperRole role, WhisperParam p) const {
    for (const auto& s : specs_)
      if (s.stack == st && s.layer == layer && s.role == role && s.param == p) return s.name;
    QUASR_ASSERT(false && "tensor missing from the Whisper table");
    std::abort();
  }
  io::Tensor& get(WhisperStack st, int layer, WhisperRole role, WhisperParam p) {
    return w_.tensors.at(name(st, layer, role, p));
  }
  // The quantized weight of a matrix, if the model has one (null otherwise).
  std::shared_ptr<const quant::QuantizedWeight> quantized(WhisperStack st, int layer, WhisperRole role) const {
    auto it = q_.find(name(st, layer, role, WhisperParam::kWeight));
    return it == q_.end() ? nullptr : it->second;
  }
  Linear linear(WhisperStack st, int layer, WhisperRole role, bool has_bias = true) {
    Linear l = Linear::from(std::move(get(st, layer, role, WhisperParam::kWeight)),
                            has_bias ? &get(st, layer, role, WhisperParam::kBias) : nullptr);
    l.quant = quantized(st, layer, role);
    l.name = name(st, layer, role, WhisperParam::kWeight);
    // FP32 layers whose values are all FP16 numbers (every Linear of an FP16 checkpoint) are held as FP16: the
    // same FP32 results at half the memory and half the bytes per decoder step. Done layer by layer, so each
    // freed FP32 copy makes room for the next layer's FP16 one. QUASR_FP32_WEIGHTS=1 keeps FP32 copies, for
    // benchmarks that compare the two.
    if (!keep_fp32_) l.store_as_fp16_if_exact();
    if (auto it = s_.find(l.name); it != s_.end()) {
      if (static_cast<int64_t>(it->second.size()) != l.in)
        throw InvalidArgument("input scale of " + l.name + " has " + std::to_string(it->second.size()) +
                              " values, the Linear has " + std::to_string(l.in) + " inputs");
      l.input_scale = it->second;
      ++scales_used_;
    }
    return l;
  }
  LayerNorm norm(WhisperStack st, int layer, WhisperRole role) {
    return LayerNorm::from(std::move(get(st, layer, role, WhisperParam::kWeight)),
                           std::move(get(st, layer, role, WhisperParam::kBias)));
  }
  // Every input scale must have found its Linear (a misspelt name would otherwise be silently dropped).
  void check_all_scales_used() const {
    if (scales_used_ == s_.size()) return;
    for (const auto& [name, s] : s_) {
      bool linear = false;
      for (const auto& spec : specs_)
        linear = linear || (spec.name == name && (spec.is_matrix() || spec.role == WhisperRole::kTokenEmbedding));
      if (!linear) throw InvalidArgument("input scale given for " + name + ", which is not a Linear of this model");
    }
  }

 private:
  WhisperWeights& w_;
  const QuantizedLinears& q_;
  const InputScales& s_;
  size_t scales_used_ = 0;
  std::vector<WhisperTensorSpec> specs_;
  bool keep_fp32_ = false;  // QUASR_FP32_WEIGHTS=1
};

class WhisperModelImpl final : public WhisperModel {
 public:
  WhisperModelImpl(WhisperWeights&& w, const QuantizedLinears& quantized, quant::KvPrecision kv,
                   const InputScales& input_scales)
      : cfg_(w.config), dir_(w.directory), kv_(kv) {
    const auto E = WhisperStack::kEncoder, D = WhisperStack::kDecoder;
    WeightTaker t(w, quantized, input_scales);
    conv1_ = t.linear(E, -1, WhisperRole::kConv1);
    conv2_ = t.linear(E, -1, WhisperRole::kConv2);
    enc_pos_ = std::move(t.get(E, -1, WhisperRole::kPosEmbedding, WhisperParam::kWeight).values);
    for (int i = 0; i < cfg_.n_audio_layer; ++i) {
      EncoderLayer l;
      l.attn_norm = t.norm(E, i, WhisperRole::kAttnNorm);
      l.q = t.linear(E, i, WhisperRole::kAttnQ);
      l.k = t.linear(E, i, WhisperRole::kAttnK);
      l.v = t.linear(E, i, WhisperRole::kAttnV);
      l.out = t.linear(E, i, WhisperRole::kAttnOut);
      l.mlp_norm = t.norm(E, i, WhisperRole::kMlpNorm);
      l.fc1 = t.linear(E, i, WhisperRole::kMlpFc1);
      l.fc2 = t.linear(E, i, WhisperRole::kMlpFc2);
      enc_.push_back(std::move(l));
    }
    enc_norm_ = t.norm(E, -1, WhisperRole::kFinalNorm);
    // The token embedding doubles as the output projection (tied): one Linear without bias.
    embed_ = t.linear(D, -1, WhisperRole::kTokenEmbedding, /*has_bias=*/false);
    dec_pos_ = std::move(t.get(D, -1, WhisperRole::kPosEmbedding, WhisperParam::kWeight).values);
    for (int i = 0; i < cfg_.n_text_layer; ++i) {
      DecoderLayer l;
      l.attn_norm = t.norm(D, i, WhisperRole::kAttnNorm);
      l.q = t.linear(D, i, WhisperRole::kAttnQ);
      l.k = t.linear(D, i, WhisperRole::kAttnK);
      l.v = t.linear(D, i, WhisperRole::kAttnV);
      l.out = t.linear(D, i, WhisperRole::kAttnOut);
      l.cross_norm = t.norm(D, i, WhisperRole::kCrossNorm);
      l.cross_q = t.linear(D, i, WhisperRole::kCrossQ);
      l.cross_k = t.linear(D, i, WhisperRole::kCrossK);
      l.cross_v = t.linear(D, i, WhisperRole::kCrossV);
      l.cross_out = t.linear(D, i, WhisperRole::kCrossOut);
      l.mlp_norm = t.norm(D, i, WhisperRole::kMlpNorm);
      l.fc1 = t.linear(D, i, WhisperRole::kMlpFc1);
      l.fc2 = t.linear(D, i, WhisperRole::kMlpFc2);
      dec_.push_back(std::move(l));
    }
    dec_norm_ = t.norm(D, -1, WhisperRole::kFinalNorm);
    t.check_all_scales_used();
#ifdef __GLIBC__
    malloc_trim(0);  // hand the FP32 copies that went to FP16 back to the system now
#endif
  }

  const WhisperConfig& config() const override { return cfg_; }
  const std::string& directory() const override { return dir_; }

  std::vector<float> encode(std::span<const float> mel) const override;
  std::unique_ptr<DecoderState> start(std::span<const float> encoder_out, int batch) const override;
  void step(DecoderState& state, std::span<const int> tokens, int n_per_seq, std::span<float> logits) const override {
    decode(state, tokens, n_per_seq, logits, /*all_positions=*/false);
  }
  void step_all_positions(DecoderState& state, std::span<const int> tokens, int n_per_seq,
                          std::span<float> logits) const override {
    decode(state, tokens, n_per_seq, logits, /*all_positions=*/true);
  }
  void reorder(DecoderState& state, std::span<const int> src) const override;
  int cached_length(const DecoderState& state) const override {
    return static_cast<const WhisperDecoderState&>(state).length;
  }
  int64_t weight_values_held_as_fp16() const override {
    int64_t n = 0;
    for_each_linear([&](const Linear& l) { n += static_cast<int64_t>(l.weight_f16.size()); });
    return n;
  }
  template <class Fn>
  void for_each_linear(Fn&& fn) { visit_linears(*this, fn); }
  template <class Fn>
  void for_each_linear(Fn&& fn) const { visit_linears(*this, fn); }
  template <class Self, class Fn>
  static void visit_linears(Self& m, Fn& fn) {  // Self: WhisperModelImpl or const WhisperModelImpl
    for (auto* l : {&m.conv1_, &m.conv2_, &m.embed_}) fn(*l);
    for (auto& l : m.enc_)
      for (auto* x : {&l.q, &l.k, &l.v, &l.out, &l.fc1, &l.fc2}) fn(*x);
    for (auto& l : m.dec_)
      for (auto* x : {&l.q, &l.k, &l.v, &l.out, &l.cross_q, &l.cross_k, &l.cross_v, &l.cross_out, &l.fc1, &l.fc2})
        fn(*x);
  }
  void set_input_observer(LinearInputObserver* observer) override {
    for_each_linear([&](Linear& l) { l.observer = observer; });
  }
  std::vector<float> swap_weight(const std::string& weight_name, std::vector<float> values) override {
    Linear* l = find_linear(weight_name);
    if (!l) throw InvalidArgument("swap_weight: " + weight_name + " is not a matrix of this model");
    if (l->quant) throw InvalidArgument("swap_weight: " + weight_name + " is quantized; only FP32 weights can be swapped");
    // Empty values take the weight out (the caller swaps a matrix back before running the model). A weight
    // held as FP16 comes out as its FP32 values; what is swapped in stays FP32.
    const size_t held = l->weight.size() + l->weight_f16.size();
    if (!values.empty() && held != 0 && values.size() != held)
      throw InvalidArgument("swap_weight: " + weight_name + " has " + std::to_string(held) + " values, got " +
                            std::to_string(values.size()));
    std::vector<float> old = l->take_weight();
    l->weight = std::move(values);
    return old;
  }

 private:
  // One decoder pass (step / step_all_positions): logits of the last or of every new position.
  void decode(DecoderState& state, std::span<const int> tokens, int n_per_seq, std::span<float> logits,
              bool all_positions) const;
  Linear* find_linear(const std::string& name) {
    Linear* found = nullptr;
    for_each_linear([&](Linear& l) {
      if (!found && l.name == name) found = &l;
    });
    return found;
  }

  WhisperConfig cfg_;
  std::string dir_;
  quant::KvPrecision kv_;  // storage of the decoder's KV caches
  Linear conv1_, conv2_;  // weights [d][in_ch * 3]: a conv is im2col + Linear
  std::vector<float> enc_pos_;
  std::vector<EncoderLayer> enc_;
  LayerNorm enc_norm_;
  Linear embed_;
  std::vector<float> dec_pos_;
  std::vector<DecoderLayer> dec_;
  LayerNorm dec_norm_;
};

// im2col for a kernel-3, padding-1 conv1d over time: col[t][c*3 + j] = x[c][t*stride + j - 1] (0 outside),
// where x[c][u] is in[c * c_stride + u * u_stride] (so it reads either [C][T] or [T][C] inputs).
void im2col_k3(const float* in, int64_t channels, int64_t t_in, int64_t c_stride, int64_t u_stride, int stride,
               int64_t t_out, float* col) {
  parallel_for(0, t_out, 64, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* row = col + t * channels * 3;
      for (int j = 0; j < 3; ++j) {
        const int64_t u = t * stride + j - 1;
        const bool inside = u >= 0 && u < t_in;
        for (int64_t c = 0; c < channels; ++c) row[c * 3 + j] = inside ? in[c * c_stride + u * u_stride] : 0.0f;
      }
    }
  });
}

std::vector<float> WhisperModelImpl::encode(std::span<const float> mel) const {
  const int64_t n_frames = 2 * static_cast<int64_t>(cfg_.n_audio_ctx);
  const int64_t T = cfg_.n_audio_ctx, d = cfg_.n_audio_state, ffn = cfg_.n_audio_ffn;
  if (static_cast<int64_t>(mel.size()) != cfg_.n_mels * n_frames)
    throw InvalidArgument("encode: expected a mel spectrogram of " + std::to_string(cfg_.n_mels) + " x " +
                          std::to_string(n_frames) + " values, got " + std::to_string(mel.size()));
  // Conv stem: conv1 (stride 1) + GELU over [n_mels][3000], conv2 (stride 2) + GELU, time-major from here on.
  std::vector<float> col(static_cast<size_t>(n_frames * std::max<int64_t>(cfg_.n_mels, d) * 3));
  im2col_k3(mel.data(), cfg_.n_mels, n_frames, n_frames, 1, 1, n_frames, col.data());
  std::vector<float> h1(static_cast<size_t>(n_frames * d));
  conv1_.forward(col.data(), n_frames, h1.data());
  detail::gelu_inplace(h1.data(), n_frames * d);
  im2col_k3(h1.data(), d, n_frames, 1, d, 2, T, col.data());
  std::vector<float> x(static_cast<size_t>(T * d));
  conv2_.forward(col.data(), T, x.data());
  detail::gelu_inplace(x.data(), T * d);
  detail::add_inplace(x.data(), enc_pos_.data(), T * d);
  release(col);
  release(h1);

  std::vector<float> h(T * d), q(T * d), k(T * d), v(T * d), ctx(T * d), proj(T * d), mlp(T * ffn);
  AttentionShape a;
  a.nq = a.nk = T;
  a.n_heads = cfg_.n_audio_head;
  a.d_head = d / cfg_.n_audio_head;
  a.ldq = a.ldk = a.ldo = d;
  for (const EncoderLayer& l : enc_) {
    l.attn_norm.forward(x.data(), T, h.data());
    l.q.forward(h.data(), T, q.data());
    l.k.forward(h.data(), T, k.data());
    l.v.forward(h.data(), T, v.data());
    detail::attention(a, q.data(), k.data(), v.data(), ctx.data());
    l.out.forward(ctx.data(), T, proj.data());
    detail::add_inplace(x.data(), proj.data(), T * d);
    l.mlp_norm.forward(x.data(), T, h.data());
    l.fc1.forward(h.data(), T, mlp.data());
    detail::gelu_inplace(mlp.data(), T * ffn);
    l.fc2.forward(mlp.data(), T, proj.data());
    detail::add_inplace(x.data(), proj.data(), T * d);
  }
  enc_norm_.forward(x.data(), T, h.data());
  return h;
}

std::unique_ptr<DecoderState> WhisperModelImpl::start(std::span<const float> encoder_out, int batch) const {
  const int64_t T = cfg_.n_audio_ctx, de = cfg_.n_audio_state, d = cfg_.n_text_state;
  if (static_cast<int64_t>(encoder_out.size()) != T * de)
    throw InvalidArgument("start: expected an encoder output of " + std::to_string(T) + " x " + std::to_string(de) +
                          " values, got " + std::to_string(encoder_out.size()));
  if (batch < 1) throw InvalidArgument("start: batch must be >= 1, got " + std::to_string(batch));
  auto st = std::make_unique<WhisperDecoderState>();
  st->batch = batch;
  st->capacity = cfg_.n_text_ctx;
  const int H = cfg_.n_text_head;
  const int64_t dh = d / H;
  std::vector<float> k(T * d), v(T * d);
  for (const DecoderLayer& l : dec_) {
    // Cross K/V are computed in FP32 and stored (quantized) once per encoder output.
    l.cross_k.forward(encoder_out.data(), T, k.data());
    l.cross_v.forward(encoder_out.data(), T, v.data());
    st->cross_k.emplace_back(kv_, T, H, dh).store(0, k.data(), T, d);
    st->cross_v.emplace_back(kv_, T, H, dh).store(0, v.data(), T, d);
    st->self_k.emplace_back(kv_, int64_t{batch} * st->capacity, H, dh);
    st->self_v.emplace_back(kv_, int64_t{batch} * st->capacity, H, dh);
  }
  return st;
}

void WhisperModelImpl::decode(DecoderState& state, std::span<const int> tokens, int n_per_seq,
                              std::span<float> logits, bool all_positions) const {
  auto& st = static_cast<WhisperDecoderState&>(state);
  const int64_t B = st.batch, n = n_per_seq, d = cfg_.n_text_state, ffn = cfg_.n_text_ffn, V = cfg_.n_vocab;
  const int64_t T = cfg_.n_audio_ctx, cap = st.capacity, L0 = st.length, rows = B * n;
  if (n < 1) throw InvalidArgument("step: n_per_seq must be >= 1, got " + std::to_string(n));
  if (static_cast<int64_t>(tokens.size()) != rows)
    throw InvalidArgument("step: expected " + std::to_string(rows) + " tokens (batch " + std::to_string(B) + " x " +
                          std::to_string(n) + "), got " + std::to_string(tokens.size()));
  const int64_t out_rows = all_positions ? rows : B;
  if (static_cast<int64_t>(logits.size()) != out_rows * V)
    throw InvalidArgument(std::string("step: logits must hold ") + (all_positions ? "batch x n_per_seq" : "batch") +
                          " x n_vocab = " + std::to_string(out_rows * V) + " values, got " +
                          std::to_string(logits.size()));
  if (L0 + n > cap)
    throw InvalidArgument("step: the decoder context is full: " + std::to_string(L0) + " cached + " +
                          std::to_string(n) + " new tokens exceed n_text_ctx = " + std::to_string(cap));
  for (int tok : tokens)
    if (tok < 0 || tok >= V)
      throw InvalidArgument("step: token id " + std::to_string(tok) + " outside the vocabulary [0, " +
                            std::to_string(V) + ")");

  // x[s*n + j] = token embedding + learned position embedding of position L0 + j.
  // An input scale m on the tied embedding means its stored rows are W diag(1/m): the lookup multiplies them back.
  std::vector<float> x(rows * d), e(d);
  const float* m = embed_.input_scale.empty() ? nullptr : embed_.input_scale.data();
  for (int64_t r = 0; r < rows; ++r) {
    embed_.weight_row(tokens[r], e.data());
    const float* p = dec_pos_.data() + (L0 + r % n) * d;
    for (int64_t c = 0; c < d; ++c) x[r * d + c] = (m ? e[c] * m[c] : e[c]) + p[c];
  }
  std::vector<float> h(rows * d), q(rows * d), k_new(rows * d), v_new(rows * d), ctx(rows * d), proj(rows * d), mlp(rows * ffn);
  AttentionShape self;
  self.n_seq = B;
  self.nq = n;
  self.nk = L0 + n;
  self.n_heads = cfg_.n_text_head;
  self.d_head = d / cfg_.n_text_head;
  self.ldq = self.ldk = self.ldo = d;
  self.q_seq_stride = self.out_seq_stride = n * d;
  self.kv_seq_stride = cap * d;
  self.causal_offset = L0;
  AttentionShape cross = self;  // all B*n queries against the shared encoder K/V
  cross.n_seq = 1;
  cross.nq = rows;
  cross.nk = T;
  cross.q_seq_stride = cross.kv_seq_stride = cross.out_seq_stride = 0;
  cross.causal_offset = -1;

  for (size_t li = 0; li < dec_.size(); ++li) {
    const DecoderLayer& l = dec_[li];
    l.attn_norm.forward(x.data(), rows, h.data());
    l.q.forward(h.data(), rows, q.data());
    // One pass over each weight for the whole batch, then the new keys/values go to each sequence's cache rows
    // L0..L0+n-1.
    KvCache& kc = st.self_k[li];
    KvCache& vc = st.self_v[li];
    l.k.forward(h.data(), rows, k_new.data());
    l.v.forward(h.data(), rows, v_new.data());
    for (int64_t s = 0; s < B; ++s) {
      kc.store(s * cap + L0, k_new.data() + s * n * d, n, d);
      vc.store(s * cap + L0, v_new.data() + s * n * d, n, d);
    }
    detail::attention_cached(self, q.data(), kc, vc, ctx.data());
    l.out.forward(ctx.data(), rows, proj.data());
    detail::add_inplace(x.data(), proj.data(), rows * d);

    l.cross_norm.forward(x.data(), rows, h.data());
    l.cross_q.forward(h.data(), rows, q.data());
    detail::attention_cached(cross, q.data(), st.cross_k[li], st.cross_v[li], ctx.data());
    l.cross_out.forward(ctx.data(), rows, proj.data());
    detail::add_inplace(x.data(), proj.data(), rows * d);

    l.mlp_norm.forward(x.data(), rows, h.data());
    l.fc1.forward(h.data(), rows, mlp.data());
    detail::gelu_inplace(mlp.data(), rows * ffn);
    l.fc2.forward(mlp.data(), rows, proj.data());
    detail::add_inplace(x.data(), proj.data(), rows * d);
  }
  // Logits of each sequence's last position (or of every position): final LayerNorm, then the tied embedding as
  // projection.
  if (all_positions) {
    dec_norm_.forward(x.data(), rows, h.data());
    embed_.forward(h.data(), rows, logits.data());
  } else {
    std::vector<float> last(B * d);
    for (int64_t s = 0; s < B; ++s)
      std::copy_n(x.data() + (s * n + n - 1) * d, d, last.data() + s * d);
    dec_norm_.forward(last.data(), B, h.data());
    embed_.forward(h.data(), B, logits.data());
  }
  st.length = static_cast<int>(L0 + n);
}

void WhisperModelImpl::reorder(DecoderState& state, std::span<const int> src) const {
  auto& st = static_cast<WhisperDecoderState&>(state);
  if (src.empty()) throw InvalidArgument("reorder: the new batch must not be empty");
  for (int s : src)
    if (s < 0 || s >= st.batch)
      throw InvalidArgument("reorder: source sequence " + std::to_string(s) + " outside the batch of " +
                            std::to_string(st.batch));
  const int64_t cap = st.capacity, nb = static_cast<int64_t>(src.size());
  bool identity = nb == st.batch;
  for (int64_t i = 0; identity && i < nb; ++i) identity = src[i] == i;
  if (identity) return;
  // Only the filled rows [0, length) of each sequence are copied (codes with their scales).
  const int64_t used = st.length;
  auto permute = [&](KvCache& cache) {
    if (st.spare.precision() != cache.precision() || st.spare.width() != cache.width())
      st.spare = KvCache(cache.precision(), 0, cache.n_heads(), cache.d_head());
    st.spare.resize_rows(nb * cap);
    for (int64_t i = 0; i < nb; ++i) st.spare.copy_rows(i * cap, cache, src[i] * cap, used);
    std::swap(cache, st.spare);
  };
  for (auto& c : st.self_k) permute(c);
  for (auto& c : st.self_v) permute(c);
  st.batch = static_cast<int>(nb);
}

}  // namespace

int64_t detail::decoder_state_kv_bytes(const DecoderState& state) {
  const auto& st = static_cast<const WhisperDecoderState&>(state);
  int64_t bytes = 0;
  for (const auto* caches : {&st.self_k, &st.self_v, &st.cross_k, &st.cross_v})
    for (const KvCache& c : *caches) bytes += c.bytes();
  return bytes;
}

std::string resolve_model_dir(const std::string& path_or_name) {
  std::error_code ec;
  if (fs::is_directory(path_or_name, ec)) return path_or_name;
  std::vector<std::string> roots;
  if (const char* env = std::getenv("QUASR_MODELS_DIR"); env && *env) roots.emplace_back(env);
  roots.emplace_back(std::string(QUASR_SOURCE_DIR) + "/models");
  const bool plain_name = std::regex_match(path_or_name, std::regex("[A-Za-z0-9][A-Za-z0-9._-]*"));
  if (plain_name)
    for (const auto& root : roots)
      if (fs::is_directory(fs::path(root) / path_or_name, ec)) return (fs::path(root) / path_or_name).string();
  std::vector<std::string> names;
  for (const auto& root : roots)
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory() && (fs::exists(e.path() / "model.bin") || fs::exists(e.path() / "model.safetensors")))
        names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw InvalidArgument("model '" + path_or_name + "' is neither a directory nor an installed model name (installed: " +
                        (list.empty() ? "none" : list) + "; searched $QUASR_MODELS_DIR and " + roots.back() + ")");
}

void WhisperModel::set_input_observer(LinearInputObserver* observer) {
  if (observer) throw InvalidArgument("this model cannot report its Linear inputs (no calibration observer)");
}

std::vector<float> WhisperModel::swap_weight(const std::string& weight_name, std::vector<float>) {
  throw InvalidArgument("this model cannot swap its weights (" + weight_name + ")");
}

void WhisperModel::step_all_positions(DecoderState& state, std::span<const int> tokens, int n_per_seq,
                                      std::span<float> logits) const {
  const int64_t V = config().n_vocab, n = n_per_seq;
  if (n < 1) throw InvalidArgument("step: n_per_seq must be >= 1, got " + std::to_string(n));
  const int64_t B = static_cast<int64_t>(tokens.size()) / n;
  if (B * n != static_cast<int64_t>(tokens.size()) || static_cast<int64_t>(logits.size()) != B * n * V)
    throw InvalidArgument("step_all_positions: expected tokens [batch][n_per_seq] and logits [batch][n_per_seq][n_vocab]");
  std::vector<int> column(static_cast<size_t>(B));
  std::vector<float> out(static_cast<size_t>(B * V));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t s = 0; s < B; ++s) column[s] = tokens[s * n + j];
    step(state, column, 1, out);
    for (int64_t s = 0; s < B; ++s) std::copy_n(out.data() + s * V, V, logits.data() + (s * n + j) * V);
  }
}

std::unique_ptr<WhisperModel> build_whisper_model(WhisperWeights&& w, const QuantizedLinears& quantized,
                                                  quant::KvPrecision kv, const InputScales& input_scales) {
  return std::make_unique<WhisperModelImpl>(std::move(w), quantized, kv, input_scales);
}

std::unique_ptr<WhisperModel> WhisperModel::load(const std::string& path_or_name) {
  // A file is a quantized model (.quasr container); directories and names are float models.
  if (is_model_file(path_or_name)) return load_whisper_model(path_or_name, {});
  return build_whisper_model(load_whisper_weights(resolve_model_dir(path_or_name)), {});
}

}  // namespace quasr::models
