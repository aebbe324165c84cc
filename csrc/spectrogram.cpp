#include "spectrogram.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace s2f {

namespace {
constexpr double kPi = 3.14159265358979323846;

bool is_power_of_two(int n) { return n > 1 && (n & (n - 1)) == 0; }

// sign(x)|x|^p; exact zero stays zero (pow(0, p) is 0 for p > 0).
inline float signed_power(float x, float p) {
  const float magnitude = std::pow(std::fabs(x), p);
  return std::copysign(magnitude, x);
}
}  // namespace

void SpectrogramConfig::validate() const {
  if (clip_samples <= 0) throw std::invalid_argument("clip_samples must be positive");
  if (win_length <= 0 || hop_length <= 0)
    throw std::invalid_argument("win_length and hop_length must be positive");
  if (!is_power_of_two(n_fft)) throw std::invalid_argument("n_fft must be a power of two");
  if (win_length > n_fft) throw std::invalid_argument("win_length must not exceed n_fft");
  if (clip_samples < win_length)
    throw std::invalid_argument("clip_samples must hold at least one window");
  if (!(power > 0.0f)) throw std::invalid_argument("power must be positive");
}

std::vector<float> periodic_hann(int n) {
  std::vector<float> w(n);
  for (int i = 0; i < n; ++i) w[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * kPi * i / n));
  return w;
}

RealFFT::RealFFT(int n) : n_(n) {
  if (!is_power_of_two(n) || n < 4) throw std::invalid_argument("FFT size must be a power of two >= 4");
  const int half = n / 2;
  int bits = 0;
  while ((1 << bits) < half) ++bits;
  bitrev_.resize(half);
  for (int i = 0; i < half; ++i) {
    int r = 0;
    for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
    bitrev_[i] = r;
  }
  twiddle_.resize(half / 2 > 0 ? half / 2 : 1);
  for (int k = 0; k < half / 2; ++k)
    twiddle_[k] = std::polar(1.0, -2.0 * kPi * k / half);
  split_twiddle_.resize(half);
  for (int k = 0; k < half; ++k) split_twiddle_[k] = std::polar(1.0, -2.0 * kPi * k / n);
}

void RealFFT::forward(float* in, std::complex<float>* out) const {
  // Pack the n real samples as n/2 complex values z[k] = x[2k] + i x[2k+1],
  // run an n/2-point complex FFT, then split into the real spectrum.
  const int half = n_ / 2;
  std::complex<float> z[4096];
  std::vector<std::complex<float>> heap;
  std::complex<float>* buf = z;
  if (half > 4096) {
    heap.resize(half);
    buf = heap.data();
  }
  for (int k = 0; k < half; ++k) buf[bitrev_[k]] = {in[2 * k], in[2 * k + 1]};
  for (int len = 2; len <= half; len <<= 1) {
    const int step = half / len;
    for (int start = 0; start < half; start += len) {
      for (int j = 0; j < len / 2; ++j) {
        const std::complex<float> w = twiddle_[j * step];
        const std::complex<float> a = buf[start + j];
        const std::complex<float> b = buf[start + j + len / 2] * w;
        buf[start + j] = a + b;
        buf[start + j + len / 2] = a - b;
      }
    }
  }
  // X[k] = (Z[k] + conj(Z[half-k]))/2 - i/2 * W^k (Z[k] - conj(Z[half-k]))
  out[0] = {buf[0].real() + buf[0].imag(), 0.0f};
  out[half] = {buf[0].real() - buf[0].imag(), 0.0f};
  for (int k = 1; k < half; ++k) {
    const std::complex<float> zk = buf[k];
    const std::complex<float> zc = std::conj(buf[half - k]);
    const std::complex<float> even = 0.5f * (zk + zc);
    const std::complex<float> odd = std::complex<float>(0.0f, -0.5f) * (zk - zc);
    out[k] = even + split_twiddle_[k] * odd;
  }
}

void apply_clip_policy(const float* audio, std::size_t n, int clip_samples, float* out) {
  if (n == 0) throw std::invalid_argument("audio is empty");
  std::size_t written = 0;
  while (written < static_cast<std::size_t>(clip_samples)) {
    const std::size_t take = std::min(n, static_cast<std::size_t>(clip_samples) - written);
    std::copy(audio, audio + take, out + written);
    written += take;
  }
}

void complex_powerlaw(const float* audio, std::size_t n, const SpectrogramConfig& cfg,
                      const RealFFT& fft, const std::vector<float>& window, float* out) {
  std::vector<float> clip(cfg.clip_samples);
  apply_clip_policy(audio, n, cfg.clip_samples, clip.data());
  std::vector<float> frame(cfg.n_fft);
  std::vector<std::complex<float>> spectrum(cfg.n_bins());
  const int frames = cfg.n_frames();
  const int bins = cfg.n_bins();
  for (int t = 0; t < frames; ++t) {
    const float* src = clip.data() + static_cast<std::size_t>(t) * cfg.hop_length;
    for (int i = 0; i < cfg.win_length; ++i) frame[i] = src[i] * window[i];
    std::fill(frame.begin() + cfg.win_length, frame.end(), 0.0f);
    fft.forward(frame.data(), spectrum.data());
    float* dst = out + static_cast<std::size_t>(t) * bins * 2;
    for (int k = 0; k < bins; ++k) {
      dst[2 * k] = signed_power(spectrum[k].real(), cfg.power);
      dst[2 * k + 1] = signed_power(spectrum[k].imag(), cfg.power);
    }
  }
}

}  // namespace s2f
