// Speech2Face input features: clip policy, framing, periodic Hann window,
// zero-padded real FFT and the sign(x)|x|^p power law, fused per frame.
// Depends on nothing but the C++ standard library.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

namespace s2f {

struct SpectrogramConfig {
  int clip_samples = 96000;  // 6 s at 16 kHz
  int win_length = 400;      // 25 ms
  int hop_length = 160;      // 10 ms
  int n_fft = 512;           // power of two
  float power = 0.3f;        // sign(x)|x|^power on real and imaginary parts

  int n_frames() const { return 1 + (clip_samples - win_length) / hop_length; }
  int n_bins() const { return n_fft / 2 + 1; }
  void validate() const;  // throws std::invalid_argument
};

// Radix-2 real FFT of a fixed power-of-two size with precomputed twiddles.
class RealFFT {
 public:
  explicit RealFFT(int n);
  // in: n real samples (overwritten as scratch); out: n/2+1 complex bins.
  void forward(float* in, std::complex<float>* out) const;
  int size() const { return n_; }

 private:
  int n_;
  std::vector<int> bitrev_;                        // for the n/2 complex FFT
  std::vector<std::complex<float>> twiddle_;       // exp(-2*pi*i*k/(n/2))
  std::vector<std::complex<float>> split_twiddle_; // exp(-2*pi*i*k/n)
};

// Repeat-then-crop clip policy: writes exactly cfg.clip_samples samples.
void apply_clip_policy(const float* audio, std::size_t n, int clip_samples, float* out);

// Computes one clip's complex power-law spectrogram: out has
// n_frames * n_bins * 2 floats laid out (frame, bin, {re, im}).
void complex_powerlaw(const float* audio, std::size_t n, const SpectrogramConfig& cfg,
                      const RealFFT& fft, const std::vector<float>& window, float* out);

std::vector<float> periodic_hann(int n);

}  // namespace s2f
