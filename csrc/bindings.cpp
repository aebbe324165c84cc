// The one Python face of csrc/: speech2face.engine._kernels.
// Arrays come in as float32 C-contiguous views (no copy when they already are) and go out as
// NumPy arrays the kernels write into directly (a caller's `out` buffer, or a fresh array
// whose large memory is recycled, see OutputPool); the GIL is released around all work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "spectrogram.h"

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

namespace {

// Index of the first non-finite sample, or n.
std::size_t first_non_finite(const float* data, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::size_t end = std::min(n, i + 4096);
    std::uint32_t bad = 0;
    for (std::size_t j = i; j < end; ++j) {
      std::uint32_t bits;
      std::memcpy(&bits, data + j, 4);
      bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (bad) {
      for (std::size_t j = i; j < end; ++j)
        if (!std::isfinite(data[j])) return j;
    }
    i = end;
  }
  return n;
}

// Large output arrays (a B=32 batch is 39 MB) would otherwise come from a fresh mmap on every
// call, and the first touch of every page (a fault plus the kernel zeroing it) costs more than
// computing the features. Freed arrays return their memory here and the next call of the same
// size reuses it, already faulted in. At most kKeep buffers are kept; small arrays bypass it.
class OutputPool {
 public:
  static constexpr std::size_t kMinBytes = std::size_t(1) << 20;
  static constexpr std::size_t kKeep = 2;

  static py::array_t<float> make(const std::vector<py::ssize_t>& shape) {
    std::size_t count = 1;
    for (auto d : shape) count *= static_cast<std::size_t>(d);
    const std::size_t bytes = count * sizeof(float);
    if (bytes < kMinBytes) return py::array_t<float>(shape);  // numpy.empty: no zero fill
    void* mem = instance().take(bytes);
    py::capsule owner(mem, [](void* p) { instance().give(p); });
    return py::array_t<float>(shape, static_cast<float*>(mem), owner);
  }

 private:
  struct Block {
    void* ptr;
    std::size_t bytes;
  };
  static OutputPool& instance() {
    static OutputPool* pool = new OutputPool;  // leaked: arrays may outlive module teardown
    return *pool;
  }
  void* take(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (std::size_t i = 0; i < free_.size(); ++i)
        if (free_[i].bytes == bytes) {
          void* p = free_[i].ptr;
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
          sizes_.push_back({p, bytes});
          return p;
        }
    }
    const std::size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, rounded);
    if (p == nullptr) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(mu_);
    sizes_.push_back({p, bytes});
    return p;
  }
  void give(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < sizes_.size(); ++i)
      if (sizes_[i].ptr == p) {
        bytes = sizes_[i].bytes;
        sizes_.erase(sizes_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    free_.push_back({p, bytes});
    while (free_.size() > kKeep) {  // drop the oldest
      std::free(free_.front().ptr);
      free_.erase(free_.begin());
    }
  }
  std::mutex mu_;
  std::vector<Block> free_;   // ready for reuse, oldest first
  std::vector<Block> sizes_;  // handed out (to know a returned buffer's size)
};

// A FeatureSpec as the kernels take it: the validated configuration and its Plan (window,
// FFT twiddles, sparse mel weights). Built once per spec on the Python side
// (engine/features/kernels.py caches it) rather than from 15 arguments on every call; immutable,
// so one object is safely shared by every caller and thread.
struct FeatureParams {
  std::shared_ptr<const s2f::Plan> plan;

  const s2f::SpectrogramConfig& config() const { return plan->cfg; }
  int channels() const { return config().kind == s2f::Kind::ComplexPowerlaw ? 2 : 1; }
};

// mel_fb: (n_mels, n_fft/2+1) dense weights, required for log-mel and ignored otherwise.
FeatureParams make_feature_params(s2f::Kind kind, int clip_samples, int win_length,
                                  int hop_length, int n_fft, float power,
                                  const std::optional<FloatArray>& mel_fb, float log_floor,
                                  bool trim, float trim_top_db) {
  s2f::SpectrogramConfig cfg;
  cfg.kind = kind;
  cfg.clip_samples = clip_samples;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.n_fft = n_fft;
  cfg.power = power;
  cfg.log_floor = log_floor;
  cfg.trim = trim;
  cfg.trim_top_db = trim_top_db;
  const float* fb = nullptr;
  int n_mels = 0;
  if (kind == s2f::Kind::LogMel) {
    if (!mel_fb || mel_fb->ndim() != 2 || mel_fb->shape(1) != cfg.n_bins())
      throw std::invalid_argument("logmel needs mel_fb of shape (n_mels, n_fft/2+1)");
    fb = mel_fb->data();
    n_mels = static_cast<int>(mel_fb->shape(0));
  }
  py::gil_scoped_release release;  // a new FFT size's window transform takes a moment
  return FeatureParams{std::make_shared<const s2f::Plan>(cfg, fb, n_mels)};  // validates cfg
}

// Read-only view of one SpectrogramConfig field on the Python class.
template <typename T>
void expose_config_field(py::class_<FeatureParams>& cls, const char* name,
                         T s2f::SpectrogramConfig::*field) {
  cls.def_property_readonly(name, [field](const FeatureParams& p) { return p.config().*field; });
}

void bind_feature_params(py::module_& m) {
  py::enum_<s2f::Kind>(m, "Kind", "Feature kinds, named as FeatureSpec.kind.")
      .value("complex_powerlaw", s2f::Kind::ComplexPowerlaw)
      .value("magnitude_powerlaw", s2f::Kind::MagnitudePowerlaw)
      .value("logmel", s2f::Kind::LogMel);
  const s2f::SpectrogramConfig d;  // the defaults
  py::class_<FeatureParams> cls(m, "FeatureParams",
                                "A validated FeatureSpec with its prepared FFT plan and mel "
                                "weights, for features_batch; immutable.");
  cls.def(py::init(&make_feature_params), py::arg("kind") = d.kind,
          py::arg("clip_samples") = d.clip_samples, py::arg("win_length") = d.win_length,
          py::arg("hop_length") = d.hop_length, py::arg("n_fft") = d.n_fft,
          py::arg("power") = d.power, py::arg("mel_fb") = py::none(),
          py::arg("log_floor") = d.log_floor, py::arg("trim") = d.trim,
          py::arg("trim_top_db") = d.trim_top_db);
  expose_config_field(cls, "kind", &s2f::SpectrogramConfig::kind);
  expose_config_field(cls, "clip_samples", &s2f::SpectrogramConfig::clip_samples);
  expose_config_field(cls, "win_length", &s2f::SpectrogramConfig::win_length);
  expose_config_field(cls, "hop_length", &s2f::SpectrogramConfig::hop_length);
  expose_config_field(cls, "n_fft", &s2f::SpectrogramConfig::n_fft);
  expose_config_field(cls, "power", &s2f::SpectrogramConfig::power);
  expose_config_field(cls, "log_floor", &s2f::SpectrogramConfig::log_floor);
  expose_config_field(cls, "trim", &s2f::SpectrogramConfig::trim);
  expose_config_field(cls, "trim_top_db", &s2f::SpectrogramConfig::trim_top_db);
  cls.def_property_readonly("n_mels", [](const FeatureParams& p) { return p.plan->n_mels; });
  cls.def_property_readonly("shape", [](const FeatureParams& p) {
    return py::make_tuple(p.config().n_frames(), p.plan->width / p.channels(), p.channels());
  }, "One clip's output shape (frames, F, C), as FeatureSpec.shape.");
}

// The clips as kernel sources, checked to be non-empty 1-D audio (the GIL is held: they are
// NumPy arrays).
std::vector<s2f::ClipSource> clip_sources(const std::vector<FloatArray>& clips) {
  std::vector<s2f::ClipSource> sources(clips.size());
  for (std::size_t i = 0; i < clips.size(); ++i) {
    if (clips[i].ndim() != 1)
      throw std::invalid_argument("clip " + std::to_string(i) + " must be 1-D mono audio");
    sources[i].data = clips[i].data();
    sources[i].size = static_cast<std::size_t>(clips[i].size());
    if (sources[i].size == 0) throw std::invalid_argument("clip " + std::to_string(i) + " is empty");
  }
  return sources;
}

// Rejects clips with NaN or Inf and, when the config asks for it, narrows each source to the
// audio that survives silence trimming. Needs no GIL; one pass per clip while it is in cache.
void check_and_trim(std::vector<s2f::ClipSource>& sources, const s2f::SpectrogramConfig& cfg) {
  for (std::size_t i = 0; i < sources.size(); ++i) {
    s2f::ClipSource& src = sources[i];
    const std::size_t bad = first_non_finite(src.data, src.size);
    if (bad != src.size)
      throw std::invalid_argument("clip " + std::to_string(i) + " contains NaN or Inf at sample " +
                                  std::to_string(bad));
    if (!cfg.trim) continue;
    std::size_t begin, end;
    s2f::trim_region(src.data, src.size, cfg.win_length, cfg.hop_length, cfg.trim_top_db, &begin,
                     &end);
    src.data += begin;
    src.size = end - begin;
  }
}

std::string shape_string(const py::ssize_t* dims, py::ssize_t ndim) {
  std::string t = "(";
  for (py::ssize_t i = 0; i < ndim; ++i) t += (i ? ", " : "") + std::to_string(dims[i]);
  return t + (ndim == 1 ? ",)" : ")");
}

// The caller's buffer, to be written in place: exactly float32, C-contiguous, writeable, the
// output's shape. It must not overlap the input clips.
py::array_t<float> checked_out_buffer(const py::array& o, const std::vector<py::ssize_t>& shape) {
  if (!o.dtype().is(py::dtype::of<float>()))
    throw std::invalid_argument("out must be a float32 array");
  if (!(o.flags() & py::array::c_style)) throw std::invalid_argument("out must be C-contiguous");
  if (!o.writeable()) throw std::invalid_argument("out must be writeable");
  if (o.ndim() != 4 || !std::equal(shape.begin(), shape.end(), o.shape()))
    throw std::invalid_argument("out has shape " + shape_string(o.shape(), o.ndim()) +
                                ", expected " + shape_string(shape.data(), 4));
  return py::reinterpret_borrow<py::array_t<float>>(o);
}

py::array_t<float> features_batch(const std::vector<FloatArray>& clips,
                                  const FeatureParams& params, int num_threads,
                                  const std::string& isa, std::optional<py::array> out_arg,
                                  std::optional<bool> stream) {
  const std::shared_ptr<const s2f::Plan> plan = params.plan;  // alive while the GIL is released
  const auto& table = s2f::kernels(isa);
  std::vector<s2f::ClipSource> sources = clip_sources(clips);
  {
    py::gil_scoped_release release;
    check_and_trim(sources, plan->cfg);
  }
  const std::vector<py::ssize_t> shape{
      static_cast<py::ssize_t>(clips.size()), static_cast<py::ssize_t>(plan->cfg.n_frames()),
      static_cast<py::ssize_t>(plan->width / params.channels()),
      static_cast<py::ssize_t>(params.channels())};
  py::array_t<float> out = out_arg ? checked_out_buffer(*out_arg, shape) : OutputPool::make(shape);
  float* out_ptr = out.mutable_data();
  const int stream_mode = stream ? (*stream ? 1 : 0) : -1;
  {
    py::gil_scoped_release release;
    s2f::compute_batch(*plan, sources, std::max(1, num_threads), table, out_ptr, stream_mode);
  }
  return out;
}

py::array_t<float> resample(const FloatArray& audio, int rate_in, int rate_out,
                            const std::string& isa) {
  if (audio.ndim() != 1) throw std::invalid_argument("audio must be 1-D");
  const auto& table = s2f::kernels(isa);
  auto rs = s2f::resampler(rate_in, rate_out);
  const std::size_t n_in = static_cast<std::size_t>(audio.size());
  py::array_t<float> out(static_cast<py::ssize_t>(n_in == 0 ? 0 : rs->output_size(n_in)));
  if (n_in == 0) return out;
  float* dst = out.mutable_data();
  const float* src = audio.data();
  {
    py::gil_scoped_release release;
    rs->run(src, n_in, dst, table);
  }
  return out;
}

py::dict resampler_info(int rate_in, int rate_out) {
  auto rs = s2f::resampler(rate_in, rate_out);
  py::dict d;
  d["up"] = rs->up;
  d["down"] = rs->down;
  d["taps_per_phase"] = rs->taps_per_phase;
  d["passband"] = s2f::ResamplerDesign::kPassband;
  d["stopband"] = s2f::ResamplerDesign::kStopband;
  d["lead"] = rs->lead;
  d["design_stopband_db"] = s2f::ResamplerDesign::kStopbandDb;
  d["prototype"] = py::array_t<double>(static_cast<py::ssize_t>(rs->prototype.size()),
                                       rs->prototype.data());
  d["rate_mid"] = rs->rate_mid;
  py::list halfbands;
  for (const auto& hb : rs->halfbands) {
    py::dict h;
    h["rate_in"] = hb.rate_in;
    h["hw"] = hb.hw;
    h["prototype"] = py::array_t<double>(static_cast<py::ssize_t>(hb.prototype.size()),
                                         hb.prototype.data());
    halfbands.append(h);
  }
  d["halfbands"] = halfbands;
  return d;
}

py::array_t<float> signed_power(const FloatArray& x, float p, const std::string& isa) {
  const auto& table = s2f::kernels(isa);
  py::array_t<float> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const float* src = x.data();
  float* dst = out.mutable_data();
  const std::size_t n = static_cast<std::size_t>(x.size());
  {
    py::gil_scoped_release release;
    table.signed_power(src, n, p, dst);
  }
  return out;
}

py::tuple trim_region(const FloatArray& audio, int win_length, int hop_length, float top_db) {
  std::size_t begin, end;
  s2f::trim_region(audio.data(), static_cast<std::size_t>(audio.size()), win_length, hop_length,
                   top_db, &begin, &end);
  return py::make_tuple(begin, end);
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "Speech2Face audio kernels (C++): features and resampling for the voice encoder";
  bind_feature_params(m);
  m.def("features_batch", &features_batch, py::arg("clips"), py::arg("params"),
        py::arg("num_threads") = 1, py::arg("isa") = "auto", py::arg("out") = py::none(),
        py::arg("stream") = py::none(),
        "Features (as `params`, a FeatureParams, describes them) of each 16 kHz mono clip after "
        "optional silence trimming and the repeat-then-crop clip policy, in one call spread "
        "over num_threads threads. Returns float32 (batch, frames, F, C): `out` itself when "
        "given (float32, C-contiguous, that shape; written in place), else a fresh array. "
        "stream: non-temporal output stores (None: for outputs >= 16 MB).");
  m.def("resample", &resample, py::arg("audio"), py::arg("rate_in"), py::arg("rate_out"),
        py::arg("isa") = "auto",
        "Kaiser-windowed-sinc resampling (halfband decimators, then a polyphase filter); output "
        "length ceil(n * out / in).");
  m.def("resampler_info", &resampler_info, py::arg("rate_in"), py::arg("rate_out"),
        "The resampler's design: halfband stages (rate_in, hw, prototype) and the polyphase "
        "filter (up, down at rate_mid, taps_per_phase, prototype at rate_mid * up, gain up).");
  m.def("signed_power", &signed_power, py::arg("x"), py::arg("p"), py::arg("isa") = "auto",
        "sign(x)|x|^p with the kernels' polynomial log2/exp2 (for tests).");
  m.def("trim_region", &trim_region, py::arg("audio"), py::arg("win_length"),
        py::arg("hop_length"), py::arg("top_db"));
  m.def("available_isas", &s2f::available_isas);
}
