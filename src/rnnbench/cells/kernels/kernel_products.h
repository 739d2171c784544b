// The matrix products of the package's C++ kernels (rnnbench/cells/*_kernel.cpp): those over all steps
// (input projections, weight gradients) and a step's product with a recurrent matrix.

#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rnnbench {

// Matrix products. float32 goes through oneDNN's matmul where torch has it (mkldnn::_linear_pointwise,
// the recurrent weights packed once per sequence): on the AMD EPYC this was measured on it ran the
// layer's products up to twice as fast as MKL's sgemm, which at::mm calls there. Otherwise, or once a
// oneDNN call has thrown, at::mm.
// A step's product runs in plain loops where they beat a library call, whose fixed cost is several
// microseconds: while the matrix stays in cache between steps and the rows are few. Measured on one
// core (CPU time of a layer's forward and backward): loops faster for 1 row (H = 100, 650), up to 8
// rows with a 1 MB matrix (H = 200), 64 rows with a 64 KB one; slower for 32 rows with a 160 KB one.

template <typename T>
bool use_loops(int64_t B, int64_t K, int64_t N) {
  const int64_t bytes = K * N * int64_t(sizeof(T));
  return B == 1 || bytes <= (int64_t(64) << 10) || (B <= 8 && bytes <= (int64_t(1) << 20));
}

inline std::optional<c10::OperatorHandle> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchema({name, ""});
}

inline bool onednn_found() {
  static const bool found = find_op("mkldnn::_linear_pointwise") && find_op("mkldnn::_reorder_linear_weight");
  return found;
}

inline std::atomic<bool> onednn_failed{false};  // a oneDNN call threw: at::mm from then on, not a failed layer

inline bool use_onednn(const at::Tensor& like) {
  return like.scalar_type() == at::kFloat && onednn_found() && !onednn_failed;
}

// a (M, K) @ w^T + bias, w (N, K) plain or packed
inline at::Tensor onednn_linear(const at::Tensor& a, const at::Tensor& w, const std::optional<at::Tensor>& bias) {
  static const c10::OperatorHandle op = *find_op("mkldnn::_linear_pointwise");
  std::vector<c10::IValue> stack{a, w, bias ? c10::IValue(*bias) : c10::IValue(), c10::IValue(std::string("none")),
                                 c10::IValue(c10::List<std::optional<at::Scalar>>()), c10::IValue()};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

inline at::Tensor onednn_pack(const at::Tensor& w, int64_t batch) {
  static const c10::OperatorHandle op = *find_op("mkldnn::_reorder_linear_weight");
  std::vector<c10::IValue> stack{w, c10::IValue(batch)};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// a (M, K) @ w^T (+ bias), w (N, K): the products over all steps at once
inline at::Tensor linear(const at::Tensor& a, const at::Tensor& w, const std::optional<at::Tensor>& bias = std::nullopt) {
  if (use_onednn(a)) {
    try {
      return onednn_linear(a, w, bias);
    } catch (const std::exception&) {
      onednn_failed = true;
    }
  }
  return bias ? at::addmm(*bias, a, w.t()) : at::mm(a, w.t());
}

// out (B, N) = a (B, K) @ m (K, N), all row-major and contiguous; four rows of m at a time, used for every
// row of out while they are in cache
template <typename T>
void loop_matmul(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ m, int64_t B, int64_t K,
                 int64_t N) {
  std::fill(out, out + B * N, T(0));
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const T* __restrict__ m0 = m + k * N;
    const T* __restrict__ m1 = m0 + N;
    const T* __restrict__ m2 = m1 + N;
    const T* __restrict__ m3 = m2 + N;
    for (int64_t b = 0; b < B; ++b) {
      T* __restrict__ o = out + b * N;
      const T a0 = a[b * K + k], a1 = a[b * K + k + 1], a2 = a[b * K + k + 2], a3 = a[b * K + k + 3];
      for (int64_t n = 0; n < N; ++n) o[n] += a0 * m0[n] + a1 * m1[n] + a2 * m2[n] + a3 * m3[n];
    }
  }
  for (; k < K; ++k) {
    const T* __restrict__ mk = m + k * N;
    for (int64_t b = 0; b < B; ++b) {
      T* __restrict__ o = out + b * N;
      const T ak = a[b * K + k];
      for (int64_t n = 0; n < N; ++n) o[n] += ak * mk[n];
    }
  }
}

// a (B, K) @ w^T at every step, for one w (N, K) over the sequence
template <typename T>
class StepProduct {
 public:
  StepProduct(const at::Tensor& w, int64_t B)
      : B_(B), K_(w.size(1)), N_(w.size(0)), options_(w.options()), w_(w) {
    if (!use_loops<T>(B, K_, N_) && use_onednn(w)) {
      try {
        packed_ = onednn_pack(w.contiguous(), B);
        return;
      } catch (const std::exception&) {
        onednn_failed = true;
      }
    }
    plain();
  }

  // the (B, N) product, valid until the next call
  const T* operator()(const T* a) {
    auto a_t = [&] { return at::from_blob(const_cast<T*>(a), {B_, K_}, options_); };
    if (packed_.defined()) {
      try {
        result_ = onednn_linear(a_t(), packed_, std::nullopt).contiguous();
        return result_.data_ptr<T>();
      } catch (const std::exception&) {
        onednn_failed = true;
        plain();
      }
    }
    if (!use_loops<T>(B_, K_, N_)) {
      at::mm_out(out_, a_t(), rows_);
    } else {
      loop_matmul(out_.data_ptr<T>(), a, rows_.data_ptr<T>(), B_, K_, N_);
    }
    return out_.data_ptr<T>();
  }

 private:
  void plain() {
    packed_.reset();
    rows_ = w_.t().contiguous();  // (K, N)
    out_ = at::empty({B_, N_}, options_);
  }

  int64_t B_, K_, N_;
  at::TensorOptions options_;
  at::Tensor w_, packed_, rows_, out_, result_;
};

// The gradient of w in grads = inputs @ w^T over all steps (grads (M, N), inputs (M, K)): (N, K), as
// (inputs^T grads)^T, which oneDNN runs faster than grads^T inputs
inline at::Tensor weight_grad(const at::Tensor& grads, const at::Tensor& inputs) {
  return linear(inputs.t(), grads.t()).t().contiguous();
}

// The input projection x (M, I) w^T (+ bias) in front of a kernel's loop, in these products (oneDNN for
// float32, which ran them twice as fast as torch's linear here), and its backward: the gradients of x
// (empty unless input_grad) and w. Each kernel library registers both as its own operators.
inline at::Tensor projection(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& bias) {
  return linear(x, w, bias);
}

inline std::vector<at::Tensor> projection_backward(const at::Tensor& dout, const at::Tensor& x, const at::Tensor& w,
                                                   bool input_grad) {
  auto dx = input_grad ? linear(dout, w.t().contiguous()) : at::empty({0}, x.options());
  return {dx, weight_grad(dout, x)};
}

}  // namespace rnnbench
