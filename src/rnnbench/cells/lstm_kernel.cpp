// The LSTM family's layer on the CPU in two calls: the whole time loop forward, and its backward
// (backpropagation through time), for every variant of rnnbench/cells/lstm.py: which gates exist,
// peepholes, the block input and output activations, coupled input and forget gates, gate recurrence.
// Built and loaded by rnnbench/cells/lstm_kernel.py, which also holds the equations.
//
// Tensors are contiguous, time-major, float or double:
//   x (T, B, I); w_ih (G*H, I), w_hh (G*H, H) and bias (G*H): gate blocks in the order (i, f, z, o) of
//     the gates that exist; the input projection x w_ih^T + bias of all steps is one product in front;
//   peephole (S, H), one row per sigmoid gate (i, f, o of those that exist) or empty;
//   w_gg (S*H, S*H), the gate recurrence over the S sigmoid gates, or empty;
//   mask (T, B) bool or empty: padded steps keep the state and output zeros.
// Saved for the backward: ys, cs (T+1, B, H) the states y and c after each step (index 0: initial),
// gs (T+1, B, S*H) the gate state under gate recurrence, acts (T, B, G*H) the gate activations,
// hc (T, B, H) the output activation h(c).

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kGate = 0, kNone = 1, kCoupled = 2;  // forget gate: a gate, f = 1, f = 1 - i

// ---------------------------------------------------------------------------------------------------
// exp, sigmoid and tanh without branches or library calls, so that the loops over them vectorise.
// x = n ln2 + r with |r| <= ln2/2; exp(x) = 2^n (1 + p), p = expm1(r) by its Taylor series, which is
// below the type's rounding at that degree. Inputs are clamped to the normal range; NaN passes.

template <typename T>
struct ExpConstants;

template <>
struct ExpConstants<float> {
  using Bits = uint32_t;
  static constexpr float lo = -87.0f, hi = 88.0f;
  static constexpr float shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  static constexpr int mantissa = 23;
  static constexpr Bits bias = 127;
  static inline float series(float r) {  // expm1(r) / r
    return 1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
           r * (1.0f / 5040))))));
  }
};

template <>
struct ExpConstants<double> {
  using Bits = uint64_t;
  static constexpr double lo = -708.0, hi = 709.0;
  static constexpr double shift = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  static constexpr int mantissa = 52;
  static constexpr Bits bias = 1023;
  static inline double series(double r) {
    double s = 1.0 / 6227020800.0;  // 1/13!
    const double inverse_factorials[] = {1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880,
                                         1.0 / 40320,     1.0 / 5040,     1.0 / 720,     1.0 / 120,
                                         1.0 / 24,        1.0 / 6,        1.0 / 2,       1.0};
    for (double c : inverse_factorials) s = c + r * s;
    return s;
  }
};

// exp(x) = scale * (1 + p)
template <typename T>
inline void exp_parts(T x, T& scale, T& p) {
  using E = ExpConstants<T>;
  x = x < E::lo ? E::lo : (x > E::hi ? E::hi : x);
  const T t = x * T(1.4426950408889634) + E::shift;
  const T n = t - E::shift;
  const T r = (x - n * E::ln2_hi) - n * E::ln2_lo;
  typename E::Bits bits;
  std::memcpy(&bits, &t, sizeof t);  // the low bits of t hold n
  bits = (bits + E::bias) << E::mantissa;
  std::memcpy(&scale, &bits, sizeof scale);
  p = r * E::series(r);
}

template <typename T>
inline T sigmoid(T x) {
  T scale, p;
  exp_parts(-x, scale, p);
  return T(1) / (T(1) + (scale * p + scale));
}

template <typename T>
inline T tanh_(T x) {
  T scale, p;
  exp_parts(T(-2) * std::fabs(x), scale, p);
  const T e = scale * p + (scale - T(1));  // expm1(-2|x|), accurate near 0
  return std::copysign(-e / (T(2) + e), x);
}

// ---------------------------------------------------------------------------------------------------
// Matrix products. float32 goes through oneDNN's matmul where torch has it (mkldnn::_linear_pointwise,
// the recurrent weights packed once per sequence): on the AMD CPUs this was measured on it runs the
// layer's products up to twice as fast as MKL's sgemm, which at::mm calls there. Otherwise at::mm.
// A step's product with few rows runs in plain loops: any library call costs more than the product.

constexpr int64_t kLoopRows = 4;

std::optional<c10::OperatorHandle> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchema({name, ""});
}

bool onednn_found() {
  static const bool found = find_op("mkldnn::_linear_pointwise") && find_op("mkldnn::_reorder_linear_weight");
  return found;
}

bool use_onednn(const at::Tensor& like) { return like.scalar_type() == at::kFloat && onednn_found(); }

// a (M, K) @ w^T + bias, w (N, K) plain or packed
at::Tensor onednn_linear(const at::Tensor& a, const at::Tensor& w, const std::optional<at::Tensor>& bias) {
  static const c10::OperatorHandle op = *find_op("mkldnn::_linear_pointwise");
  std::vector<c10::IValue> stack{a, w, bias ? c10::IValue(*bias) : c10::IValue(), c10::IValue(std::string("none")),
                                 c10::IValue(c10::List<std::optional<at::Scalar>>()), c10::IValue()};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

at::Tensor onednn_pack(const at::Tensor& w, int64_t batch) {
  static const c10::OperatorHandle op = *find_op("mkldnn::_reorder_linear_weight");
  std::vector<c10::IValue> stack{w, c10::IValue(batch)};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// a (M, K) @ w^T (+ bias), w (N, K): the products over all steps at once
at::Tensor linear(const at::Tensor& a, const at::Tensor& w, const std::optional<at::Tensor>& bias = std::nullopt) {
  if (use_onednn(a)) return onednn_linear(a, w, bias);
  return bias ? at::addmm(*bias, a, w.t()) : at::mm(a, w.t());
}

// out (B, N) = a (B, K) @ m (K, N), all row-major and contiguous
template <typename T>
void loop_matmul(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ m, int64_t B, int64_t K,
                 int64_t N) {
  for (int64_t b = 0; b < B; ++b) {
    T* __restrict__ o = out + b * N;
    const T* ab = a + b * K;
    std::fill(o, o + N, T(0));
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {  // four rows of m per pass over o
      const T a0 = ab[k], a1 = ab[k + 1], a2 = ab[k + 2], a3 = ab[k + 3];
      const T* __restrict__ m0 = m + k * N;
      const T* __restrict__ m1 = m0 + N;
      const T* __restrict__ m2 = m1 + N;
      const T* __restrict__ m3 = m2 + N;
      for (int64_t n = 0; n < N; ++n) o[n] += a0 * m0[n] + a1 * m1[n] + a2 * m2[n] + a3 * m3[n];
    }
    for (; k < K; ++k) {
      const T ak = ab[k];
      const T* __restrict__ mk = m + k * N;
      for (int64_t n = 0; n < N; ++n) o[n] += ak * mk[n];
    }
  }
}

// a (B, K) @ w^T at every step, for one w (N, K) over the sequence
template <typename T>
class StepProduct {
 public:
  StepProduct(const at::Tensor& w, int64_t B) : B_(B), K_(w.size(1)), N_(w.size(0)), options_(w.options()) {
    if (B > kLoopRows && use_onednn(w)) {
      packed_ = onednn_pack(w.contiguous(), B);
    } else {
      rows_ = w.t().contiguous();  // (K, N)
      out_ = at::empty({B, N_}, options_);
    }
  }

  // the (B, N) product, valid until the next call
  const T* operator()(const T* a) {
    auto a_t = [&] { return at::from_blob(const_cast<T*>(a), {B_, K_}, options_); };
    if (packed_.defined()) {
      result_ = onednn_linear(a_t(), packed_, std::nullopt);
      TORCH_CHECK(result_.is_contiguous(), "expected a contiguous product");
      return result_.data_ptr<T>();
    }
    if (B_ > kLoopRows) {
      at::mm_out(out_, a_t(), rows_);
    } else {
      loop_matmul(out_.data_ptr<T>(), a, rows_.data_ptr<T>(), B_, K_, N_);
    }
    return out_.data_ptr<T>();
  }

 private:
  int64_t B_, K_, N_;
  at::TensorOptions options_;
  at::Tensor packed_, rows_, out_, result_;
};

// ---------------------------------------------------------------------------------------------------

struct Layout {
  int64_t T, B, I, H, G, S;
  int64_t forget;
  bool block_tanh, output_tanh, peepholes, recurrence;
  int64_t slot_i = -1, slot_f = -1, slot_z = -1, slot_o = -1;  // gate blocks in w_ih, w_hh, acts
  int64_t sig_i = -1, sig_f = -1, sig_o = -1;  // blocks among the sigmoid gates (peephole rows, w_gg)

  Layout(const at::Tensor& x, const at::Tensor& w_hh, const at::Tensor& peephole, const at::Tensor& w_gg,
         bool input_gate, int64_t forget_, bool output_gate, bool block_tanh_, bool output_tanh_)
      : forget(forget_), block_tanh(block_tanh_), output_tanh(output_tanh_) {
    TORCH_CHECK(forget >= kGate && forget <= kCoupled, "forget must be 0 (gate), 1 (none) or 2 (coupled)");
    TORCH_CHECK(forget != kCoupled || input_gate, "a coupled forget gate needs the input gate");
    int64_t g = 0, s = 0;
    if (input_gate) slot_i = g++, sig_i = s++;
    if (forget == kGate) slot_f = g++, sig_f = s++;
    slot_z = g++;
    if (output_gate) slot_o = g++, sig_o = s++;
    G = g, S = s;
    TORCH_CHECK(x.dim() == 3 && w_hh.dim() == 2, "x must be (T, B, I) and w_hh (G*H, H)");
    T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
    TORCH_CHECK(w_hh.size(0) == G * H, "w_hh must be (G*H, H) for the ", G, " gates");
    peepholes = peephole.numel() > 0;
    recurrence = w_gg.numel() > 0;
    TORCH_CHECK(!peepholes || (peephole.size(0) == S && peephole.size(1) == H), "peephole must be (S, H)");
    TORCH_CHECK(!recurrence || (w_gg.size(0) == S * H && w_gg.size(1) == S * H), "w_gg must be (S*H, S*H)");
  }

  // (slot in the gate rows, block among the sigmoid gates) of each sigmoid gate that exists
  std::vector<std::pair<int64_t, int64_t>> sigmoid_gates() const {
    std::vector<std::pair<int64_t, int64_t>> gates;
    for (auto [slot, block] : {std::pair{slot_i, sig_i}, {slot_f, sig_f}, {slot_o, sig_o}}) {
      if (slot >= 0) gates.emplace_back(slot, block);
    }
    return gates;
  }
};

void check(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == like.scalar_type() && t.is_contiguous(), name,
              " must be a contiguous CPU tensor of the input's dtype");
}

const bool* mask_data(const at::Tensor& mask, const Layout& L) {
  if (mask.numel() == 0) return nullptr;
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.is_contiguous() && mask.size(0) == L.T &&
                  mask.size(1) == L.B, "mask must be a contiguous bool (T, B)");
  return mask.data_ptr<bool>();
}

// a = σ(a + p ⊙ c) in place (p null: no peephole)
template <typename T>
void sigmoid_gate(T* __restrict__ a, const T* __restrict__ p, const T* __restrict__ c, int64_t H) {
  if (p) {
    for (int64_t h = 0; h < H; ++h) a[h] = sigmoid(a[h] + p[h] * c[h]);
  } else {
    for (int64_t h = 0; h < H; ++h) a[h] = sigmoid(a[h]);
  }
}

// The time loop. xp: the input projection (T, B, G*H); writes the saved tensors and the outputs.
template <typename T>
void forward_loop(const Layout& L, const bool* mask, const T* xp, const at::Tensor& w_hh, const T* peephole,
                  const at::Tensor& w_gg, T* acts, T* ys, T* cs, T* gs, T* hc, T* out) {
  const int64_t B = L.B, H = L.H, GH = L.G * H, SH = L.S * H;
  StepProduct<T> recurrent(w_hh, B);
  std::optional<StepProduct<T>> gate_recurrent;
  if (L.recurrence) gate_recurrent.emplace(w_gg, B);
  const auto sigmoid_gates = L.sigmoid_gates();
  auto peep = [&](int64_t row) { return L.peepholes && row >= 0 ? peephole + row * H : nullptr; };
  for (int64_t t = 0; t < L.T; ++t) {
    const T *y_prev = ys + t * B * H, *c_prev = cs + t * B * H, *g_prev = gs + t * B * SH;
    const T* rec = recurrent(y_prev);  // (B, G*H)
    const T* gate_rec = L.recurrence ? (*gate_recurrent)(g_prev) : nullptr;  // (B, S*H)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* __restrict__ a = acts + row * GH;
      const T* cp = c_prev + b * H;
      T* c = cs + (row + B) * H;
      T* y = ys + (row + B) * H;
      T* h_c = hc + row * H;
      T* o_t = out + row * H;
      T* g = gs + (row + B) * SH;
      if (mask && !mask[row]) {  // padded: keep the state, output 0
        std::memcpy(c, cp, H * sizeof(T));
        std::memcpy(y, y_prev + b * H, H * sizeof(T));
        if (L.recurrence) std::memcpy(g, g_prev + b * SH, SH * sizeof(T));
        std::fill(o_t, o_t + H, T(0));
        continue;
      }
      const T* __restrict__ xp_b = xp + row * GH;
      const T* __restrict__ rec_b = rec + b * GH;
      for (int64_t k = 0; k < GH; ++k) a[k] = xp_b[k] + rec_b[k];  // the pre-activations
      if (L.recurrence) {
        for (auto [slot, block] : sigmoid_gates) {
          T* __restrict__ ak = a + slot * H;
          const T* __restrict__ rk = gate_rec + b * SH + block * H;
          for (int64_t h = 0; h < H; ++h) ak[h] += rk[h];
        }
      }
      T* i = L.slot_i >= 0 ? a + L.slot_i * H : nullptr;
      T* f = L.slot_f >= 0 ? a + L.slot_f * H : nullptr;
      T* z = a + L.slot_z * H;
      T* o = L.slot_o >= 0 ? a + L.slot_o * H : nullptr;
      if (i) sigmoid_gate(i, peep(L.sig_i), cp, H);
      if (f) sigmoid_gate(f, peep(L.sig_f), cp, H);
      if (L.block_tanh) {
        for (int64_t h = 0; h < H; ++h) z[h] = tanh_(z[h]);
      }
      if (i && f) {
        for (int64_t h = 0; h < H; ++h) c[h] = z[h] * i[h] + cp[h] * f[h];
      } else if (i && L.forget == kCoupled) {
        for (int64_t h = 0; h < H; ++h) c[h] = z[h] * i[h] + cp[h] * (T(1) - i[h]);
      } else if (i) {
        for (int64_t h = 0; h < H; ++h) c[h] = z[h] * i[h] + cp[h];
      } else if (f) {
        for (int64_t h = 0; h < H; ++h) c[h] = z[h] + cp[h] * f[h];
      } else {
        for (int64_t h = 0; h < H; ++h) c[h] = z[h] + cp[h];
      }
      if (o) sigmoid_gate(o, peep(L.sig_o), c, H);
      if (L.output_tanh) {
        for (int64_t h = 0; h < H; ++h) h_c[h] = tanh_(c[h]);
      } else {
        std::memcpy(h_c, c, H * sizeof(T));
      }
      if (o) {
        for (int64_t h = 0; h < H; ++h) y[h] = h_c[h] * o[h];
      } else {
        std::memcpy(y, h_c, H * sizeof(T));
      }
      std::memcpy(o_t, y, H * sizeof(T));
      for (auto [slot, block] : sigmoid_gates) {  // the new gate state: the sigmoid gates' activations
        if (L.recurrence) std::memcpy(g + block * H, a + slot * H, H * sizeof(T));
      }
    }
  }
}

// Gradients of one real step of one row. dy_rec, dc_rec, dg_rec: the gradients reaching y_t, c_t and
// the gate state g_t from later steps (and the final state); dc_rec leaves holding that of c_{t-1}.
// d: the gradient of the gate pre-activations (that of xp_t). dpeep accumulates the peepholes'.
template <typename T>
void backward_row(const Layout& L, const T* a, const T* cp, const T* c, const T* h_c, const T* dout,
                  const T* dy_rec, T* dc_rec, const T* dg_rec, const T* peephole, T* d, T* dpeep,
                  T* __restrict__ dy, T* __restrict__ dc) {
  const int64_t H = L.H;
  const T* i = L.slot_i >= 0 ? a + L.slot_i * H : nullptr;
  const T* f = L.slot_f >= 0 ? a + L.slot_f * H : nullptr;
  const T* z = a + L.slot_z * H;
  const T* o = L.slot_o >= 0 ? a + L.slot_o * H : nullptr;
  T* di = i ? d + L.slot_i * H : nullptr;
  T* df = f ? d + L.slot_f * H : nullptr;
  T* dz = d + L.slot_z * H;
  T* dout_gate = o ? d + L.slot_o * H : nullptr;
  for (int64_t h = 0; h < H; ++h) dy[h] = dout[h] + dy_rec[h];
  if (o) {  // y = h(c) ⊙ o
    T* __restrict__ dpo = dout_gate;
    for (int64_t h = 0; h < H; ++h) dpo[h] = dy[h] * h_c[h];
    if (L.recurrence) {
      const T* dg = dg_rec + L.sig_o * H;
      for (int64_t h = 0; h < H; ++h) dpo[h] += dg[h];
    }
    for (int64_t h = 0; h < H; ++h) dpo[h] *= o[h] * (T(1) - o[h]);
    for (int64_t h = 0; h < H; ++h) dy[h] *= o[h];
  }
  if (L.output_tanh) {
    for (int64_t h = 0; h < H; ++h) dc[h] = dc_rec[h] + dy[h] * (T(1) - h_c[h] * h_c[h]);
  } else {
    for (int64_t h = 0; h < H; ++h) dc[h] = dc_rec[h] + dy[h];
  }
  if (o && L.peepholes) {  // the output gate's peephole reads the new c
    const T* p = peephole + L.sig_o * H;
    T* dp = dpeep + L.sig_o * H;
    for (int64_t h = 0; h < H; ++h) {
      dc[h] += dout_gate[h] * p[h];
      dp[h] += dout_gate[h] * c[h];
    }
  }
  if (i) {
    for (int64_t h = 0; h < H; ++h) dz[h] = dc[h] * i[h];
  } else {
    std::memcpy(dz, dc, H * sizeof(T));
  }
  if (L.block_tanh) {
    for (int64_t h = 0; h < H; ++h) dz[h] *= T(1) - z[h] * z[h];
  }
  if (i) {
    for (int64_t h = 0; h < H; ++h) di[h] = dc[h] * z[h];
    if (L.forget == kCoupled) {  // c = z i + c_prev (1 - i)
      for (int64_t h = 0; h < H; ++h) di[h] -= dc[h] * cp[h];
    }
    if (L.recurrence) {
      const T* dg = dg_rec + L.sig_i * H;
      for (int64_t h = 0; h < H; ++h) di[h] += dg[h];
    }
    for (int64_t h = 0; h < H; ++h) di[h] *= i[h] * (T(1) - i[h]);
  }
  if (f) {
    for (int64_t h = 0; h < H; ++h) df[h] = dc[h] * cp[h];
    if (L.recurrence) {
      const T* dg = dg_rec + L.sig_f * H;
      for (int64_t h = 0; h < H; ++h) df[h] += dg[h];
    }
    for (int64_t h = 0; h < H; ++h) df[h] *= f[h] * (T(1) - f[h]);
  }
  if (f) {
    for (int64_t h = 0; h < H; ++h) dc_rec[h] = dc[h] * f[h];
  } else if (L.forget == kCoupled) {
    for (int64_t h = 0; h < H; ++h) dc_rec[h] = dc[h] * (T(1) - i[h]);
  } else {
    std::memcpy(dc_rec, dc, H * sizeof(T));
  }
  if (L.peepholes) {  // the input and forget gates' peepholes read c_prev
    for (auto [dgate, row] : {std::pair<T*, int64_t>{di, L.sig_i}, {df, L.sig_f}}) {
      if (!dgate) continue;
      const T* p = peephole + row * H;
      T* dp = dpeep + row * H;
      for (int64_t h = 0; h < H; ++h) {
        dc_rec[h] += dgate[h] * p[h];
        dp[h] += dgate[h] * cp[h];
      }
    }
  }
}

// The time loop backwards: the gradients of the pre-activations (dgates, (T, B, G*H); dsig, theirs of
// the sigmoid gates, (T, B, S*H), under gate recurrence) and of the initial state (in the *_rec).
template <typename T>
void backward_loop(const Layout& L, const bool* mask, const T* dout, const T* cs, const T* acts, const T* hc,
                   const at::Tensor& w_hh, const T* peephole, const at::Tensor& w_gg, T* dgates, T* dsig,
                   T* dy_rec, T* dc_rec, T* dg_rec, T* dpeep) {
  const int64_t B = L.B, H = L.H, GH = L.G * H, SH = L.S * H;
  StepProduct<T> recurrent(w_hh.t(), B);  // d_t @ w_hh
  std::optional<StepProduct<T>> gate_recurrent;
  if (L.recurrence) gate_recurrent.emplace(w_gg.t(), B);
  const auto sigmoid_gates = L.sigmoid_gates();
  std::vector<T> dy(H), dc(H);
  for (int64_t t = L.T - 1; t >= 0; --t) {
    T* d_t = dgates + t * B * GH;
    T* dsig_t = L.recurrence ? dsig + t * B * SH : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* d = d_t + b * GH;
      if (mask && !mask[row]) {  // padded: no gradient to this step; the state's passes by
        std::fill(d, d + GH, T(0));
        if (dsig_t) std::fill(dsig_t + b * SH, dsig_t + (b + 1) * SH, T(0));
        continue;
      }
      backward_row(L, acts + row * GH, cs + row * H, cs + (row + B) * H, hc + row * H, dout + row * H,
                   dy_rec + b * H, dc_rec + b * H, L.recurrence ? dg_rec + b * SH : nullptr, peephole, d,
                   dpeep, dy.data(), dc.data());
      for (auto [slot, block] : sigmoid_gates) {
        if (dsig_t) std::memcpy(dsig_t + b * SH + block * H, d + slot * H, H * sizeof(T));
      }
    }
    // to y_{t-1} (and g_{t-1}) through the recurrent matrices; padded rows keep theirs
    const T* dy_prev = recurrent(d_t);
    const T* dg_prev = L.recurrence ? (*gate_recurrent)(dsig_t) : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      if (mask && !mask[t * B + b]) continue;
      std::memcpy(dy_rec + b * H, dy_prev + b * H, H * sizeof(T));
      if (L.recurrence) std::memcpy(dg_rec + b * SH, dg_prev + b * SH, SH * sizeof(T));
    }
  }
}

// Returns out (T, B, H) and what the backward reads: ys, cs, gs, acts, hc.
std::vector<at::Tensor> lstm_forward(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& bias,
                                     const at::Tensor& y0, const at::Tensor& c0, const at::Tensor& g0,
                                     const at::Tensor& w_hh, const at::Tensor& peephole, const at::Tensor& w_gg,
                                     const at::Tensor& mask, bool input_gate, int64_t forget, bool output_gate,
                                     bool block_tanh, bool output_tanh) {
  const Layout L(x, w_hh, peephole, w_gg, input_gate, forget, output_gate, block_tanh, output_tanh);
  for (const auto& [t, name] : {std::pair{x, "x"}, {w_ih, "w_ih"}, {bias, "bias"}, {y0, "y0"}, {c0, "c0"},
                                {w_hh, "w_hh"}}) {
    check(t, x, name);
  }
  if (L.peepholes) check(peephole, x, "peephole");
  if (L.recurrence) check(g0, x, "g0"), check(w_gg, x, "w_gg");
  const bool* m = mask_data(mask, L);
  const auto options = x.options();
  const int64_t T = L.T, B = L.B, H = L.H;
  auto xp = linear(x.view({T * B, L.I}), w_ih, bias).contiguous();  // the input projection of all steps
  auto acts = at::empty({T, B, L.G * H}, options);
  auto ys = at::empty({T + 1, B, H}, options), cs = at::empty({T + 1, B, H}, options);
  auto gs = at::empty({L.recurrence ? T + 1 : 0, B, L.S * H}, options);
  auto hc = at::empty({T, B, H}, options), out = at::empty({T, B, H}, options);
  ys[0].copy_(y0);
  cs[0].copy_(c0);
  if (L.recurrence) gs[0].copy_(g0);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    forward_loop<scalar_t>(L, m, xp.data_ptr<scalar_t>(), w_hh, L.peepholes ? peephole.data_ptr<scalar_t>() : nullptr,
                           w_gg, acts.data_ptr<scalar_t>(), ys.data_ptr<scalar_t>(), cs.data_ptr<scalar_t>(),
                           L.recurrence ? gs.data_ptr<scalar_t>() : nullptr, hc.data_ptr<scalar_t>(),
                           out.data_ptr<scalar_t>());
  });
  return {out, ys, cs, gs, acts, hc};
}

// Returns the gradients of x (empty unless input_grad), w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg.
std::vector<at::Tensor> lstm_backward(const at::Tensor& dout, const at::Tensor& dy_final,
                                      const at::Tensor& dc_final, const at::Tensor& dg_final, const at::Tensor& x,
                                      const at::Tensor& w_ih, const at::Tensor& ys, const at::Tensor& cs,
                                      const at::Tensor& gs, const at::Tensor& acts, const at::Tensor& hc,
                                      const at::Tensor& w_hh, const at::Tensor& peephole, const at::Tensor& w_gg,
                                      const at::Tensor& mask, bool input_grad, bool input_gate, int64_t forget,
                                      bool output_gate, bool block_tanh, bool output_tanh) {
  const Layout L(x, w_hh, peephole, w_gg, input_gate, forget, output_gate, block_tanh, output_tanh);
  for (const auto& [t, name] : {std::pair{dout, "dout"}, {dy_final, "dy_final"}, {dc_final, "dc_final"},
                                {x, "x"}, {w_ih, "w_ih"}, {ys, "ys"}, {cs, "cs"}, {acts, "acts"}, {hc, "hc"},
                                {w_hh, "w_hh"}}) {
    check(t, x, name);
  }
  if (L.peepholes) check(peephole, x, "peephole");
  if (L.recurrence) check(dg_final, x, "dg_final"), check(gs, x, "gs"), check(w_gg, x, "w_gg");
  const bool* m = mask_data(mask, L);
  const auto options = x.options();
  const int64_t T = L.T, B = L.B, H = L.H, GH = L.G * H, SH = L.S * H;
  auto dgates = at::empty({T, B, GH}, options);
  auto dsig = at::empty({L.recurrence ? T : 0, B, SH}, options);
  auto dy_rec = dy_final.clone(), dc_rec = dc_final.clone();
  auto dg_rec = L.recurrence ? dg_final.clone() : at::empty({0}, options);
  auto dpeep = at::zeros({L.peepholes ? L.S : 0, H}, options);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_backward", [&] {
    backward_loop<scalar_t>(L, m, dout.data_ptr<scalar_t>(), cs.data_ptr<scalar_t>(), acts.data_ptr<scalar_t>(),
                            hc.data_ptr<scalar_t>(), w_hh, L.peepholes ? peephole.data_ptr<scalar_t>() : nullptr,
                            w_gg, dgates.data_ptr<scalar_t>(), L.recurrence ? dsig.data_ptr<scalar_t>() : nullptr,
                            dy_rec.data_ptr<scalar_t>(), dc_rec.data_ptr<scalar_t>(),
                            L.recurrence ? dg_rec.data_ptr<scalar_t>() : nullptr,
                            L.peepholes ? dpeep.data_ptr<scalar_t>() : nullptr);
  });
  // the matrices' gradients: one product over all steps each (padded steps contribute zeros)
  auto d2 = dgates.view({T * B, GH});
  auto dx = input_grad ? linear(d2, w_ih.t().contiguous()).view({T, B, L.I}) : at::empty({0}, options);
  auto dw_ih = linear(d2.t(), x.view({T * B, L.I}).t());
  auto dbias = d2.sum(0);
  auto dw_hh = linear(d2.t(), ys.narrow(0, 0, T).reshape({T * B, H}).t());
  auto dw_gg = L.recurrence ? linear(dsig.view({T * B, SH}).t(), gs.narrow(0, 0, T).reshape({T * B, SH}).t())
                            : at::empty({0}, options);
  return {dx, dw_ih, dbias, dy_rec, dc_rec, dg_rec, dw_hh, dpeep, dw_gg};
}

}  // namespace

TORCH_LIBRARY(rnnbench_lstm, m) {
  m.def("forward", &lstm_forward);
  m.def("backward", &lstm_backward);
}
