#include "spectrogram.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <unistd.h>

namespace s2f {

#define S2F_DECLARE_ISA(name) \
  namespace name {            \
  extern const KernelTable table; \
  }
S2F_DECLARE_ISA(generic)
#if defined(S2F_HAVE_X86_ISAS)
S2F_DECLARE_ISA(avx2)
S2F_DECLARE_ISA(avx512)
#endif

namespace {
constexpr double kPi = 3.14159265358979323846;

bool is_power_of_two(int n) { return n > 1 && (n & (n - 1)) == 0; }

// The periodic Hann window's real FFT (zero-padded to n_fft), computed once per (n_fft, win_length):
// plans are built per call, and this O(n_fft * win_length) sum would cost more than a clip's features.
std::pair<std::shared_ptr<const std::vector<float>>, std::shared_ptr<const std::vector<float>>>
window_dft(int n_fft, int win_length) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::pair<std::shared_ptr<const std::vector<float>>,
                                                 std::shared_ptr<const std::vector<float>>>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find({n_fft, win_length});
  if (it != cache.end()) return it->second;
  const int bins = n_fft / 2 + 1;
  auto re = std::make_shared<std::vector<float>>(bins), im = std::make_shared<std::vector<float>>(bins);
  for (int k = 0; k < bins; ++k) {
    double sr = 0.0, si = 0.0;
    for (int n = 0; n < win_length; ++n) {
      const double w = 0.5 - 0.5 * std::cos(2.0 * kPi * n / win_length);
      const long long phase = (static_cast<long long>(k) * n) % n_fft;  // exact angle reduction
      sr += w * std::cos(2.0 * kPi * phase / n_fft);
      si -= w * std::sin(2.0 * kPi * phase / n_fft);
    }
    (*re)[k] = static_cast<float>(sr);
    (*im)[k] = static_cast<float>(si);
  }
  (*im)[0] = (*im)[bins - 1] = 0.0f;  // a real window's DC and Nyquist bins are real
  if (cache.size() >= 16) cache.clear();
  return cache[{n_fft, win_length}] = {re, im};
}

bool cpu_has_avx2() {
#if defined(S2F_HAVE_X86_ISAS)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
bool cpu_has_avx512() {
#if defined(S2F_HAVE_X86_ISAS)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}
}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  if (cpu_has_avx512()) out.push_back("avx512");
  if (cpu_has_avx2()) out.push_back("avx2");
  out.push_back("generic");
  return out;
}

const KernelTable& kernels(const std::string& isa) {
  const std::string want = isa == "auto" ? available_isas().front() : isa;
#if defined(S2F_HAVE_X86_ISAS)
  if (want == "avx512" && cpu_has_avx512()) return avx512::table;
  if (want == "avx2" && cpu_has_avx2()) return avx2::table;
#endif
  if (want == "generic") return generic::table;
  throw std::invalid_argument("instruction set '" + isa + "' is not available on this CPU");
}

void SpectrogramConfig::validate() const {
  if (clip_samples <= 0) throw std::invalid_argument("clip_samples must be positive");
  if (win_length <= 0 || hop_length <= 0)
    throw std::invalid_argument("win_length and hop_length must be positive");
  if (!is_power_of_two(n_fft) || n_fft < 16)
    throw std::invalid_argument("n_fft must be a power of two >= 16");
  if (win_length > n_fft) throw std::invalid_argument("win_length must not exceed n_fft");
  if (clip_samples < win_length)
    throw std::invalid_argument("clip_samples must hold at least one window");
  if (!(power > 0.0f)) throw std::invalid_argument("power must be positive");
  if (!(log_floor > 0.0f)) throw std::invalid_argument("log_floor must be positive");
  if (!(trim_top_db > 0.0f)) throw std::invalid_argument("trim_top_db must be positive");
}

Plan::Plan(const SpectrogramConfig& c, const float* mel_fb, int mels) : cfg(c) {
  cfg.validate();
  half = cfg.n_fft / 2;
  win_padded = (cfg.win_length + kBlock - 1) / kBlock * kBlock;
  window.assign(win_padded, 0.0f);
  for (int i = 0; i < cfg.win_length; ++i)
    window[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * kPi * i / cfg.win_length));

  // Radix-4 stages from the full size down, a radix-2 stage last when log2(half) is odd.
  std::vector<int> radices;
  for (int size = half; size > 1;) {
    const int r = size % 4 == 0 ? 4 : 2;
    radices.push_back(r);
    size /= r;
  }
  int size = half;
  for (int r : radices) {
    Stage st;
    st.radix = r;
    st.span = size / r;
    if (r == 4) {
      st.wr.resize(3 * st.span);
      st.wi.resize(3 * st.span);
      for (int q = 1; q <= 3; ++q)
        for (int j = 0; j < st.span; ++j) {
          const double a = -2.0 * kPi * q * j / size;
          st.wr[(q - 1) * st.span + j] = static_cast<float>(std::cos(a));
          st.wi[(q - 1) * st.span + j] = static_cast<float>(std::sin(a));
        }
    }
    stages.push_back(std::move(st));
    size /= r;
  }
  // Frequency k ends up at sum_i q_i * half / (r_1 ... r_i), q_i the i-th mixed-radix digit.
  perm.resize(half);
  for (int k = 0; k < half; ++k) {
    int rest = k, block = half, pos = 0;
    for (int r : radices) {
      block /= r;
      pos += (rest % r) * block;
      rest /= r;
    }
    perm[k] = pos;
  }
  split_wr.resize(half / 2 + 1);
  split_wi.resize(half / 2 + 1);
  for (int k = 0; k <= half / 2; ++k) {
    const double a = -2.0 * kPi * k / cfg.n_fft;
    split_wr[k] = static_cast<float>(std::cos(a));
    split_wi[k] = static_cast<float>(std::sin(a));
  }

  std::tie(window_dft_r, window_dft_i) = window_dft(cfg.n_fft, cfg.win_length);

  switch (cfg.kind) {
    case Kind::ComplexPowerlaw: width = 2 * cfg.n_bins(); break;
    case Kind::MagnitudePowerlaw: width = cfg.n_bins(); break;
    case Kind::LogMel: {
      if (mel_fb == nullptr || mels <= 0)
        throw std::invalid_argument("logmel needs a (n_mels, n_bins) filter bank");
      n_mels = mels;
      width = mels;
      const int bins = cfg.n_bins();
      for (int m = 0; m < mels; ++m) {
        const float* row = mel_fb + static_cast<std::size_t>(m) * bins;
        int lo = 0, hi = bins;
        while (lo < bins && row[lo] == 0.0f) ++lo;
        while (hi > lo && row[hi - 1] == 0.0f) --hi;
        mel_lo.push_back(lo);
        mel_len.push_back(hi - lo);
        mel_off.push_back(static_cast<int>(mel_w.size()));
        mel_w.insert(mel_w.end(), row + lo, row + hi);
      }
      break;
    }
    default: throw std::invalid_argument("unknown feature kind");
  }
}

void trim_region(const float* audio, std::size_t n, int win, int hop, float top_db,
                 std::size_t* begin, std::size_t* end) {
  *begin = 0;
  *end = n;
  if (n < static_cast<std::size_t>(win)) return;
  const std::size_t frames = 1 + (n - win) / hop;
  // Each frame's mean square, in double, recomputed from its own samples (no running sum).
  std::vector<double> energy(frames);
  double peak = 0.0;
  for (std::size_t t = 0; t < frames; ++t) {
    const float* x = audio + t * hop;
    double acc = 0.0;
    for (int i = 0; i < win; ++i) acc += static_cast<double>(x[i]) * x[i];
    energy[t] = acc / win;
    peak = std::max(peak, energy[t]);
  }
  if (!(peak > 0.0)) return;  // all silence: keep everything
  const double threshold = peak * std::pow(10.0, -static_cast<double>(top_db) / 10.0);
  std::size_t first = 0, last = frames - 1;
  while (energy[first] < threshold) ++first;
  while (energy[last] < threshold) --last;
  *begin = first * hop;
  *end = std::min(n, last * hop + win);
}

// ---- a small persistent thread pool ----------------------------------------------------
namespace {

class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { loop(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int workers() const { return static_cast<int>(threads_.size()); }

  // Runs fn(i) for i in [0, n) on up to `helpers` pool threads plus the caller.
  void run(std::size_t n, int helpers, const std::function<void(std::size_t)>& fn) {
    helpers = std::min<int>(helpers, workers());
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      active_ = helpers;
      pending_ = helpers;
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
    if (error_) {
      auto e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

 private:
  void work() {
    for (;;) {
      const std::size_t i = next_.fetch_add(1);
      if (i >= n_) return;
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }
  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (generation_ != seen && active_ > 0); });
        if (stop_) return;
        seen = generation_;
        --active_;
      }
      work();
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(std::size_t)>* fn_ = nullptr;
  std::size_t n_ = 0;
  std::atomic<std::size_t> next_{0};
  int active_ = 0, pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

std::mutex pool_mu;
ThreadPool* pool = nullptr;  // leaked on purpose: no joins during interpreter shutdown
pid_t pool_pid = 0;

// Runs fn over [0, n) with up to `threads` threads. Concurrent callers (several Python
// threads) do not queue behind each other: one gets the pool, the others run inline.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& fn) {
  if (threads <= 1 || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::unique_lock<std::mutex> lock(pool_mu, std::try_to_lock);
  if (!lock.owns_lock()) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  // A forked child inherits the pool object but not its threads: start a fresh one.
  if (pool == nullptr || pool_pid != getpid() || pool->workers() < threads - 1) {
    if (pool != nullptr && pool_pid == getpid()) delete pool;
    pool = new ThreadPool(threads - 1);
    pool_pid = getpid();
  }
  pool->run(n, threads - 1, fn);
}

}  // namespace

void compute_batch(const Plan& plan, const std::vector<ClipSource>& clips, int num_threads,
                   const KernelTable& k, float* out, int stream) {
  const int frames = plan.cfg.n_frames();
  const int blocks_per_clip = (frames + kBlock - 1) / kBlock;
  const std::size_t per_clip = static_cast<std::size_t>(frames) * plan.width;
  const std::size_t total = clips.size() * blocks_per_clip;
  const int threads = std::max(1, std::min<int>(num_threads, static_cast<int>(total)));
  // Chunks of blocks: large enough to amortise scheduling, small enough to balance.
  int chunk = blocks_per_clip;
  if (threads > 1) {
    const std::size_t target = std::max<std::size_t>(1, total / (4 * threads));
    chunk = static_cast<int>(std::min<std::size_t>(blocks_per_clip, std::max<std::size_t>(target, 4)));
  }
  const int chunks_per_clip = (blocks_per_clip + chunk - 1) / chunk;
  const bool nt = stream < 0 ? clips.size() * per_clip * sizeof(float) >= kStreamBytes : stream > 0;
  parallel_for(clips.size() * chunks_per_clip, threads, [&](std::size_t task) {
    const std::size_t clip = task / chunks_per_clip;
    const int first = static_cast<int>(task % chunks_per_clip) * chunk;
    const int last = std::min(blocks_per_clip, first + chunk);
    k.blocks(plan, clips[clip], first, last, out + clip * per_clip, nt);
  });
}

// ---- resampling --------------------------------------------------------------------------
namespace {
double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 500; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}
}  // namespace

// Resampling: halfband decimators (while the rate is well above the output's), then a
// polyphase windowed sinc: the input is (conceptually) upsampled by `up` with zeros, filtered by
// a Kaiser-windowed sinc at rate_mid * up, and every `down`-th sample kept; only the taps that
// meet non-zero samples are computed. Design (ResamplerDesign): soxr HQ's band edges (passband
// to 0.913 of the lower Nyquist, stopband from 1.087 of it: 7304 / 8696 Hz for 16 kHz output),
// Kaiser windows for 150 dB. 48 kHz: halfband (75 taps) to 24 kHz, then 2/3 (2 x 176 taps);
// 44.1 kHz: halfband (95 taps) to 22.05 kHz, then 320/441 (320 x 160 taps). Measured end to
// end next to soxr HQ in tests/test_features_resample.py (flatter passband, >= 1.4 dB more
// stopband attenuation, ~1.5x faster: benchmarks/FEATURES.md). The kernel (kernel_isa.cpp,
// resample_lanes) runs 16 or 8 stretches of the output at once, one per SIMD lane.
namespace {
double kaiser_beta(double att) {
  return att > 50 ? 0.1102 * (att - 8.7) : 0.5842 * std::pow(att - 21, 0.4) + 0.07886 * (att - 21);
}
// Kaiser's length estimate for attenuation att over a transition of `width` cycles per sample.
int kaiser_length(double att, double width) {
  return static_cast<int>(std::ceil((att - 7.95) / (2.285 * 2.0 * kPi * width))) + 1;
}
double kaiser(double beta, double r) {  // r in [-1, 1]
  return bessel_i0(beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / bessel_i0(beta);
}
}  // namespace

Resampler::Resampler(int in, int out) : rate_in(in), rate_out(out) {
  if (in <= 0 || out <= 0) throw std::invalid_argument("sample rates must be positive");
  const double att = ResamplerDesign::kStopbandDb;
  const double beta = kaiser_beta(att);
  const double nyquist = 0.5 * std::min(in, out);
  const double f_stop = ResamplerDesign::kStopband * nyquist;
  const double f_pass = ResamplerDesign::kPassband * nyquist;

  // Halfbands: centred on r/4 with the transition [f_stop, r/2 - f_stop], so that what folds
  // over r/4 lands above f_stop (where the later stages remove it) and [0, f_pass] stays flat.
  // Only while that transition is wide enough (>= 4% of r) for a short filter.
  int rate = in;
  while (rate % 2 == 0 && rate / 4.0 - f_stop >= 0.02 * rate && halfbands.size() < 6) {
    Halfband hb;
    hb.rate_in = rate;
    int hw = kaiser_length(att, (rate / 2.0 - 2.0 * f_stop) / rate) / 2;
    if (hw % 2 == 0) ++hw;
    hb.hw = hw;
    hb.prototype.resize(2 * hw + 1);
    for (int d = -hw; d <= hw; ++d) {
      double h = 0.0;
      if (d == 0) h = 0.5;
      else if (d % 2 != 0) h = std::sin(0.5 * kPi * d) / (kPi * d);  // 0.5 sinc(d / 2)
      hb.prototype[d + hw] = h * kaiser(beta, static_cast<double>(d) / hw);
    }
    hb.even.assign(hw + 1, 0.0f);
    for (int q = 0; q <= hw; ++q) hb.even[q] = static_cast<float>(hb.prototype[2 * q]);
    hb.center = static_cast<float>(hb.prototype[hw]);
    halfbands.push_back(std::move(hb));
    rate /= 2;
  }
  rate_mid = rate;

  const int g = std::gcd(rate_mid, out);
  up = out / g;
  down = rate_mid / g;
  if (up > 16384)
    throw std::invalid_argument("resampling ratio " + std::to_string(out) + "/" +
                                std::to_string(in) + " is too fine-grained");
  const double fu = static_cast<double>(rate_mid) * up;  // the filter's rate
  const double fc = 0.5 * (f_pass + f_stop);
  const int length = kaiser_length(att, (f_stop - f_pass) / fu);
  const int hw = length / 2;  // half width in filter samples; 2 * hw + 1 taps
  prototype.resize(2 * hw + 1);
  for (int d = -hw; d <= hw; ++d) {
    const double x = 2.0 * fc * d / fu;
    const double sinc = d == 0 ? 1.0 : std::sin(kPi * x) / (kPi * x);
    prototype[d + hw] = up * (2.0 * fc / fu) * sinc * kaiser(beta, static_cast<double>(d) / hw);
  }
  // Output n with t = n * down: phase = t % up, centre input ic = t / up. Tap j of the phase
  // meets input i = ic - lead + j at filter offset d = t - i * up = phase + (lead - j) * up.
  lead = (hw + up - 1) / up;
  const int trail = (hw + up - 1) / up;  // taps past the centre, for phase 0 .. up-1
  // A multiple of 8: the polyphase kernel reads taps 8 at a time (up to 8 partial chains), so
  // a shorter phase would read past its end (past the vector, for the last phase).
  taps_per_phase = (lead + trail + 1 + 7) / 8 * 8;
  taps.assign(static_cast<std::size_t>(up) * taps_per_phase, 0.0f);
  for (int ph = 0; ph < up; ++ph)
    for (int j = 0; j < taps_per_phase; ++j) {
      const long d = ph + static_cast<long>(lead - j) * up;
      if (d >= -hw && d <= hw)
        taps[static_cast<std::size_t>(ph) * taps_per_phase + j] = static_cast<float>(prototype[d + hw]);
    }
}

// soxr's length rule (what librosa returns): n_in * rate_out / rate_in rounded to the nearest
// sample, halves up. Output n sits at input time n * rate_in / rate_out, as in soxr (its filter
// delay removed), so the two resamplers' outputs line up sample for sample.
std::size_t Resampler::output_size(std::size_t n_in) const {
  const std::size_t in = static_cast<std::size_t>(rate_in);
  return (2 * n_in * static_cast<std::size_t>(rate_out) + in) / (2 * in);
}

void Resampler::run(const float* in, std::size_t n_in, float* out, const KernelTable& k) const {
  const std::size_t n_out = output_size(n_in);
  if (rate_in == rate_out) {
    std::copy(in, in + n_in, out);
    return;
  }
  if (n_out == 0) return;
  std::vector<HalfbandTaps> hb;
  for (const auto& h : halfbands)
    hb.push_back({h.even.data(), static_cast<int>(h.even.size()), h.hw, h.center});
  k.resample(in, n_in, hb.data(), static_cast<int>(hb.size()), taps.data(), taps_per_phase, up,
             down, lead, n_out, out);
}

std::shared_ptr<const Resampler> resampler(int rate_in, int rate_out) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::shared_ptr<const Resampler>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find({rate_in, rate_out});
  if (it != cache.end()) return it->second;
  if (cache.size() >= 16) cache.clear();  // odd rates: keep memory bounded
  auto fresh = std::make_shared<const Resampler>(rate_in, rate_out);
  cache[{rate_in, rate_out}] = fresh;
  return fresh;
}

}  // namespace s2f
