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
  // The window's own real FFT, bins 0..half (float64 sums, rounded). Each frame's mean c is taken
  // out before the window and c * window_dft added back after the FFT: the same transform, but
  // float32 rounding no longer scales with a DC offset (the power law lifts it in near-zero bins),
  // and a frame of digital silence (c = 0) stays exactly 0.
  std::shared_ptr<const std::vector<float>> window_dft_r, window_dft_i;
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

// One halfband decimator (by 2): y[t] = sum_d h[d] x[2t - d], h symmetric, |d| <= hw with hw
// odd, zero at even d != 0. Stored as the taps at d = hw - 2q (q = 0..n_even-1, padded with
// zeros) and the centre tap.
struct HalfbandTaps {
  const float* even;
  int n_even;
  int hw;
  float center;
};

// The per-ISA kernels, selected at run time (see kernel_isa.cpp).
struct KernelTable {
  const char* name;
  // Output frames [block_begin * kBlock, block_end * kBlock) of one clip; out points at the
  // clip's (n_frames, width) output. stream: write full blocks with non-temporal stores
  // (for outputs far larger than the caches: no read-for-ownership, no cache pollution).
  void (*blocks)(const Plan&, const ClipSource&, int block_begin, int block_end, float* out,
                 bool stream);
  // sign(x)|x|^p elementwise (the kernels' power law; exposed for tests).
  void (*signed_power)(const float* x, std::size_t n, float p, float* out);
  // Resampling of a whole signal (zeros outside it): the halfband decimators hb[0..n_hb), then
  // the polyphase filter (taps: up phases of k taps; output n reads input from n*down/up - lead
  // with the taps of phase (n*down) % up). Runs kLanes output segments at once, one per SIMD
  // lane; see kernel_isa.cpp.
  void (*resample)(const float* in, std::size_t n_in, const HalfbandTaps* hb, int n_hb,
                   const float* taps, int k, int up, int down, int lead, std::size_t n_out,
                   float* out);
  int lanes;  // independent output segments `resample` runs at once
};

const KernelTable& kernels(const std::string& isa = "auto");  // "auto", "avx512", "avx2", "generic"
std::vector<std::string> available_isas();

// Computes features for many clips, spread over num_threads threads (the caller's included).
// out holds clips.size() * n_frames * width floats. stream: -1 decides by output size
// (non-temporal stores from kStreamBytes on), 0 never, 1 always.
constexpr std::size_t kStreamBytes = std::size_t(16) << 20;
void compute_batch(const Plan& plan, const std::vector<ClipSource>& clips, int num_threads,
                   const KernelTable& k, float* out, int stream = -1);

// ---- resampling ----
struct ResamplerDesign {
  // soxr's HQ band layout, with a stronger stopband: the passband ends at kPassband of the
  // lower Nyquist, the stopband starts at kStopband of it (the transition is centred on the
  // Nyquist frequency, so content just above it, attenuated, may alias into the transition
  // band just below it, as with soxr). Kaiser window designed for kStopbandDb.
  static constexpr double kPassband = 0.913;
  static constexpr double kStopband = 1.087;
  static constexpr double kStopbandDb = 150.0;
};

struct Resampler {
  // Halfband decimators run first while the rate stays well above the output's (48 kHz ->
  // 24 kHz, 44.1 kHz -> 22.05 kHz, ...); each keeps everything below kStopband of the output
  // Nyquist clean (its transition band is symmetric about a quarter of its input rate).
  struct Halfband {
    int rate_in = 0;
    int hw = 0;                      // odd
    std::vector<double> prototype;   // 2 * hw + 1 taps, centred, gain 1 (DC gain 1)
    std::vector<float> even;         // prototype[2q], q = 0..hw, padded with zeros
    float center = 0.0f;
  };
  std::vector<Halfband> halfbands;
  int rate_in = 0, rate_out = 0, up = 1, down = 1;
  int rate_mid = 0;          // the rate into the polyphase stage (rate_in / 2^halfbands)
  int taps_per_phase = 0;    // multiple of 8
  int lead = 0;              // input samples before the centre tap
  std::vector<float> taps;   // up * taps_per_phase, phase-major
  std::vector<double> prototype;  // the polyphase filter at the rate rate_mid * up (gain up), centred
  Resampler(int rate_in, int rate_out);
  std::size_t output_size(std::size_t n_in) const;
  void run(const float* in, std::size_t n_in, float* out, const KernelTable& k) const;
};

std::shared_ptr<const Resampler> resampler(int rate_in, int rate_out);  // cached per rate pair

}  // namespace s2f
