// exp, sigmoid and tanh for the package's C++ kernels (rnnbench/cells/*_kernel.cpp), written so that the
// kernels' loops over the units vectorise.

#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnbench {

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

}  // namespace rnnbench
