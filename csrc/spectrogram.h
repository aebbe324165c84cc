// Speech2Face input features: trim, clip policy, framing, periodic Hann window, zero-padded
// real FFT, then one of three outputs (complex power law, magnitude power law, log-mel), fused
// per block of frames. Also the polyphase resampler. Depends on nothing but the C++ standard
// library (and, in the ISA kernels, the compiler's x86 intrinsics headers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace s2f {

enum class Kind : int { ComplexPowerlaw = 0, MagnitudePowerlaw = 1, LogMel = 2 };

struct SpectrogramConfig {
  int clip_samples = 96000;  // 6 s at 16 kHz
  int win_length = 400;      // 25 ms
  int hop_length = 160;      // 10 ms
  int n_fft = 512;           // power of two >= 16
  float power = 0.3f;        // sign(x)|x|^power (complex) or |X|^power (magnitude)
  Kind kind = Kind::ComplexPowerlaw;
  float log_floor = 1e-6f;   // logmel: log(mel + log_floor)
  bool trim = false;         // drop leading/trailing silence before the clip policy
  float trim_top_db = 50.0f; // frames quieter than peak - top_db are silence

  int n_frames() const { return 1 + (clip_samples - win_length) / hop_length; }
  int n_bins() const { return n_fft / 2 + 1; }
  void validate() const;  // throws std::invalid_argument
};

// Frames are processed kBlock at a time, one frame per SIMD lane.
constexpr int kBlock = 8;

// Everything a kernel needs that does not depend on the audio; immutable once built.
struct Plan {
  SpectrogramConfig cfg;
  int half = 0;                  // complex FFT size n_fft / 2
  int win_padded = 0;            // win_length rounded up to kBlock
  int width = 0;                 // floats per output frame
  std::vector<float> window;     // periodic Hann, win_padded long (zeros past win_length)
  struct Stage {
    int radix = 4;               // 4, or 2 for the last stage when log2(half) is odd
    int span = 1;                // distance between butterfly legs
    std::vector<float> wr, wi;   // twiddles W^(q*j), q = 1..3, laid out [q-1][j]
  };
  std::vector<Stage> stages;     // decimation in frequency, in place
  std::vector<int> perm;         // natural frequency k -> storage position after the stages
  std::vector<float> split_wr, split_wi;  // exp(-2 pi i k / n_fft), k = 0..half/2
  // log-mel: filter m covers bins [mel_lo[m], mel_lo[m] + mel_len[m]) with weights at mel_off[m]
  int n_mels = 0;
  std::vector<int> mel_lo, mel_len, mel_off;
  std::vector<float> mel_w;

  // mel_fb: (n_mels, n_bins) row-major dense weights, or null when kind != LogMel.
  Plan(const SpectrogramConfig& cfg, const float* mel_fb, int n_mels);
};

// One clip after trimming: the samples the clip policy repeats or crops.
struct ClipSource {
  const float* data = nullptr;
  std::size_t size = 0;
};

// [begin, end) of the audio that survives silence trimming (the whole clip when nothing is
// trimmed): frame energies mean(x^2) over win_length samples every hop_length samples; the
// region spans the first to the last frame whose energy is within top_db of the loudest.
void trim_region(const float* audio, std::size_t n, int win_length, int hop_length,
                 float top_db, std::size_t* begin, std::size_t* end);

// The per-ISA kernels, selected at run time (see kernel_isa.cpp).
struct KernelTable {
  const char* name;
  // Output frames [block_begin * kBlock, block_end * kBlock) of one clip; out points at the
  // clip's (n_frames, width) output.
  void (*blocks)(const Plan&, const ClipSource&, int block_begin, int block_end, float* out);
  // sign(x)|x|^p elementwise (the kernels' power law; exposed for tests).
  void (*signed_power)(const float* x, std::size_t n, float p, float* out);
  // out[n] = dot(taps[phase(n)], padded[start(n) .. start(n) + k)); see resample.cpp.
  void (*polyphase)(const float* padded, const float* taps, int k, int up, int down,
                    std::size_t n_out, float* out);
};

const KernelTable& kernels(const std::string& isa = "auto");  // "auto", "avx512", "avx2", "generic"
std::vector<std::string> available_isas();

// Computes features for many clips, spread over num_threads threads (the caller's included).
// out holds clips.size() * n_frames * width floats.
void compute_batch(const Plan& plan, const std::vector<ClipSource>& clips, int num_threads,
                   const KernelTable& k, float* out);

// ---- resampling ----
struct ResamplerDesign {
  // The passband ends at kPassband of the lower Nyquist; the stopband starts at the lower
  // Nyquist itself (nothing aliases below it). Kaiser window designed for kStopbandDb.
  static constexpr double kPassband = 0.9;
  static constexpr double kStopbandDb = 100.0;
};

struct Resampler {
  int rate_in = 0, rate_out = 0, up = 1, down = 1;
  int taps_per_phase = 0;    // multiple of 8
  int lead = 0;              // input samples before the centre tap
  std::vector<float> taps;   // up * taps_per_phase, phase-major
  std::vector<double> prototype;  // the filter at the rate rate_in * up (gain up), centred
  Resampler(int rate_in, int rate_out);
  std::size_t output_size(std::size_t n_in) const;
  void run(const float* in, std::size_t n_in, float* out, const KernelTable& k) const;
};

std::shared_ptr<const Resampler> resampler(int rate_in, int rate_out);  // cached per rate pair

}  // namespace s2f
