// The GRU's and the MUT cells' layer on the CPU in two calls: the whole time loop forward, and its
// backward (backpropagation through time). Built and loaded by rnnbench/cells/gru_kernel.py, which also
// holds the equations. Each of these cells is, per step, with a the input projection of the step:
//   r = σ(a_r + W_r h),  z = σ(a_z + W_z h | a_z + W_z tanh(h) | a_z),  c = tanh(a_c + W_c (r ⊙ h))
//   h' = z ⊙ h + (1 − z) ⊙ c (GRU: z keeps the state)  or  h' = z ⊙ c + (1 − z) ⊙ h (MUT1..3)
//
// Tensors are contiguous, time-major, float or double:
//   xp (T, B, 3H): the input projection of all steps (the cell's project_input, bias included, its
//     products by `projection` below); the
//     blocks of z and r at xz and xr, the candidate's at 2;
//   w_hh (n*H, H): the recurrent matrices, W_z at block hz (on h; -1: none) or tz (on tanh(h); -1: none),
//     W_r at hr, W_c at hc. The matrices on h (W_r, and W_z at hz) are one product per step: adjacent
//     blocks, in the same order as their gates' blocks in xp;
//   mask (T, B) bool or empty: padded steps keep the state and output zeros.
// Saved for the backward: hs (T+1, B, H) the state after each step (index 0: initial), acts (T, B, 3H)
// z, r and c in xp's blocks, rhs (T, B, H) r ⊙ h, ths (T, B, H) tanh(h) where z reads it (else empty).

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "kernel_args.h"
#include "kernel_math.h"
#include "kernel_products.h"

namespace {

using namespace rnnbench;

struct Layout {
  int64_t T, B, H;
  int64_t xz, xr, hz, hr, tz, hc;
  bool z_keeps;
  int64_t first_w, first_x, count;  // the product on h: w_hh blocks [first_w, +count), xp's [first_x, +count)

  Layout(const at::Tensor& xp, const at::Tensor& w_hh, int64_t xz_, int64_t xr_, int64_t hz_, int64_t hr_,
         int64_t tz_, int64_t hc_, bool z_keeps_)
      : xz(xz_), xr(xr_), hz(hz_), hr(hr_), tz(tz_), hc(hc_), z_keeps(z_keeps_) {
    TORCH_CHECK(xp.dim() == 3 && w_hh.dim() == 2, "xp must be (T, B, 3H) and w_hh (n*H, H)");
    T = xp.size(0), B = xp.size(1), H = w_hh.size(1);
    const int64_t n = w_hh.size(0) / H;
    TORCH_CHECK(xp.size(2) == 3 * H && w_hh.size(0) == n * H, "xp must be (T, B, 3H) and w_hh (n*H, H)");
    TORCH_CHECK(xz != xr && xz >= 0 && xz < 2 && xr >= 0 && xr < 2, "xz, xr must be the blocks 0 and 1");
    TORCH_CHECK(hz < 0 || tz < 0, "z reads h or tanh(h), not both");
    for (int64_t block : {hz, hr, tz, hc}) TORCH_CHECK(block < n, "a block of w_hh is out of range");
    TORCH_CHECK(hr >= 0 && hc >= 0, "w_hh must hold W_r and W_c");
    if (hz >= 0) {
      TORCH_CHECK(hz - hr == xz - xr && (hz - hr == 1 || hz - hr == -1),
                  "W_z and W_r must be adjacent in w_hh, in the order of z and r in xp");
    }
    first_w = hz >= 0 ? std::min(hz, hr) : hr;
    first_x = hz >= 0 ? std::min(xz, xr) : xr;
    count = hz >= 0 ? 2 : 1;
  }

  at::Tensor blocks(const at::Tensor& w_hh, int64_t first, int64_t n) const {
    return w_hh.narrow(0, first * H, n * H);
  }
};

// The gates of one row: z and r (into az, ar) and r ⊙ h. rz, rr: their recurrent terms.
template <typename T>
void gates_row(int64_t H, const T* __restrict__ xz, const T* __restrict__ xr, const T* __restrict__ rz,
               const T* __restrict__ rr, const T* __restrict__ h, T* __restrict__ az, T* __restrict__ ar,
               T* __restrict__ rh) {
  for (int64_t k = 0; k < H; ++k) {
    const T r = sigmoid(xr[k] + rr[k]);
    az[k] = sigmoid(xz[k] + rz[k]);
    ar[k] = r;
    rh[k] = r * h[k];
  }
}

// The candidate c (into ac) and the new state of one row. rc: W_c (r ⊙ h).
template <typename T>
void update_row(int64_t H, bool z_keeps, const T* __restrict__ xc, const T* __restrict__ rc,
                const T* __restrict__ z, const T* __restrict__ h, T* __restrict__ ac, T* __restrict__ h_new,
                T* __restrict__ out) {
  if (z_keeps) {
    for (int64_t k = 0; k < H; ++k) {
      const T c = tanh_(xc[k] + rc[k]);
      const T y = z[k] * h[k] + (T(1) - z[k]) * c;
      ac[k] = c, h_new[k] = y, out[k] = y;
    }
  } else {
    for (int64_t k = 0; k < H; ++k) {
      const T c = tanh_(xc[k] + rc[k]);
      const T y = c * z[k] + h[k] * (T(1) - z[k]);
      ac[k] = c, h_new[k] = y, out[k] = y;
    }
  }
}

// The time loop; writes the saved tensors and the outputs.
template <typename T>
void forward_loop(const Layout& L, const bool* mask, const T* xp, const at::Tensor& w_hh, T* acts, T* hs, T* rhs,
                  T* ths, T* out) {
  const int64_t B = L.B, H = L.H, H3 = 3 * H, C = L.count * H;
  StepProduct<T> on_h(L.blocks(w_hh, L.first_w, L.count), B);
  StepProduct<T> on_reset(L.blocks(w_hh, L.hc, 1), B);
  std::optional<StepProduct<T>> on_tanh;
  if (L.tz >= 0) on_tanh.emplace(L.blocks(w_hh, L.tz, 1), B);
  const std::vector<T> zeros(H, T(0));  // z's recurrent term where it has none (MUT1)
  for (int64_t t = 0; t < L.T; ++t) {
    const T* h_prev = hs + t * B * H;
    T* rh = rhs + t * B * H;
    const T* rec = on_h(h_prev);  // (B, C)
    const T* rec_tanh = nullptr;
    if (on_tanh) {
      T* th = ths + t * B * H;
      for (int64_t k = 0; k < B * H; ++k) th[k] = tanh_(h_prev[k]);
      rec_tanh = (*on_tanh)(th);
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      const T* x = xp + row * H3;
      T* a = acts + row * H3;
      const T* rz = L.hz >= 0 ? rec + b * C + (L.hz - L.first_w) * H : rec_tanh ? rec_tanh + b * H : zeros.data();
      gates_row(H, x + L.xz * H, x + L.xr * H, rz, rec + b * C + (L.hr - L.first_w) * H, h_prev + b * H,
                a + L.xz * H, a + L.xr * H, rh + b * H);
    }
    const T* rec_c = on_reset(rh);  // (B, H)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* h_new = hs + (row + B) * H;
      if (mask && !mask[row]) {  // padded: keep the state, output 0
        std::memcpy(h_new, h_prev + b * H, H * sizeof(T));
        std::fill(out + row * H, out + (row + 1) * H, T(0));
        continue;
      }
      T* a = acts + row * H3;
      update_row(H, L.z_keeps, xp + row * H3 + 2 * H, rec_c + b * H, a + L.xz * H, h_prev + b * H, a + 2 * H,
                 h_new, out + row * H);
    }
  }
}

// Backward through the state update of one row: from dh, the gradient reaching h', the pre-activation
// gradients of z (dz) and c (dc, also into dc_copy) and h's gradient by the direct path (into dh_prev).
template <typename T>
void update_backward_row(int64_t H, bool z_keeps, const T* __restrict__ dout, const T* __restrict__ dh_rec,
                         const T* __restrict__ z, const T* __restrict__ c, const T* __restrict__ h,
                         T* __restrict__ dz, T* __restrict__ dc, T* __restrict__ dc_copy, T* __restrict__ dh_prev) {
  for (int64_t k = 0; k < H; ++k) {
    const T dh = dout[k] + dh_rec[k], zk = z[k], ck = c[k];
    const T keep = z_keeps ? zk : T(1) - zk;  // the share of the old state in h'
    const T dz_act = z_keeps ? dh * (h[k] - ck) : dh * (ck - h[k]);
    const T d_c = dh * (T(1) - keep) * (T(1) - ck * ck);
    dz[k] = dz_act * zk * (T(1) - zk);
    dc[k] = d_c, dc_copy[k] = d_c;
    dh_prev[k] = dh * keep;
  }
}

// Backward through r ⊙ h of one row: drh, the gradient of r ⊙ h; r's pre-activation gradient into dr,
// h's added to dh_prev.
template <typename T>
void reset_backward_row(int64_t H, const T* __restrict__ drh, const T* __restrict__ r, const T* __restrict__ h,
                        T* __restrict__ dr, T* __restrict__ dh_prev) {
  for (int64_t k = 0; k < H; ++k) {
    const T rk = r[k];
    dr[k] = drh[k] * h[k] * rk * (T(1) - rk);
    dh_prev[k] += drh[k] * rk;
  }
}

// The time loop backwards: the gradients of xp (dxp, (T, B, 3H)) and of the initial state (in dh_rec).
template <typename T>
void backward_loop(const Layout& L, const bool* mask, const T* dout, const T* hs, const T* acts, const T* ths,
                   const at::Tensor& w_hh, T* dxp, T* dh_rec) {
  const int64_t B = L.B, H = L.H, H3 = 3 * H, C = L.count * H;
  StepProduct<T> to_h(L.blocks(w_hh, L.first_w, L.count).t(), B);  // d @ W: the gradients reaching h
  StepProduct<T> to_reset(L.blocks(w_hh, L.hc, 1).t(), B);
  std::optional<StepProduct<T>> to_tanh;
  if (L.tz >= 0) to_tanh.emplace(L.blocks(w_hh, L.tz, 1).t(), B);
  // a step's gradients, contiguous for the products: of c, of the gates on h, of z on tanh(h)
  std::vector<T> dc(B * H), dgates(B * C), dz_tanh(L.tz >= 0 ? B * H : 0), dh_prev(B * H);
  for (int64_t t = L.T - 1; t >= 0; --t) {
    const T* h_prev = hs + t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* d = dxp + row * H3;
      if (mask && !mask[row]) {  // padded: no gradient to this step; the state's passes by
        std::fill(d, d + H3, T(0));
        std::fill(dc.data() + b * H, dc.data() + (b + 1) * H, T(0));
        continue;
      }
      const T* a = acts + row * H3;
      update_backward_row(H, L.z_keeps, dout + row * H, dh_rec + b * H, a + L.xz * H, a + 2 * H, h_prev + b * H,
                          d + L.xz * H, d + 2 * H, dc.data() + b * H, dh_prev.data() + b * H);
    }
    const T* drh = to_reset(dc.data());  // (B, H)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* d = dxp + row * H3;
      if (!(mask && !mask[row])) {
        reset_backward_row(H, drh + b * H, acts + row * H3 + L.xr * H, h_prev + b * H, d + L.xr * H,
                           dh_prev.data() + b * H);
      }  // a padded row's d is zeros: it adds nothing to the products below
      std::memcpy(dgates.data() + b * C, d + L.first_x * H, C * sizeof(T));
      if (L.tz >= 0) std::memcpy(dz_tanh.data() + b * H, d + L.xz * H, H * sizeof(T));
    }
    const T* dh_gates = to_h(dgates.data());
    const T* dh_tanh = to_tanh ? (*to_tanh)(dz_tanh.data()) : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      if (mask && !mask[t * B + b]) continue;  // padded rows keep theirs
      T* __restrict__ dh = dh_rec + b * H;
      const T* __restrict__ direct = dh_prev.data() + b * H;
      const T* __restrict__ from_gates = dh_gates + b * H;
      for (int64_t k = 0; k < H; ++k) dh[k] = direct[k] + from_gates[k];
      if (dh_tanh) {
        const T* __restrict__ from_tanh = dh_tanh + b * H;
        const T* __restrict__ th = ths + (t * B + b) * H;
        for (int64_t k = 0; k < H; ++k) dh[k] += from_tanh[k] * (T(1) - th[k] * th[k]);
      }
    }
  }
}

// Returns out (T, B, H) and what the backward reads: hs, acts, rhs, ths.
std::vector<at::Tensor> gru_forward(const at::Tensor& xp, const at::Tensor& h0, const at::Tensor& w_hh,
                                    const at::Tensor& mask, int64_t xz, int64_t xr, int64_t hz, int64_t hr,
                                    int64_t tz, int64_t hc, bool z_keeps) {
  const Layout L(xp, w_hh, xz, xr, hz, hr, tz, hc, z_keeps);
  check(xp, xp, "xp"), check(h0, xp, "h0"), check(w_hh, xp, "w_hh");
  const bool* m = mask_data(mask, L.T, L.B);
  const auto options = xp.options();
  const int64_t T = L.T, B = L.B, H = L.H;
  auto hs = at::empty({T + 1, B, H}, options), acts = at::empty({T, B, 3 * H}, options);
  auto rhs = at::empty({T, B, H}, options), ths = at::empty({tz >= 0 ? T : 0, B, H}, options);
  auto out = at::empty({T, B, H}, options);
  hs[0].copy_(h0);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_forward", [&] {
    forward_loop<scalar_t>(L, m, xp.data_ptr<scalar_t>(), w_hh, acts.data_ptr<scalar_t>(), hs.data_ptr<scalar_t>(),
                           rhs.data_ptr<scalar_t>(), tz >= 0 ? ths.data_ptr<scalar_t>() : nullptr,
                           out.data_ptr<scalar_t>());
  });
  return {out, hs, acts, rhs, ths};
}

// Returns the gradients of xp, h0 and w_hh.
std::vector<at::Tensor> gru_backward(const at::Tensor& dout, const at::Tensor& dh_final, const at::Tensor& hs,
                                     const at::Tensor& acts, const at::Tensor& rhs, const at::Tensor& ths,
                                     const at::Tensor& w_hh, const at::Tensor& mask, int64_t xz, int64_t xr,
                                     int64_t hz, int64_t hr, int64_t tz, int64_t hc, bool z_keeps) {
  const Layout L(acts, w_hh, xz, xr, hz, hr, tz, hc, z_keeps);
  for (const auto& [t, name] : {std::pair{dout, "dout"}, {dh_final, "dh_final"}, {hs, "hs"}, {rhs, "rhs"},
                                {w_hh, "w_hh"}}) {
    check(t, acts, name);
  }
  if (tz >= 0) check(ths, acts, "ths");
  const bool* m = mask_data(mask, L.T, L.B);
  const int64_t T = L.T, B = L.B, H = L.H;
  auto dxp = at::empty({T, B, 3 * H}, acts.options());
  auto dh_rec = dh_final.clone();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "gru_backward", [&] {
    backward_loop<scalar_t>(L, m, dout.data_ptr<scalar_t>(), hs.data_ptr<scalar_t>(), acts.data_ptr<scalar_t>(),
                            tz >= 0 ? ths.data_ptr<scalar_t>() : nullptr, w_hh, dxp.data_ptr<scalar_t>(),
                            dh_rec.data_ptr<scalar_t>());
  });
  // the recurrent matrices' gradients: one product over all steps each (padded steps contribute zeros)
  auto d2 = dxp.view({T * B, 3 * H});
  auto block_grad = [&](int64_t x_block, int64_t n) { return d2.narrow(1, x_block * H, n * H).contiguous(); };
  auto dw_hh = at::zeros_like(w_hh);
  L.blocks(dw_hh, L.first_w, L.count)
      .copy_(weight_grad(block_grad(L.first_x, L.count), hs.narrow(0, 0, T).reshape({T * B, H})));
  L.blocks(dw_hh, hc, 1).copy_(weight_grad(block_grad(2, 1), rhs.view({T * B, H})));
  if (tz >= 0) L.blocks(dw_hh, tz, 1).copy_(weight_grad(block_grad(xz, 1), ths.view({T * B, H})));
  return {dxp, dh_rec, dw_hh};
}

}  // namespace

TORCH_LIBRARY(rnnbench_gru, m) {
  m.def("forward", &gru_forward);
  m.def("backward", &gru_backward);
  m.def("projection", &projection);
  m.def("projection_backward", &projection_backward);
}
