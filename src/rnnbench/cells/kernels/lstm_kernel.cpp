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
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
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

constexpr int64_t kGate = 0, kNone = 1, kCoupled = 2;  // forget gate: a gate, f = 1, f = 1 - i

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

// Each step of each row is one pass over the units, branch-free so that it vectorises. A gate, peephole or
// gate recurrence that the variant lacks reads a stand-in (ones or zeros, which leave every value
// exactly as without it) and writes to scratch.
template <typename T>
struct StandIns {
  int64_t H;
  std::vector<T> ones, zeros, scratch;
  explicit StandIns(int64_t H_) : H(H_), ones(H_, T(1)), zeros(H_, T(0)), scratch(10 * H_, T(0)) {}
  T* sink(int k) { return scratch.data() + k * H; }
};

// a where mask is all ones, b where it is zero: the variant's choices as bit operations, which the loops
// vectorise (a ?: on a flag they do not)
template <typename T>
inline T choose(typename ExpConstants<T>::Bits mask, T a, T b) {
  typename ExpConstants<T>::Bits x, y;
  std::memcpy(&x, &a, sizeof a);
  std::memcpy(&y, &b, sizeof b);
  x = (x & mask) | (y & ~mask);
  T r;
  std::memcpy(&r, &x, sizeof r);
  return r;
}

template <typename T>
typename ExpConstants<T>::Bits mask_of(bool flag) {
  return flag ? ~typename ExpConstants<T>::Bits(0) : 0;
}

// One forward step of one row. a*: the gate pre-activations, replaced by the activations.
template <typename T>
void forward_row(int64_t H, bool input_gate, bool forget_gate, bool output_gate, bool coupled, bool block_tanh,
                 bool output_tanh, T* __restrict__ ai, T* __restrict__ af, T* __restrict__ az,
                 T* __restrict__ ao, const T* __restrict__ pi, const T* __restrict__ pf, const T* __restrict__ po,
                 const T* __restrict__ cp, T* __restrict__ c, T* __restrict__ hc, T* __restrict__ y,
                 T* __restrict__ out, T* __restrict__ gi, T* __restrict__ gf, T* __restrict__ go) {
  const auto mi = mask_of<T>(input_gate), mf = mask_of<T>(forget_gate), mo = mask_of<T>(output_gate);
  const auto mc = mask_of<T>(coupled), mg = mask_of<T>(block_tanh), mh = mask_of<T>(output_tanh);
  for (int64_t h = 0; h < H; ++h) {  // computed whether used or not, then chosen: no branches
    const T c_prev = cp[h];
    const T i_gate = sigmoid(ai[h] + pi[h] * c_prev), f_act = sigmoid(af[h] + pf[h] * c_prev);
    const T z_tanh = tanh_(az[h]);
    const T i = choose(mi, i_gate, T(1));
    const T f_gate = choose(mf, f_act, T(1));
    const T z = choose(mg, z_tanh, az[h]);
    const T f = choose(mc, T(1) - i, f_gate);
    const T c_new = z * i + c_prev * f;
    const T o_gate = sigmoid(ao[h] + po[h] * c_new), c_tanh = tanh_(c_new);  // o's peephole reads the new c
    const T o = choose(mo, o_gate, T(1));
    const T h_c = choose(mh, c_tanh, c_new);
    const T y_new = h_c * o;
    ai[h] = i, af[h] = f_gate, az[h] = z, ao[h] = o;
    c[h] = c_new, hc[h] = h_c, y[h] = y_new, out[h] = y_new;
    gi[h] = i, gf[h] = f_gate, go[h] = o;
  }
}

// One backward step of one row: from the gradients reaching y_t (dout + dy_rec), c_t (dc_rec) and the
// gate state (dg*), the gradients of the pre-activations (d*), of c_{t-1} (into dc_rec) and the peepholes'
// (accumulated in dp*).
template <typename T>
void backward_row(int64_t H, bool coupled, bool block_tanh, bool output_tanh, const T* __restrict__ i,
                  const T* __restrict__ f, const T* __restrict__ z, const T* __restrict__ o,
                  const T* __restrict__ cp, const T* __restrict__ c, const T* __restrict__ hc,
                  const T* __restrict__ dout, const T* __restrict__ dy_rec, T* __restrict__ dc_rec,
                  const T* __restrict__ dgi, const T* __restrict__ dgf, const T* __restrict__ dgo,
                  const T* __restrict__ pi, const T* __restrict__ pf, const T* __restrict__ po, T* __restrict__ di,
                  T* __restrict__ df, T* __restrict__ dz, T* __restrict__ d_o, T* __restrict__ dpi,
                  T* __restrict__ dpf, T* __restrict__ dpo) {
  for (int64_t h = 0; h < H; ++h) {
    const T dy = dout[h] + dy_rec[h];
    const T ig = i[h], fg = f[h], zg = z[h], og = o[h], c_prev = cp[h], h_c = hc[h];
    const T d_out_gate = (dy * h_c + dgo[h]) * og * (T(1) - og);  // y = h(c) o
    const T dc = dc_rec[h] + dy * og * (output_tanh ? T(1) - h_c * h_c : T(1)) + d_out_gate * po[h];
    const T d_block = dc * ig * (block_tanh ? T(1) - zg * zg : T(1));
    const T d_in = ((coupled ? dc * zg - dc * c_prev : dc * zg) + dgi[h]) * ig * (T(1) - ig);  // CIFG: f = 1 - i
    const T d_forget = (dc * c_prev + dgf[h]) * fg * (T(1) - fg);
    dc_rec[h] = dc * (coupled ? T(1) - ig : fg) + d_in * pi[h] + d_forget * pf[h];
    di[h] = d_in, df[h] = d_forget, dz[h] = d_block, d_o[h] = d_out_gate;
    dpi[h] += d_in * c_prev, dpf[h] += d_forget * c_prev, dpo[h] += d_out_gate * c[h];
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
  StandIns<T> stand(H);
  auto peep = [&](int64_t block) { return L.peepholes && block >= 0 ? peephole + block * H : stand.zeros.data(); };
  const T *pi = peep(L.sig_i), *pf = peep(L.sig_f), *po = peep(L.sig_o);
  for (int64_t t = 0; t < L.T; ++t) {
    const T *y_prev = ys + t * B * H, *c_prev = cs + t * B * H, *g_prev = gs + t * B * SH;
    const T* rec = recurrent(y_prev);  // (B, G*H)
    const T* gate_rec = L.recurrence ? (*gate_recurrent)(g_prev) : nullptr;  // (B, S*H)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* a = acts + row * GH;
      T* g = L.recurrence ? gs + (row + B) * SH : nullptr;
      if (mask && !mask[row]) {  // padded: keep the state, output 0
        std::memcpy(cs + (row + B) * H, c_prev + b * H, H * sizeof(T));
        std::memcpy(ys + (row + B) * H, y_prev + b * H, H * sizeof(T));
        if (g) std::memcpy(g, g_prev + b * SH, SH * sizeof(T));
        std::fill(out + row * H, out + (row + 1) * H, T(0));
        continue;
      }
      const T* __restrict__ xp_b = xp + row * GH;
      const T* __restrict__ rec_b = rec + b * GH;
      for (int64_t k = 0; k < GH; ++k) a[k] = xp_b[k] + rec_b[k];  // the pre-activations
      if (gate_rec) {
        for (auto [slot, block] : sigmoid_gates) {
          T* __restrict__ ak = a + slot * H;
          const T* __restrict__ rk = gate_rec + b * SH + block * H;
          for (int64_t h = 0; h < H; ++h) ak[h] += rk[h];
        }
      }
      auto gate = [&](int64_t slot, int k) { return slot >= 0 ? a + slot * H : stand.sink(k); };
      auto state = [&](int64_t block, int k) { return g && block >= 0 ? g + block * H : stand.sink(k); };
      forward_row(H, L.slot_i >= 0, L.slot_f >= 0, L.slot_o >= 0, L.forget == kCoupled, L.block_tanh,
                  L.output_tanh, gate(L.slot_i, 0), gate(L.slot_f, 1), a + L.slot_z * H, gate(L.slot_o, 2), pi,
                  pf, po, c_prev + b * H, cs + (row + B) * H, hc + row * H, ys + (row + B) * H, out + row * H,
                  state(L.sig_i, 3), state(L.sig_f, 4), state(L.sig_o, 5));
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
  StandIns<T> stand(H);
  const T* ones = stand.ones.data();
  const T* zeros = stand.zeros.data();
  auto peep = [&](int64_t block) { return L.peepholes && block >= 0 ? peephole + block * H : zeros; };
  auto peep_grad = [&](int64_t block, int k) {
    return L.peepholes && block >= 0 ? dpeep + block * H : stand.sink(k);
  };
  const T *pi = peep(L.sig_i), *pf = peep(L.sig_f), *po = peep(L.sig_o);
  T *dpi = peep_grad(L.sig_i, 4), *dpf = peep_grad(L.sig_f, 5), *dpo = peep_grad(L.sig_o, 6);
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
      const T* a = acts + row * GH;
      auto gate = [&](int64_t slot) { return slot >= 0 ? a + slot * H : ones; };
      auto gate_grad = [&](int64_t slot, int k) { return slot >= 0 ? d + slot * H : stand.sink(k); };
      auto state_grad = [&](int64_t block) { return dsig_t && block >= 0 ? dg_rec + b * SH + block * H : zeros; };
      backward_row(H, L.forget == kCoupled, L.block_tanh, L.output_tanh, gate(L.slot_i), gate(L.slot_f),
                   a + L.slot_z * H, gate(L.slot_o), cs + row * H, cs + (row + B) * H, hc + row * H,
                   dout + row * H, dy_rec + b * H, dc_rec + b * H, state_grad(L.sig_i), state_grad(L.sig_f),
                   state_grad(L.sig_o), pi, pf, po, gate_grad(L.slot_i, 0), gate_grad(L.slot_f, 1),
                   d + L.slot_z * H, gate_grad(L.slot_o, 2), dpi, dpf, dpo);
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
  const bool* m = mask_data(mask, L.T, L.B);
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
  const bool* m = mask_data(mask, L.T, L.B);
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
  auto dw_ih = weight_grad(d2, x.view({T * B, L.I}));
  auto dbias = d2.sum(0);
  auto dw_hh = weight_grad(d2, ys.narrow(0, 0, T).reshape({T * B, H}));
  auto dw_gg = L.recurrence ? weight_grad(dsig.view({T * B, SH}), gs.narrow(0, 0, T).reshape({T * B, SH}))
                            : at::empty({0}, options);
  return {dx, dw_ih, dbias, dy_rec, dc_rec, dg_rec, dw_hh, dpeep, dw_gg};
}

// ---- a population's members (rnnbench/member_steps.py) in one call ----------------------------------------
// Every tensor has a leading member dimension K and is padded to the largest member's hidden size Hm (zero
// units appended to every gate block, rnnbench/padding.py) and to the longest member's T steps. Member k
// runs the layer above on its own slices: its sizes[k] units of every block, its lengths[k] steps, its
// mask only where masked[k] (a column padded within its length). Its input keeps the padded width: the
// padded input features and the weights reading them are 0. Outputs, final states and gradients come back
// padded, with zeros in the padding; the per-member tensors the backward reads ride along in `saved`.

using Blocks = std::vector<std::pair<int64_t, int64_t>>;  // (dimension, blocks of Hm units), in order

// Member k's units of t, a view: each listed dimension split into (blocks, Hm) and cut to (blocks, H)
at::Tensor units_view(const at::Tensor& t, const Blocks& dims, int64_t Hm, int64_t H) {
  std::vector<int64_t> shape, cut;
  size_t next = 0;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (next < dims.size() && dims[next].first == d) {
      shape.push_back(dims[next++].second);
      cut.push_back(int64_t(shape.size()));
      shape.push_back(Hm);
    } else {
      shape.push_back(t.size(d));
    }
  }
  auto v = t.view(shape);
  for (int64_t d : cut) v = v.narrow(d, 0, H);
  return v;
}

// the member's own tensor (contiguous, blocks of H)
at::Tensor take(const at::Tensor& t, const Blocks& dims, int64_t Hm, int64_t H) {
  auto shape = t.sizes().vec();
  for (auto [d, blocks] : dims) shape[d] = blocks * H;
  return units_view(t, dims, Hm, H).contiguous().view(shape);
}

// the member's own tensor written back into its units of the padded dst
void put(const at::Tensor& dst, const at::Tensor& own, const Blocks& dims, int64_t Hm, int64_t H) {
  auto v = units_view(dst, dims, Hm, H);
  v.copy_(own.view(v.sizes()));
}

struct Members {
  int64_t K, Hm;
  std::vector<int64_t> sizes, lengths, masked;
};

Members members_of(const at::Tensor& w_hh, at::IntArrayRef sizes, at::IntArrayRef lengths, at::IntArrayRef masked) {
  Members m{w_hh.size(0), w_hh.size(2), sizes.vec(), lengths.vec(), masked.vec()};
  TORCH_CHECK(int64_t(m.sizes.size()) == m.K && int64_t(m.lengths.size()) == m.K && int64_t(m.masked.size()) == m.K,
              "sizes, lengths and masked need one entry per member");
  return m;
}

// Member k's input, weights and mask cut to its own units and steps: what both passes read
struct Own {
  at::Tensor x, w_ih, w_hh, peephole, w_gg, mask;
};

Own own_tensors(const Members& m, int64_t k, int64_t G, const at::Tensor& x, const at::Tensor& w_ih,
                const at::Tensor& w_hh, const at::Tensor& peephole, const at::Tensor& w_gg, const at::Tensor& mask) {
  const int64_t H = m.sizes[k], L = m.lengths[k], Hm = m.Hm, S = G - 1;
  const auto empty = x.new_empty({0});
  return {x[k].narrow(0, 0, L).contiguous(),
          take(w_ih[k], {{0, G}}, Hm, H),
          take(w_hh[k], {{0, G}, {1, 1}}, Hm, H),
          peephole.numel() > 0 ? take(peephole[k], {{1, 1}}, Hm, H) : empty,
          w_gg.numel() > 0 ? take(w_gg[k], {{0, S}, {1, S}}, Hm, H) : empty,
          m.masked[k] ? mask[k].narrow(0, 0, L).contiguous() : empty.to(at::kBool)};
}

int64_t gate_count(bool input_gate, int64_t forget, bool output_gate) {
  return 1 + input_gate + (forget == kGate) + output_gate;
}

// Returns out (K, T, B, Hm), the final y, c (K, B, Hm) and g (K, B, S*Hm), then 5 saved tensors per member.
std::vector<at::Tensor> lstm_forward_members(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& bias,
                                             const at::Tensor& y0, const at::Tensor& c0, const at::Tensor& g0,
                                             const at::Tensor& w_hh, const at::Tensor& peephole,
                                             const at::Tensor& w_gg, const at::Tensor& mask, at::IntArrayRef sizes,
                                             at::IntArrayRef lengths, at::IntArrayRef masked, bool input_gate,
                                             int64_t forget, bool output_gate, bool block_tanh, bool output_tanh) {
  const int64_t G = gate_count(input_gate, forget, output_gate), S = G - 1;
  const Members m = members_of(w_hh, sizes, lengths, masked);
  const bool recurrence = w_gg.numel() > 0;
  auto out = at::zeros({m.K, x.size(1), x.size(2), m.Hm}, x.options());
  auto y = at::zeros_like(y0), c = at::zeros_like(c0), g = at::zeros_like(g0);
  std::vector<at::Tensor> result{out, y, c, g};
  const auto empty = x.new_empty({0});
  for (int64_t k = 0; k < m.K; ++k) {
    const int64_t H = m.sizes[k], L = m.lengths[k], Hm = m.Hm;
    const Own o = own_tensors(m, k, G, x, w_ih, w_hh, peephole, w_gg, mask);
    auto saved = lstm_forward(o.x, o.w_ih, take(bias[k], {{0, G}}, Hm, H), take(y0[k], {{1, 1}}, Hm, H),
                              take(c0[k], {{1, 1}}, Hm, H), recurrence ? take(g0[k], {{1, S}}, Hm, H) : empty,
                              o.w_hh, o.peephole, o.w_gg, o.mask, input_gate, forget, output_gate, block_tanh,
                              output_tanh);
    put(out[k].narrow(0, 0, L), saved[0], {{2, 1}}, Hm, H);
    put(y[k], saved[1][L], {{1, 1}}, Hm, H);
    put(c[k], saved[2][L], {{1, 1}}, Hm, H);
    if (recurrence) put(g[k], saved[3][L], {{1, S}}, Hm, H);
    result.insert(result.end(), saved.begin() + 1, saved.end());  // ys, cs, gs, acts, hc
  }
  return result;
}

// Returns the gradients of x (empty unless input_grad), w_ih, bias, y0, c0, g0, w_hh, peephole, w_gg, each
// (K, ...) and padded. dout, dy, dc, dg: contiguous.
std::vector<at::Tensor> lstm_backward_members(const at::Tensor& dout, const at::Tensor& dy, const at::Tensor& dc,
                                              const at::Tensor& dg, const at::Tensor& x, const at::Tensor& w_ih,
                                              const at::Tensor& w_hh, const at::Tensor& peephole,
                                              const at::Tensor& w_gg, const at::Tensor& mask, at::TensorList saved,
                                              at::IntArrayRef sizes, at::IntArrayRef lengths, at::IntArrayRef masked,
                                              bool input_grad, bool input_gate, int64_t forget, bool output_gate,
                                              bool block_tanh, bool output_tanh) {
  const int64_t G = gate_count(input_gate, forget, output_gate), S = G - 1;
  const Members m = members_of(w_hh, sizes, lengths, masked);
  const bool peepholes = peephole.numel() > 0, recurrence = w_gg.numel() > 0;
  TORCH_CHECK(int64_t(saved.size()) == 5 * m.K, "saved must hold 5 tensors per member");
  auto dx = input_grad ? at::zeros_like(x) : x.new_empty({0});
  auto dw_ih = at::zeros_like(w_ih), dbias = at::zeros({m.K, G * m.Hm}, x.options());
  auto dy0 = at::zeros_like(dy), dc0 = at::zeros_like(dc), dg0 = at::zeros_like(dg);
  auto dw_hh = at::zeros_like(w_hh), dpeep = at::zeros_like(peephole), dw_gg = at::zeros_like(w_gg);
  const auto empty = x.new_empty({0});
  for (int64_t k = 0; k < m.K; ++k) {
    const int64_t H = m.sizes[k], L = m.lengths[k], Hm = m.Hm;
    const at::Tensor* s = saved.data() + 5 * k;  // ys, cs, gs, acts, hc
    const Own o = own_tensors(m, k, G, x, w_ih, w_hh, peephole, w_gg, mask);
    auto grads = lstm_backward(take(dout[k].narrow(0, 0, L), {{2, 1}}, Hm, H), take(dy[k], {{1, 1}}, Hm, H),
                               take(dc[k], {{1, 1}}, Hm, H), recurrence ? take(dg[k], {{1, S}}, Hm, H) : empty, o.x,
                               o.w_ih, s[0], s[1], s[2], s[3], s[4], o.w_hh, o.peephole, o.w_gg, o.mask, input_grad,
                               input_gate, forget, output_gate, block_tanh, output_tanh);
    if (input_grad) dx[k].narrow(0, 0, L).copy_(grads[0]);
    put(dw_ih[k], grads[1], {{0, G}}, Hm, H);
    put(dbias[k], grads[2], {{0, G}}, Hm, H);
    put(dy0[k], grads[3], {{1, 1}}, Hm, H);
    put(dc0[k], grads[4], {{1, 1}}, Hm, H);
    if (recurrence) put(dg0[k], grads[5], {{1, S}}, Hm, H);
    put(dw_hh[k], grads[6], {{0, G}, {1, 1}}, Hm, H);
    if (peepholes) put(dpeep[k], grads[7], {{1, 1}}, Hm, H);
    if (recurrence) put(dw_gg[k], grads[8], {{0, S}, {1, S}}, Hm, H);
  }
  return {dx, dw_ih, dbias, dy0, dc0, dg0, dw_hh, dpeep, dw_gg};
}

}  // namespace

TORCH_LIBRARY(rnnbench_lstm, m) {
  m.def("forward", &lstm_forward);
  m.def("backward", &lstm_backward);
  m.def("forward_members", &lstm_forward_members);
  m.def("backward_members", &lstm_backward_members);
}
