// The hot loops, compiled once per instruction set (CMake builds this file three times with
// S2F_ISA = generic / avx2 / avx512; spectrogram.cpp picks one at run time with
// __builtin_cpu_supports). No -march=native: the binary runs on any x86-64.
// The instruction set is switched on with `#pragma GCC target` AFTER the standard headers,
// not with -m flags: template code from the headers (std::vector, std::min, ...) is then
// compiled for the baseline in every variant, so the linker's choice among the identical
// inline copies can never put an AVX instruction into the generic path.
//
// Layout: kBlock = 8 consecutive frames are processed together, one frame per SIMD lane, so
// every FFT butterfly, the real-FFT split and the power law are plain 8-wide float vector ops
// (GCC vector extensions; they lower to SSE2 in the generic build). Frames go in and come out
// through 8x8 register transposes (AVX) or scalar loops (generic).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "spectrogram.h"

#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifndef S2F_ISA
#define S2F_ISA generic
#endif
#define S2F_ISA_generic 1
#define S2F_ISA_avx2 2
#define S2F_ISA_avx512 3
#define S2F_CAT2(a, b) a##b
#define S2F_CAT(a, b) S2F_CAT2(a, b)
#define S2F_LEVEL S2F_CAT(S2F_ISA_, S2F_ISA)
#if S2F_LEVEL == 2
#pragma GCC target("avx2,fma")
#elif S2F_LEVEL == 3
#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512dq,avx512bw,prefer-vector-width=256")
#endif

namespace s2f {
namespace S2F_ISA {

typedef float vf __attribute__((vector_size(32)));
typedef float vfu __attribute__((vector_size(32), aligned(4)));  // unaligned access
typedef std::int32_t vi __attribute__((vector_size(32)));

namespace {

inline vf splat(float x) { return vf{x, x, x, x, x, x, x, x}; }
inline vf loadu(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void storeu(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }

// ---- fast power law -------------------------------------------------------------------
// |x|^p = exp2(p * log2|x|). log2 splits |x| into exponent and mantissa m (in [sqrt(1/2),
// sqrt(2)), or [0.75, 1.5) with AVX-512 getmant) and evaluates log2(1+u) = u * P(u) with a
// degree-6 P, |error| < 7e-7; exp2 splits y = n + f with |f| <= 1/2 and uses a degree-5
// polynomial, relative error < 2e-7 (least-squares fits on Chebyshev nodes, coefficients
// computed for this project with numpy). sign(x)|x|^0.3 then has relative error < 1e-6
// (tests/test_features_cpp.py requires <= 1e-5 for |x| > 1e-3 against float64 numpy).
// Inputs below FLT_MIN (zero and denormals) give exactly 0; |x|^p of them is < 4e-12 for p=0.3.
// Polynomial coefficients, highest degree first, one table per fit (least-squares on Chebyshev
// nodes): exp2(f) on [-0.5, 0.5]; log2(1+u) = u * P(u) for the AVX-512 getmant split,
// u in [-0.25, 0.5), and for the portable split, u in [sqrt(1/2) - 1, sqrt(2) - 1).
constexpr float kExp2[] = {0.00134004f, 0.00967604f, 0.05550327f, 0.24022107f, 0.69314718f, 1.00000012f};
constexpr float kLog2Getmant[] = {0.11998387f, -0.24276374f, 0.29829070f, -0.36154732f,
                                  0.48062411f, -0.72132826f, 1.44269633f};
constexpr float kLog2Portable[] = {0.17212874f, -0.26950628f, 0.29563361f, -0.35935065f,
                                   0.48062915f, -0.72136402f, 1.44269645f};

template <std::size_t N>
inline vf horner(vf x, const float (&c)[N]) {
  vf r = splat(c[0]);
  for (std::size_t k = 1; k < N; ++k) r = r * x + splat(c[k]);
  return r;
}

#if S2F_LEVEL == 3
// AVX-512 (VL, on 256-bit vectors): getexp/getmant split the float, scalef rebuilds it.
inline vf log2_abs(vf ax) {
  const __m256 e = _mm256_getexp_ps((__m256)ax);
  const vf m = (vf)_mm256_getmant_ps((__m256)ax, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
  const vf u = m - splat(1.0f);  // [-0.25, 0.5)
  // getexp is floor(log2|x|) (mantissa in [1, 2)); getmant halved mantissas >= 1.5.
  const vf e1 = (vf)e + (vf)((vi)(m < splat(1.0f)) & (vi)splat(1.0f));
  return e1 + u * horner(u, kLog2Getmant);  // |error| < 7e-7
}
inline vf exp2v(vf y) {
  const vf n = (vf)_mm256_roundscale_ps((__m256)y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const vf f = y - n;  // [-0.5, 0.5]
  const vf q = horner(f, kExp2);
  return (vf)_mm256_scalef_ps((__m256)q, (__m256)n);  // q * 2^n, 0 on underflow
}
#else
inline vf log2_abs(vf ax) {
  vi bits = (vi)ax;
  vi e = ((bits >> 23) & 0xff) - 127;
  vi mbits = (bits & 0x007fffff) | 0x3f800000;  // mantissa in [1, 2)
  vf m = (vf)mbits;
  vi big = (vi)(m > splat(1.41421356f));        // -1 where m > sqrt(2)
  m = big ? m * splat(0.5f) : m;
  e = e - big;                                   // big is -1: e + 1
  vf u = m - splat(1.0f);                        // [sqrt(1/2) - 1, sqrt(2) - 1)
  return __builtin_convertvector(e, vf) + u * horner(u, kLog2Portable);  // |error| < 6e-7
}

inline vf exp2v(vf y) {
  y = y < splat(-126.0f) ? splat(-126.0f) : y;
  y = y > splat(126.0f) ? splat(126.0f) : y;
  const vf magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  vf shifted = y + magic;
  vf n = shifted - magic;
  vf f = y - n;  // in [-0.5, 0.5]
  vi ni = (vi)shifted - (vi)magic;
  vf q = horner(f, kExp2);
  vf scale = (vf)((ni + 127) << 23);
  return q * scale;
}
#endif

// |x|^p with the sign of x; exact 0 for |x| < FLT_MIN.
inline vf signed_pow(vf x, vf p) {
  vi bits = (vi)x;
  vi sign = bits & (std::int32_t)0x80000000;
  vf ax = (vf)(bits & 0x7fffffff);
  vf r = exp2v(p * log2_abs(ax));
  vi tiny = (vi)(ax < splat(1.17549435e-38f));
  return (vf)(((vi)r & ~tiny) | sign);
}

// |v|^p for v >= 0 (v = |X|^2 with p = power / 2); exact 0 below FLT_MIN.
inline vf pos_pow(vf v, vf p) {
  vf r = exp2v(p * log2_abs(v));
  vi tiny = (vi)(v < splat(1.17549435e-38f));
  return (vf)((vi)r & ~tiny);
}

inline vf natural_log(vf v) { return log2_abs(v) * splat(0.69314718f); }

// The power law over a whole buffer (in place allowed): out[i] = sign(x)|x|^p (or |x|^p of
// x >= 0 when !sign). The feature kernel stages a block's raw output columns and then runs
// this once over them. With AVX-512 it works on 16 floats per instruction (the coefficients of
// the 8-wide functions above, but evaluated with fused multiply-adds: equal to float32 rounding,
// not bit for bit); elsewhere 8.
#if S2F_LEVEL == 3
template <std::size_t N>
inline __m512 horner16(__m512 x, const float (&c)[N]) {
  __m512 r = _mm512_set1_ps(c[0]);
  for (std::size_t k = 1; k < N; ++k) r = _mm512_fmadd_ps(r, x, _mm512_set1_ps(c[k]));
  return r;
}
inline __m512 log2_abs16(__m512 ax) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = _mm512_getexp_ps(ax);
  const __m512 m = _mm512_getmant_ps(ax, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
  const __m512 u = _mm512_sub_ps(m, one);
  const __m512 e1 = _mm512_mask_add_ps(e, _mm512_cmp_ps_mask(m, one, _CMP_LT_OQ), e, one);
  return _mm512_fmadd_ps(u, horner16(u, kLog2Getmant), e1);
}
inline __m512 exp2v16(__m512 y) {
  const __m512 n = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(y, n);
  return _mm512_scalef_ps(horner16(f, kExp2), n);
}
inline __m512 power16(__m512 x, __m512 p, bool sign) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)));
  const __mmask16 ok = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(1.17549435e-38f), _CMP_GE_OQ);
  const __m512 r = _mm512_maskz_mov_ps(ok, exp2v16(_mm512_mul_ps(p, log2_abs16(ax))));
  if (!sign) return r;
  return _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(r), _mm512_and_si512(bits, _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
}
void power_pass(const float* x, std::size_t n, float p, bool sign, float* out) {
  const __m512 pv = _mm512_set1_ps(p);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {  // two independent chains per iteration
    const __m512 a = power16(_mm512_loadu_ps(x + i), pv, sign);
    const __m512 b = power16(_mm512_loadu_ps(x + i + 16), pv, sign);
    _mm512_storeu_ps(out + i, a);
    _mm512_storeu_ps(out + i + 16, b);
  }
  if (i < n) {
    for (; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
      _mm512_mask_storeu_ps(out + i, m, power16(_mm512_maskz_loadu_ps(m, x + i), pv, sign));
    }
  }
}
#else
template <bool kSign>
inline vf power8(vf x, vf p) { return kSign ? signed_pow(x, p) : pos_pow(x, p); }
template <bool kSign>
void power_loop(const float* x, std::size_t n, vf pv, float* out) {
  for (std::size_t i = 0; i + 8 <= n; i += 8) storeu(out + i, power8<kSign>(loadu(x + i), pv));
}
void power_pass(const float* x, std::size_t n, float p, bool sign, float* out) {
  const vf pv = splat(p);
  std::size_t i = n / 8 * 8;
  if (sign) power_loop<true>(x, n, pv, out);
  else power_loop<false>(x, n, pv, out);
  if (i < n) {
    float tmp[8] = {0};
    std::memcpy(tmp, x + i, (n - i) * sizeof(float));
    vf r = sign ? signed_pow(loadu(tmp), pv) : pos_pow(loadu(tmp), pv);
    std::memcpy(out + i, &r, (n - i) * sizeof(float));
  }
}
#endif

// ---- transposes ------------------------------------------------------------------------
// rows[f] = 8 floats of frame f  ->  cols[j] = element j of every frame.
inline void transpose8(vf r[8]) {
#if S2F_LEVEL >= 2
  __m256 t0 = _mm256_unpacklo_ps((__m256)r[0], (__m256)r[1]);
  __m256 t1 = _mm256_unpackhi_ps((__m256)r[0], (__m256)r[1]);
  __m256 t2 = _mm256_unpacklo_ps((__m256)r[2], (__m256)r[3]);
  __m256 t3 = _mm256_unpackhi_ps((__m256)r[2], (__m256)r[3]);
  __m256 t4 = _mm256_unpacklo_ps((__m256)r[4], (__m256)r[5]);
  __m256 t5 = _mm256_unpackhi_ps((__m256)r[4], (__m256)r[5]);
  __m256 t6 = _mm256_unpacklo_ps((__m256)r[6], (__m256)r[7]);
  __m256 t7 = _mm256_unpackhi_ps((__m256)r[6], (__m256)r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = (vf)_mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = (vf)_mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = (vf)_mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = (vf)_mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = (vf)_mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = (vf)_mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = (vf)_mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = (vf)_mm256_permute2f128_ps(s3, s7, 0x31);
#else
  vf c[8];
  for (int j = 0; j < 8; ++j)
    for (int f = 0; f < 8; ++f) c[j][f] = r[f][j];
  for (int j = 0; j < 8; ++j) r[j] = c[j];
#endif
}

// Per-thread scratch, sized for the largest plan seen. Plain float storage (aligned by hand)
// so that no template is instantiated on the vector type.
struct Buffer {
  std::vector<float> raw;
  vf* get(std::size_t vectors) {
    if (raw.size() < vectors * 8 + 16) raw.resize(vectors * 8 + 16);
    auto p = reinterpret_cast<std::uintptr_t>(raw.data());
    return reinterpret_cast<vf*>((p + 63) & ~static_cast<std::uintptr_t>(63));
  }
};
struct Scratch {
  Buffer zr, zi, stage, mel, staged;  // staged: one block's output rows before streaming
  std::vector<float> block;  // samples of one block when it cannot be read in place
};
thread_local Scratch tls_scratch;

// Complex FFT of plan.half points in 8 lanes, in place, decimation in frequency; the result
// sits in plan.perm order.
void fft_lanes(const Plan& plan, vf* __restrict zr, vf* __restrict zi) {
  const int n = plan.half;
  for (const auto& st : plan.stages) {
    const int s = st.span;
    if (st.radix == 2) {  // only ever the last stage, span 1: no twiddles
      for (int g = 0; g < n; g += 2) {
        vf ar = zr[g], ai = zi[g], br = zr[g + 1], bi = zi[g + 1];
        zr[g] = ar + br, zi[g] = ai + bi;
        zr[g + 1] = ar - br, zi[g + 1] = ai - bi;
      }
      continue;
    }
    const float* w1r = st.wr.data();
    const float* w2r = w1r + s;
    const float* w3r = w2r + s;
    const float* w1i = st.wi.data();
    const float* w2i = w1i + s;
    const float* w3i = w2i + s;
    for (int g = 0; g < n; g += 4 * s) {
      vf* r = zr + g;
      vf* i = zi + g;
      for (int j = 0; j < s; ++j) {
        vf a0r = r[j], a0i = i[j], a1r = r[j + s], a1i = i[j + s];
        vf a2r = r[j + 2 * s], a2i = i[j + 2 * s], a3r = r[j + 3 * s], a3i = i[j + 3 * s];
        vf b0r = a0r + a2r, b0i = a0i + a2i;
        vf b1r = a0r - a2r, b1i = a0i - a2i;
        vf b2r = a1r + a3r, b2i = a1i + a3i;
        vf b3r = a1i - a3i, b3i = a3r - a1r;  // -i * (a1 - a3)
        vf y0r = b0r + b2r, y0i = b0i + b2i;
        vf y2r = b0r - b2r, y2i = b0i - b2i;
        vf y1r = b1r + b3r, y1i = b1i + b3i;
        vf y3r = b1r - b3r, y3i = b1i - b3i;
        r[j] = y0r, i[j] = y0i;
        if (s == 1) {
          r[j + 1] = y1r, i[j + 1] = y1i;
          r[j + 2] = y2r, i[j + 2] = y2i;
          r[j + 3] = y3r, i[j + 3] = y3i;
        } else {
          vf c1 = splat(w1r[j]), d1 = splat(w1i[j]);
          vf c2 = splat(w2r[j]), d2 = splat(w2i[j]);
          vf c3 = splat(w3r[j]), d3 = splat(w3i[j]);
          r[j + s] = y1r * c1 - y1i * d1, i[j + s] = y1r * d1 + y1i * c1;
          r[j + 2 * s] = y2r * c2 - y2i * d2, i[j + 2 * s] = y2r * d2 + y2i * c2;
          r[j + 3 * s] = y3r * c3 - y3i * d3, i[j + 3 * s] = y3r * d3 + y3i * c3;
        }
      }
    }
  }
}

// Writes the block's staged output (one vector per output column, lanes = frames) to the
// first `valid` frames' rows.
void store_block(const vf* stage, int width, int valid, float* out) {
  int j = 0;
  if (valid == kBlock) {
    for (; j + 8 <= width; j += 8) {
      vf r[8];
      for (int q = 0; q < 8; ++q) r[q] = stage[j + q];
      transpose8(r);
      for (int f = 0; f < 8; ++f) storeu(out + static_cast<std::size_t>(f) * width + j, r[f]);
    }
  }
  for (; j < width; ++j)
    for (int f = 0; f < valid; ++f) out[static_cast<std::size_t>(f) * width + j] = stage[j][f];
}

// Copies n floats to dst with non-temporal (streaming) stores for the 64-byte aligned part of
// dst; plain stores for the unaligned head and tail. The caller issues the store fence.
void stream_copy(float* dst, const float* src, std::size_t n) {
#if defined(__x86_64__) || defined(__i386__)
  std::size_t i = 0;
  while (i < n && (reinterpret_cast<std::uintptr_t>(dst + i) & 63) != 0) dst[i] = src[i], ++i;
  for (; i + 16 <= n; i += 16) {
#if S2F_LEVEL == 3
    _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
#elif S2F_LEVEL == 2
    _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
#else
    for (int q = 0; q < 16; q += 4) _mm_stream_ps(dst + i + q, _mm_loadu_ps(src + i + q));
#endif
  }
  for (; i < n; ++i) dst[i] = src[i];
#else
  std::memcpy(dst, src, n * sizeof(float));
#endif
}

inline void store_fence() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_sfence();
#endif
}

// Gathers frame block samples from the virtual clip (the source repeated, then cut at
// clip_samples, zeros after) when the block cannot be read in place.
void gather_block(const ClipSource& src, std::size_t start, std::size_t count, int clip_samples,
                  float* dst) {
  std::size_t i = 0;
  const std::size_t clip = static_cast<std::size_t>(clip_samples);
  while (i < count) {
    const std::size_t pos = start + i;
    if (pos >= clip) {
      std::memset(dst + i, 0, (count - i) * sizeof(float));
      break;
    }
    const std::size_t at = pos % src.size;
    const std::size_t take = std::min({count - i, src.size - at, clip - pos});
    std::memcpy(dst + i, src.data + at, take * sizeof(float));
    i += take;
  }
}

// The samples of the block starting at `start`: read in place while the block lies inside the
// source (a short source is shorter than the clip, and past clip_samples only padding frames
// read, which are dropped), otherwise gathered into `gathered`.
const float* block_samples(const ClipSource& src, std::size_t start, std::size_t extent,
                           int clip_samples, float* gathered) {
  if (start + extent <= src.size) return src.data + start;
  gather_block(src, start, extent, clip_samples, gathered);
  return gathered;
}

// Packs x[2k] + i x[2k+1] of the block's 8 frames (hop samples apart from base) into z[k],
// 8 samples of 8 frames at a time; returns each frame's sum over its window.
vf pack_frames(const Plan& plan, const float* base, vf* __restrict zr, vf* __restrict zi) {
  const int hop = plan.cfg.hop_length, half = plan.half;
  vf sum{};
  for (int n = 0; n < plan.win_padded; n += 8) {
    vf r[8];
    for (int f = 0; f < 8; ++f) r[f] = loadu(base + static_cast<std::size_t>(f) * hop + n);
    transpose8(r);
    for (int q = 0; q < 8; ++q)
      if (n + q < plan.cfg.win_length) sum += r[q];
    for (int q = 0; q < 8; q += 2) {
      const int k = (n + q) >> 1;
      if (k < half) {
        zr[k] = r[q];
        zi[k] = r[q + 1];
      }
    }
  }
  return sum;
}

// Takes each frame's mean out before the window (its transform is added back in split_real_fft;
// see Plan::window_dft_r), windows, and zero-pads to the FFT size.
void center_and_window(const Plan& plan, vf mean, vf* __restrict zr, vf* __restrict zi) {
  const float* window = plan.window.data();
  const int half = plan.half;
  for (int k = 0; k < std::min(half, plan.win_padded >> 1); ++k) {
    zr[k] = (zr[k] - mean) * splat(window[2 * k]);
    zi[k] = (zi[k] - mean) * splat(window[2 * k + 1]);
  }
  for (int k = plan.win_padded >> 1; k < half; ++k) zr[k] = vf{}, zi[k] = vf{};
}

// Splits the half-size complex FFT (in plan.perm order) into the real FFT's bins 0..half, adds
// the frames' mean back, and stages each bin as the output needs it: (re, im) for the complex
// power law (which runs later over the whole block), |X|^2 for the other kinds.
void split_real_fft(const Plan& plan, const vf* __restrict zr, const vf* __restrict zi, vf mean,
                    vf* __restrict stage) {
  const int half = plan.half;
  const int* perm = plan.perm.data();
  const float* dft_r = plan.window_dft_r->data();
  const float* dft_i = plan.window_dft_i->data();
  const Kind kind = plan.cfg.kind;
  const vf one_half = splat(0.5f);
  auto emit = [&](int k, vf xr, vf xi) {
    xr += mean * splat(dft_r[k]);
    xi += mean * splat(dft_i[k]);
    if (kind == Kind::ComplexPowerlaw) {
      stage[2 * k] = xr;
      stage[2 * k + 1] = xi;
    } else {
      stage[k] = xr * xr + xi * xi;
    }
  };
  {
    vf z0r = zr[perm[0]], z0i = zi[perm[0]];
    emit(0, z0r + z0i, vf{});
    emit(half, z0r - z0i, vf{});
  }
  for (int k = 1; k <= half / 2; ++k) {
    const int pa = perm[k], pb = perm[half - k];
    vf ar = zr[pa], ai = zi[pa], br = zr[pb], bi = zi[pb];
    vf er = one_half * (ar + br), ei = one_half * (ai - bi);
    vf orr = one_half * (ai + bi), oi = one_half * (br - ar);
    vf wr = splat(plan.split_wr[k]), wi = splat(plan.split_wi[k]);
    vf tr = wr * orr - wi * oi, ti = wr * oi + wi * orr;
    emit(k, er + tr, ei + ti);
    if (k != half - k) emit(half - k, er - tr, ti - ei);
  }
}

// log(mel + log_floor) of every mel filter over the staged |X|^2.
void log_mel(const Plan& plan, const vf* stage, vf* __restrict mel) {
  const vf floor = splat(plan.cfg.log_floor);
  for (int m = 0; m < plan.n_mels; ++m) {
    const float* w = plan.mel_w.data() + plan.mel_off[m];
    const vf* s = stage + plan.mel_lo[m];
    vf acc{};
    for (int q = 0; q < plan.mel_len[m]; ++q) acc += splat(w[q]) * s[q];
    mel[m] = natural_log(acc + floor);
  }
}

// Turns the staged bins into the block's output columns (one vector per column, lanes =
// frames): the power law in place, or the log-mel filters into `mel`. Returns the columns.
const vf* output_columns(const Plan& plan, vf* stage, vf* mel) {
  const SpectrogramConfig& cfg = plan.cfg;
  float* st = reinterpret_cast<float*>(stage);
  const std::size_t n = static_cast<std::size_t>(plan.width) * kBlock;
  switch (cfg.kind) {
    case Kind::ComplexPowerlaw: power_pass(st, n, cfg.power, true, st); return stage;
    case Kind::MagnitudePowerlaw: power_pass(st, n, 0.5f * cfg.power, false, st); return stage;
    case Kind::LogMel: log_mel(plan, stage, mel); return mel;
  }
  return stage;
}

// Writes the block's columns to its first `valid` frames' rows at dst. A full block's rows are
// contiguous: when streaming they are staged in `staged` (L1-resident) and streamed out.
void write_block(const vf* columns, int width, int valid, bool stream, float* staged,
                 float* dst) {
  if (stream && valid == kBlock) {
    store_block(columns, width, valid, staged);
    stream_copy(dst, staged, static_cast<std::size_t>(kBlock) * width);
  } else {
    store_block(columns, width, valid, dst);
  }
}

}  // namespace

void blocks(const Plan& plan, const ClipSource& src, int block_begin, int block_end, float* out,
            bool stream) {
  const SpectrogramConfig& cfg = plan.cfg;
  const int hop = cfg.hop_length, frames = cfg.n_frames();
  const std::size_t extent = static_cast<std::size_t>(kBlock - 1) * hop + plan.win_padded;
  Scratch& sc = tls_scratch;
  if (sc.block.size() < extent) sc.block.resize(extent);
  vf* __restrict zr = sc.zr.get(plan.half);
  vf* __restrict zi = sc.zi.get(plan.half);
  vf* __restrict stage = sc.stage.get(plan.width + plan.half + 8);
  vf* __restrict mel = sc.mel.get(plan.n_mels + 8);
  float* staged = stream ? reinterpret_cast<float*>(sc.staged.get(plan.width)) : nullptr;
  const vf inv_win_length = splat(1.0f / static_cast<float>(cfg.win_length));

  for (int b = block_begin; b < block_end; ++b) {
    const int t0 = b * kBlock;
    const std::size_t start = static_cast<std::size_t>(t0) * hop;
    const float* base = block_samples(src, start, extent, cfg.clip_samples, sc.block.data());
    const vf mean = pack_frames(plan, base, zr, zi) * inv_win_length;
    center_and_window(plan, mean, zr, zi);
    fft_lanes(plan, zr, zi);
    split_real_fft(plan, zr, zi, mean, stage);
    write_block(output_columns(plan, stage, mel), plan.width, std::min(kBlock, frames - t0),
                stream, staged, out + static_cast<std::size_t>(t0) * plan.width);
  }
  if (stream) store_fence();
}

void signed_power(const float* x, std::size_t n, float p, float* out) {
  power_pass(x, n, p, true, out);
}

// ---- resampling: halfband decimators, then a polyphase FIR, on independent lanes ------------
// The output is cut into kLanes contiguous segments, one per SIMD lane, so that the lanes of one
// vector are kLanes independent outputs with the same filter phase: every tap is one broadcast
// and one aligned vector load shared by R output vectors (no horizontal sums, no gathers). The
// input is transposed once into rows (row i = sample i of every lane's stretch, with the
// context each lane needs), every stage runs row to row, and the result is transposed back.
// Outputs n and n + up have the same phase and inputs `down` apart, so R such outputs share each
// tap (register blocking over periods of the phase pattern); with up > 1 the windows of the R
// outputs lie `down` rows apart, so R stays small (L1) and C partial sums hide the FMA latency.
#if S2F_LEVEL == 3
typedef float vr __attribute__((vector_size(64)));
constexpr int kLanes = 16;
#else
typedef float vr __attribute__((vector_size(32)));
constexpr int kLanes = 8;
#endif

// o[r] = sum_j h[j] * x[r * step + j * stride], j < k (k a multiple of C).
template <int R, int C>
inline void fir_rows(const vr* __restrict x, std::size_t step, std::size_t stride,
                     const float* __restrict h, int k, vr* __restrict o) {
  vr acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = vr{};
  for (int j = 0; j < k; j += C) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const vr hv = h[j + c] - vr{};  // broadcast
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] += hv * x[r * step + (j + c) * stride];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    vr sum = acc[r][0];
#pragma GCC unroll 4
    for (int c = 1; c < C; ++c) sum += acc[r][c];
    o[r] = sum;
  }
}

struct LaneScratch {
  Buffer a, b;
};
thread_local LaneScratch tls_lanes;

constexpr int kRowsHalfband = 8;  // output rows per register block in the halfband stages

// Halfband stage: out row i = center * x[2i + hw] + sum_q even[q] * x[2i + 2q], q < n_even.
void halfband_rows(const vr* x, std::size_t rows_out, const HalfbandTaps& hb, vr* out) {
  for (std::size_t i = 0; i < rows_out; i += kRowsHalfband) {
    vr o[kRowsHalfband];
    fir_rows<kRowsHalfband, 1>(x + 2 * i, 2, 2, hb.even, hb.n_even, o);
    const vr c = hb.center - vr{};
#pragma GCC unroll 8
    for (int r = 0; r < kRowsHalfband; ++r) out[i + r] = o[r] + c * x[2 * (i + r) + hb.hw];
  }
}

template <int R, int C>
void polyphase_rows(const vr* x, std::size_t blocks, const float* taps, int k, std::size_t P,
                    std::size_t D, vr* out) {
  // output row b*R*P + q + r*P: phase (q*D) % P, window from input row b*R*D + q*D/P + r*D
  for (std::size_t b = 0; b < blocks; ++b)
    for (std::size_t q = 0; q < P; ++q) {
      vr o[R];
      fir_rows<R, C>(x + b * R * D + (q * D) / P, D, 1, taps + ((q * D) % P) * k, k, o);
      for (int r = 0; r < R; ++r) out[b * R * P + q + r * P] = o[r];
    }
}

void resample_lanes(const float* in, std::size_t n_in, const HalfbandTaps* hb, int n_hb,
                    const float* taps, int k, int up, int down, int lead, std::size_t n_out,
                    float* out) {
  constexpr int W = kLanes;
  static_assert(W % 8 == 0, "lanes come in groups of 8 for the 8x8 transposes");
  const std::size_t P = static_cast<std::size_t>(up), D = static_cast<std::size_t>(down);
  const std::size_t S = ((n_out + W - 1) / W + P - 1) / P * P;  // outputs per lane
  const std::size_t periods = S / P;
  // Windows a few rows apart (small down) share L1 lines: block 8 outputs; far apart, 2 (or 1).
  const int R = D <= 8 ? 8 : periods >= 2 ? 2 : 1;
  const std::size_t blocks = (periods + R - 1) / R;
  // Rows (per lane) of each stage's input; lane l's row i of stage s sits at position
  // l * stride[s] - offset[s] + i of that stage's input signal.
  constexpr int kMaxStages = 8;
  std::size_t rows[kMaxStages + 1];
  long long stride[kMaxStages + 1], offset[kMaxStages + 1];
  rows[n_hb] = (blocks * R * D + static_cast<std::size_t>(k) + 7) / 8 * 8;
  stride[n_hb] = static_cast<long long>(periods * D);
  offset[n_hb] = lead;
  for (int s = n_hb - 1; s >= 0; --s) {
    rows[s + 1] = (rows[s + 1] + kRowsHalfband - 1) / kRowsHalfband * kRowsHalfband;
    rows[s] = (2 * rows[s + 1] + 2 * static_cast<std::size_t>(hb[s].n_even) + 8) / 8 * 8;
    stride[s] = 2 * stride[s + 1];
    offset[s] = 2 * offset[s + 1] + hb[s].hw;
  }
  std::size_t most = blocks * R * P;
  for (int s = 0; s <= n_hb; ++s) most = std::max(most, rows[s]);
  vr* cur = reinterpret_cast<vr*>(tls_lanes.a.get(most * (W / 8)));
  vr* nxt = reinterpret_cast<vr*>(tls_lanes.b.get(most * (W / 8)));

  // Transpose in (zeros outside the signal).
  {
    float* xf = reinterpret_cast<float*>(cur);
    const long long n = static_cast<long long>(n_in);
    for (std::size_t i0 = 0; i0 < rows[0]; i0 += 8)
      for (int g = 0; g < W / 8; ++g) {
        vf r[8];
        for (int f = 0; f < 8; ++f) {
          const long long at = (g * 8 + f) * stride[0] - offset[0] + static_cast<long long>(i0);
          if (at >= 0 && at + 8 <= n) {
            r[f] = loadu(in + at);
          } else {
            for (int q = 0; q < 8; ++q) r[f][q] = at + q >= 0 && at + q < n ? in[at + q] : 0.0f;
          }
        }
        transpose8(r);
        for (int q = 0; q < 8; ++q) storeu(xf + (i0 + q) * W + g * 8, r[q]);
      }
  }
  for (int s = 0; s < n_hb; ++s) {
    halfband_rows(cur, rows[s + 1], hb[s], nxt);
    std::swap(cur, nxt);
  }
  if (R == 8) polyphase_rows<8, 1>(cur, blocks, taps, k, P, D, nxt);
  else if (R == 2) polyphase_rows<2, 4>(cur, blocks, taps, k, P, D, nxt);
  else polyphase_rows<1, 8>(cur, blocks, taps, k, P, D, nxt);

  // Transpose out: lane l's rows m < S are outputs l * S + m.
  const float* of = reinterpret_cast<const float*>(nxt);
  for (std::size_t m0 = 0; m0 < S; m0 += 8)
    for (int g = 0; g < W / 8; ++g) {
      vf r[8];
      for (int q = 0; q < 8; ++q) r[q] = loadu(of + (m0 + q) * W + g * 8);
      transpose8(r);
      for (int f = 0; f < 8; ++f) {
        const std::size_t at = (g * 8 + f) * S + m0;
        if (m0 + 8 <= S && at + 8 <= n_out) {
          storeu(out + at, r[f]);
        } else {
          for (std::size_t q = 0; q < 8 && m0 + q < S && at + q < n_out; ++q) out[at + q] = r[f][q];
        }
      }
    }
}

extern const KernelTable table;
const KernelTable table = {
#define S2F_STR2(x) #x
#define S2F_STR(x) S2F_STR2(x)
    S2F_STR(S2F_ISA), &blocks, &signed_power, &resample_lanes, kLanes};

}  // namespace S2F_ISA
}  // namespace s2f
