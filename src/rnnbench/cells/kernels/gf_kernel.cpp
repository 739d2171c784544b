// The gated-feedback stacks' layer (GF-tanh, GF-GRU, GF-LSTM, rnnbench/cells/gated_feedback.py) on the
// CPU in two calls: the whole time loop of all L layers forward, and its backward (backpropagation
// through time). Built and loaded by rnnbench/cells/gf_kernel.py, which also holds the equations.
//
// Tensors are contiguous, float or double; per layer j, G row blocks of H (the unit-wise gates, then the
// candidate: tanh: c; gru: r, z, c; lstm: i, f, o, c), then n = L global-gate rows (0 without them):
//   xp (T, B, P), P = G*H + n: layer 1's bottom-up pre-activations of all steps (bias included);
//   w_bu (L-1, P, H), bias_bu (L-1, P): the bottom-up rows of layers 2..L (global-gate biases are 0);
//   w_hh (L, R, H): per source layer i, the rows reading h^i_{t-1}: U^{i→j} for j = 1..L (L*H), the
//     unit-wise gates' (own: layer i's own, (G-1)*H; all: for every destination j, L*(G-1)*H), then
//     u_g^{j'→j} (L*n, destination-major);
//   h0, c0 (L, B, H) (c0 empty but for GF-LSTM); mask (T, B) bool or empty: padded steps keep every
//   layer's state and output zeros.
// Saved for the backward, layer-major: hs, cs (L, T+1, B, H) the states after each step (index 0:
// initial), acts (L, T, B, G*H) the gates' and the candidate's activations, gs (L, T, B, n) the global
// gates, fb (L, T, B, L*H) the feedback products U^{i→j} h^i_{t-1} of each source i, hc (L, T, B, H)
// tanh(c) (GF-LSTM).

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernel_args.h"
#include "kernel_math.h"
#include "kernel_products.h"

namespace {

using namespace rnnbench;

constexpr int64_t kTanh = 0, kGru = 1, kLstm = 2;

struct Layout {
  int64_t T, B, H, L, G, n, nu, nur, R, P;
  int64_t kind;
  bool all;  // the unit-wise gates read every layer's state

  Layout(int64_t T_, int64_t B_, const at::Tensor& w_hh, int64_t kind_, bool feedback_gates, bool all_)
      : T(T_), B(B_), kind(kind_), all(all_) {
    TORCH_CHECK(kind >= kTanh && kind <= kLstm, "kind must be 0 (tanh), 1 (gru) or 2 (lstm)");
    TORCH_CHECK(w_hh.dim() == 3, "w_hh must be (L, R, H)");
    L = w_hh.size(0), H = w_hh.size(2);
    G = kind == kTanh ? 1 : kind == kGru ? 3 : 4;
    n = feedback_gates ? L : 0;
    nu = (G - 1) * H;
    nur = nu * (all ? L : 1);
    R = L * H + nur + L * n;
    P = G * H + n;
    TORCH_CHECK(w_hh.size(1) == R, "w_hh must be (L, ", R, ", H)");
  }
};

// One layer's update of one row from its pre-activations (bottom-up, with bias), its unit-wise gates'
// recurrent terms and its gated feedback sum s; writes the activations, the new state and the output.
template <typename T>
void layer_row(const Layout& L, const T* __restrict__ pre, const T* __restrict__ unit, const T* __restrict__ s,
               const T* __restrict__ h, const T* __restrict__ c, T* __restrict__ a, T* __restrict__ h_new,
               T* __restrict__ c_new, T* __restrict__ hc) {
  const int64_t H = L.H, nu = L.nu;
  if (L.kind == kTanh) {
    for (int64_t k = 0; k < H; ++k) a[k] = h_new[k] = tanh_(pre[k] + s[k]);
  } else if (L.kind == kGru) {
    for (int64_t k = 0; k < H; ++k) {
      const T r = sigmoid(pre[k] + unit[k]), z = sigmoid(pre[H + k] + unit[H + k]);
      const T cand = tanh_(pre[nu + k] + r * s[k]);  // the reset after the matrices (Chung)
      a[k] = r, a[H + k] = z, a[nu + k] = cand;
      h_new[k] = (T(1) - z) * h[k] + z * cand;
    }
  } else {
    for (int64_t k = 0; k < H; ++k) {
      const T i = sigmoid(pre[k] + unit[k]), f = sigmoid(pre[H + k] + unit[H + k]);
      const T o = sigmoid(pre[2 * H + k] + unit[2 * H + k]);
      const T cand = tanh_(pre[nu + k] + s[k]);
      const T cn = f * c[k] + i * cand, tc = tanh_(cn);
      a[k] = i, a[H + k] = f, a[2 * H + k] = o, a[nu + k] = cand;
      c_new[k] = cn, hc[k] = tc, h_new[k] = o * tc;
    }
  }
}

// One layer's backward step of one row, from the gradient dh reaching its output (and dc, its cell
// state's, for GF-LSTM, replaced by dc_{t-1}): the pre-activations' gradients d (gates, candidate), the
// gated sum's ds, and what reaches h_{t-1} directly (direct; GF-GRU only). s: the gated sum (GF-GRU).
template <typename T>
void layer_backward_row(const Layout& L, const T* __restrict__ a, const T* __restrict__ h_prev,
                        const T* __restrict__ s, const T* __restrict__ c_prev, const T* __restrict__ tc,
                        const T* __restrict__ dh, T* __restrict__ dc, T* __restrict__ d, T* __restrict__ ds,
                        T* __restrict__ direct) {
  const int64_t H = L.H, nu = L.nu;
  if (L.kind == kTanh) {
    for (int64_t k = 0; k < H; ++k) {
      const T dq = dh[k] * (T(1) - a[k] * a[k]);
      d[k] = dq, ds[k] = dq, direct[k] = 0;
    }
  } else if (L.kind == kGru) {
    for (int64_t k = 0; k < H; ++k) {
      const T r = a[k], z = a[H + k], cand = a[nu + k], dy = dh[k];
      const T dq = dy * z * (T(1) - cand * cand);
      d[nu + k] = dq;
      d[k] = dq * s[k] * r * (T(1) - r);
      d[H + k] = dy * (cand - h_prev[k]) * z * (T(1) - z);
      ds[k] = dq * r;
      direct[k] = dy * (T(1) - z);
    }
  } else {
    for (int64_t k = 0; k < H; ++k) {
      const T i = a[k], f = a[H + k], o = a[2 * H + k], cand = a[nu + k], dy = dh[k];
      const T dcell = dc[k] + dy * o * (T(1) - tc[k] * tc[k]);
      const T dq = dcell * i * (T(1) - cand * cand);
      d[k] = dcell * cand * i * (T(1) - i);
      d[H + k] = dcell * c_prev[k] * f * (T(1) - f);
      d[2 * H + k] = dy * tc[k] * o * (T(1) - o);
      d[nu + k] = dq, ds[k] = dq;
      dc[k] = dcell * f, direct[k] = 0;
    }
  }
}

template <typename T>
struct Saved {
  T *hs, *cs, *acts, *gs, *fb, *hc;
};

// The time loop; writes the saved tensors and the outputs (T, B, H).
template <typename T>
void forward_loop(const Layout& L, const bool* mask, const T* xp, const at::Tensor& w_bu, const T* bias_bu,
                  const at::Tensor& w_hh, Saved<T> s, T* out) {
  const int64_t T_ = L.T, B = L.B, H = L.H, NL = L.L, GH = L.G * H, P = L.P, R = L.R, n = L.n;
  std::vector<StepProduct<T>> rec_of, up_of;  // h^i_{t-1} w_hh[i]^T; h^{j-1}_t w_bu[j-1]^T
  for (int64_t i = 0; i < NL; ++i) rec_of.emplace_back(w_hh[i], B);
  for (int64_t j = 1; j < NL; ++j) up_of.emplace_back(w_bu[j - 1], B);
  std::vector<const T*> rec(NL);
  std::vector<T> pre_up(B * P), unit(L.nu), gsum(H);
  auto slab = [&](T* base, int64_t j, int64_t t, int64_t steps, int64_t width) {
    return base + ((j * steps + t) * B) * width;
  };
  for (int64_t t = 0; t < T_; ++t) {
    for (int64_t i = 0; i < NL; ++i) {
      rec[i] = rec_of[i](slab(s.hs, i, t, T_ + 1, H));  // (B, R)
      for (int64_t b = 0; b < B; ++b) {
        std::memcpy(slab(s.fb, i, t, T_, NL * H) + b * NL * H, rec[i] + b * R, NL * H * sizeof(T));
      }
    }
    for (int64_t j = 0; j < NL; ++j) {
      const T* pre_all = xp + t * B * P;
      if (j > 0) {
        const T* up = up_of[j - 1](slab(s.hs, j - 1, t + 1, T_ + 1, H));
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t k = 0; k < P; ++k) pre_up[b * P + k] = up[b * P + k] + bias_bu[(j - 1) * P + k];
        }
        pre_all = pre_up.data();
      }
      T* h_prev = slab(s.hs, j, t, T_ + 1, H);
      T* h_next = slab(s.hs, j, t + 1, T_ + 1, H);
      T* c_prev = L.kind == kLstm ? slab(s.cs, j, t, T_ + 1, H) : nullptr;
      T* c_next = L.kind == kLstm ? slab(s.cs, j, t + 1, T_ + 1, H) : nullptr;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        if (mask && !mask[row]) {  // padded: every layer keeps its state
          std::memcpy(h_next + b * H, h_prev + b * H, H * sizeof(T));
          if (c_next) std::memcpy(c_next + b * H, c_prev + b * H, H * sizeof(T));
          continue;
        }
        const T* pre = pre_all + b * P;
        // the global gates g^{i→j}: bottom-up row GH + i plus u_g^{i→j} h*_{t-1}, summed over sources
        T* gj = n ? slab(s.gs, j, t, T_, n) + b * n : nullptr;
        for (int64_t i = 0; i < n; ++i) {
          T u = 0;
          for (int64_t src = 0; src < NL; ++src) u += rec[src][b * R + NL * H + L.nur + j * NL + i];
          gj[i] = sigmoid(pre[GH + i] + u);
        }
        std::fill(gsum.begin(), gsum.end(), T(0));
        for (int64_t src = 0; src < NL; ++src) {
          const T* __restrict__ f = rec[src] + b * R + j * H;
          const T w = n ? gj[src] : T(1);
          for (int64_t k = 0; k < H; ++k) gsum[k] += w * f[k];
        }
        if (L.all) {  // layer j's unit-wise rows of every source, summed
          std::fill(unit.begin(), unit.end(), T(0));
          for (int64_t src = 0; src < NL; ++src) {
            const T* __restrict__ u = rec[src] + b * R + NL * H + j * L.nu;
            for (int64_t k = 0; k < L.nu; ++k) unit[k] += u[k];
          }
        } else if (L.nu) {
          std::memcpy(unit.data(), rec[j] + b * R + NL * H, L.nu * sizeof(T));
        }
        layer_row(L, pre, unit.data(), gsum.data(), h_prev + b * H, c_prev ? c_prev + b * H : nullptr,
                  slab(s.acts, j, t, T_, GH) + b * GH, h_next + b * H, c_next ? c_next + b * H : nullptr,
                  L.kind == kLstm ? slab(s.hc, j, t, T_, H) + b * H : nullptr);
      }
    }
    const T* top = slab(s.hs, NL - 1, t + 1, T_ + 1, H);
    for (int64_t b = 0; b < B; ++b) {
      T* o = out + (t * B + b) * H;
      if (mask && !mask[t * B + b]) {
        std::fill(o, o + H, T(0));
      } else {
        std::memcpy(o, top + b * H, H * sizeof(T));
      }
    }
  }
}

// The time loop backwards: the gradients of every layer's pre-activations (dpre (L, T, B, P)) and of the
// products on h*_{t-1} (drec (L, T, B, R)), and of the initial state (left in dh, dc).
template <typename T>
void backward_loop(const Layout& L, const bool* mask, const T* dout, const at::Tensor& w_bu,
                   const at::Tensor& w_hh, Saved<T> s, T* dpre, T* drec, T* dh, T* dc) {
  const int64_t T_ = L.T, B = L.B, H = L.H, NL = L.L, GH = L.G * H, P = L.P, R = L.R, n = L.n, nu = L.nu;
  std::vector<StepProduct<T>> back_rec, back_up;  // drec_i w_hh[i]; dpre_j w_bu[j-1]
  for (int64_t i = 0; i < NL; ++i) back_rec.emplace_back(w_hh[i].t(), B);
  for (int64_t j = 1; j < NL; ++j) back_up.emplace_back(w_bu[j - 1].t(), B);
  std::vector<T> d_in(B * H, T(0)), direct(NL * B * H, T(0)), ds(H), gated(H);
  auto slab = [&](T* base, int64_t j, int64_t t, int64_t steps, int64_t width) {
    return base + ((j * steps + t) * B) * width;
  };
  for (int64_t t = T_ - 1; t >= 0; --t) {
    for (int64_t j = NL - 1; j >= 0; --j) {
      T* dp = slab(dpre, j, t, T_, P);
      const T* a_all = slab(s.acts, j, t, T_, GH);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        T* d = dp + b * P;
        T* dhj = dh + (j * B + b) * H;
        T* direct_j = direct.data() + (j * B + b) * H;
        if (mask && !mask[row]) {  // padded: no gradient to this step; the state's passes by
          std::fill(d, d + P, T(0));
          std::fill(direct_j, direct_j + H, T(0));
          continue;
        }
        if (j == NL - 1) {
          for (int64_t k = 0; k < H; ++k) dhj[k] += dout[row * H + k];
        } else {
          for (int64_t k = 0; k < H; ++k) dhj[k] += d_in[b * H + k];
        }
        const T* gj = n ? slab(s.gs, j, t, T_, n) + b * n : nullptr;
        const T* a = a_all + b * GH;
        const T* h_prev = slab(s.hs, j, t, T_ + 1, H) + b * H;
        if (L.kind == kGru) {
          std::fill(gated.begin(), gated.end(), T(0));  // s, again from the feedback products
          for (int64_t src = 0; src < NL; ++src) {
            const T* f = slab(s.fb, src, t, T_, NL * H) + b * NL * H + j * H;
            const T w = n ? gj[src] : T(1);
            for (int64_t k = 0; k < H; ++k) gated[k] += w * f[k];
          }
        }
        layer_backward_row(L, a, h_prev, gated.data(), L.kind == kLstm ? slab(s.cs, j, t, T_ + 1, H) + b * H : nullptr,
                           L.kind == kLstm ? slab(s.hc, j, t, T_, H) + b * H : nullptr, dhj,
                           L.kind == kLstm ? dc + (j * B + b) * H : nullptr, d, ds.data(), direct_j);
        // the gated sum's gradient: to the feedback products (into drec) and the global gates
        for (int64_t src = 0; src < NL; ++src) {
          const T* __restrict__ f = slab(s.fb, src, t, T_, NL * H) + b * NL * H + j * H;
          T* __restrict__ dr = slab(drec, src, t, T_, R) + b * R + j * H;
          const T w = n ? gj[src] : T(1);
          T dot = 0;
          for (int64_t k = 0; k < H; ++k) dr[k] = w * ds[k], dot += ds[k] * f[k];
          if (n) d[GH + src] = dot * gj[src] * (T(1) - gj[src]);
        }
      }
      if (j > 0) {  // to the layer below's output at this step, through w_bu[j-1]
        const T* below = back_up[j - 1](dp);
        std::memcpy(d_in.data(), below, B * H * sizeof(T));
      }
    }
    // the unit-wise and global rows of drec, then the gradients reaching h^i_{t-1}
    for (int64_t i = 0; i < NL; ++i) {
      for (int64_t b = 0; b < B; ++b) {
        T* dr = slab(drec, i, t, T_, R) + b * R;
        const bool padded = mask && !mask[t * B + b];
        if (padded) {
          std::fill(dr, dr + R, T(0));
          continue;
        }
        for (int64_t j = 0; j < NL; ++j) {
          const T* d = slab(dpre, j, t, T_, P) + b * P;
          if (L.all) std::memcpy(dr + NL * H + j * nu, d, nu * sizeof(T));
          for (int64_t k = 0; k < n; ++k) dr[NL * H + L.nur + j * NL + k] = d[GH + k];
        }
        if (!L.all && nu) std::memcpy(dr + NL * H, slab(dpre, i, t, T_, P) + b * P, nu * sizeof(T));
      }
      const T* dprev = back_rec[i](slab(drec, i, t, T_, R));
      for (int64_t b = 0; b < B; ++b) {
        if (mask && !mask[t * B + b]) continue;
        T* dhi = dh + (i * B + b) * H;
        const T* dir = direct.data() + (i * B + b) * H;
        for (int64_t k = 0; k < H; ++k) dhi[k] = dprev[b * H + k] + dir[k];
      }
    }
  }
}

// Returns out (T, B, H) and what the backward reads: hs, cs, acts, gs, fb, hc.
std::vector<at::Tensor> gf_forward(const at::Tensor& xp, const at::Tensor& w_bu, const at::Tensor& bias_bu,
                                   const at::Tensor& w_hh, const at::Tensor& h0, const at::Tensor& c0,
                                   const at::Tensor& mask, int64_t kind, bool feedback_gates, bool all) {
  TORCH_CHECK(xp.dim() == 3, "xp must be (T, B, P)");
  const Layout L(xp.size(0), xp.size(1), w_hh, kind, feedback_gates, all);
  TORCH_CHECK(xp.size(2) == L.P, "xp must be (T, B, ", L.P, ")");
  check(xp, xp, "xp"), check(w_hh, xp, "w_hh"), check(h0, xp, "h0");
  if (L.L > 1) check(w_bu, xp, "w_bu"), check(bias_bu, xp, "bias_bu");
  if (kind == kLstm) check(c0, xp, "c0");
  const bool* m = mask_data(mask, L.T, L.B);
  const auto options = xp.options();
  const int64_t T = L.T, B = L.B, H = L.H, NL = L.L;
  auto hs = at::empty({NL, T + 1, B, H}, options);
  auto cs = at::empty({kind == kLstm ? NL : 0, T + 1, B, H}, options);
  auto acts = at::empty({NL, T, B, L.G * H}, options), gs = at::empty({NL, T, B, L.n}, options);
  auto fb = at::empty({NL, T, B, NL * H}, options);
  auto hc = at::empty({kind == kLstm ? NL : 0, T, B, H}, options), out = at::empty({T, B, H}, options);
  hs.select(1, 0).copy_(h0);
  if (kind == kLstm) cs.select(1, 0).copy_(c0);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gf_forward", [&] {
    auto ptr = [](at::Tensor& t) { return t.numel() ? t.data_ptr<scalar_t>() : nullptr; };
    Saved<scalar_t> s{ptr(hs), ptr(cs), ptr(acts), ptr(gs), ptr(fb), ptr(hc)};
    forward_loop<scalar_t>(L, m, xp.data_ptr<scalar_t>(), w_bu, NL > 1 ? bias_bu.data_ptr<scalar_t>() : nullptr,
                           w_hh, s, out.data_ptr<scalar_t>());
  });
  return {out, hs, cs, acts, gs, fb, hc};
}

// Returns the gradients of xp, w_bu, bias_bu, w_hh, h0, c0.
std::vector<at::Tensor> gf_backward(const at::Tensor& dout, const at::Tensor& dh_final, const at::Tensor& dc_final,
                                    const at::Tensor& w_bu, const at::Tensor& w_hh, const at::Tensor& hs,
                                    const at::Tensor& cs, const at::Tensor& acts, const at::Tensor& gs,
                                    const at::Tensor& fb, const at::Tensor& hc, const at::Tensor& mask,
                                    int64_t kind, bool feedback_gates, bool all) {
  TORCH_CHECK(hs.dim() == 4, "hs must be (L, T+1, B, H)");
  const int64_t T = hs.size(1) - 1, B = hs.size(2);
  const Layout L(T, B, w_hh, kind, feedback_gates, all);
  for (const auto& [t, name] : {std::pair{dout, "dout"}, {dh_final, "dh_final"}, {w_hh, "w_hh"}, {hs, "hs"},
                                {acts, "acts"}, {gs, "gs"}, {fb, "fb"}}) {
    check(t, dout, name);
  }
  if (kind == kLstm) check(dc_final, dout, "dc_final"), check(cs, dout, "cs"), check(hc, dout, "hc");
  if (L.L > 1) check(w_bu, dout, "w_bu");
  const bool* m = mask_data(mask, T, B);
  const auto options = dout.options();
  const int64_t H = L.H, NL = L.L, P = L.P, R = L.R;
  auto dpre = at::empty({NL, T, B, P}, options), drec = at::empty({NL, T, B, R}, options);
  auto dh = dh_final.clone();
  auto dc = kind == kLstm ? dc_final.clone() : at::empty({0}, options);
  AT_DISPATCH_FLOATING_TYPES(dout.scalar_type(), "gf_backward", [&] {
    auto ptr = [](const at::Tensor& t) { return t.numel() ? const_cast<scalar_t*>(t.data_ptr<scalar_t>()) : nullptr; };
    Saved<scalar_t> s{ptr(hs), ptr(cs), ptr(acts), ptr(gs), ptr(fb), ptr(hc)};
    backward_loop<scalar_t>(L, m, dout.data_ptr<scalar_t>(), w_bu, w_hh, s, dpre.data_ptr<scalar_t>(),
                            drec.data_ptr<scalar_t>(), dh.data_ptr<scalar_t>(), ptr(dc));
  });
  // the matrices' gradients: one product over all steps each (padded steps contribute zeros)
  auto dw_hh = at::empty_like(w_hh);
  for (int64_t i = 0; i < NL; ++i) {
    dw_hh[i].copy_(weight_grad(drec[i].view({T * B, R}), hs[i].narrow(0, 0, T).reshape({T * B, H})));
  }
  auto dw_bu = at::empty({NL - 1, P, H}, options), dbias_bu = at::empty({NL - 1, P}, options);
  for (int64_t j = 1; j < NL; ++j) {
    auto d2 = dpre[j].view({T * B, P});
    dw_bu[j - 1].copy_(weight_grad(d2, hs[j - 1].narrow(0, 1, T).reshape({T * B, H})));
    dbias_bu[j - 1].copy_(d2.sum(0));
  }
  return {dpre[0].contiguous(), dw_bu, dbias_bu, dw_hh, dh, dc};
}

}  // namespace

TORCH_LIBRARY(rnnbench_gf, m) {
  m.def("forward", &gf_forward);
  m.def("backward", &gf_backward);
  m.def("projection", &projection);
  m.def("projection_backward", &projection_backward);
}
