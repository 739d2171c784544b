// Checks of the tensors the package's C++ kernels (rnnbench/cells/*_kernel.cpp) are given.

#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace rnnbench {

inline void check(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == like.scalar_type() && t.is_contiguous(), name,
              " must be a contiguous CPU tensor of the input's dtype");
}

// the runner's mask (T, B), True at real steps, or nullptr where there is none (empty)
inline const bool* mask_data(const at::Tensor& mask, int64_t T, int64_t B) {
  if (mask.numel() == 0) return nullptr;
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.is_contiguous() && mask.size(0) == T && mask.size(1) == B,
              "mask must be a contiguous bool (T, B)");
  return mask.data_ptr<bool>();
}

}  // namespace rnnbench
