// The one Python face of csrc/: speech2face.engine._kernels.
// Arrays come in as float32 C-contiguous views (no copy when they already are) and go out as
// fresh NumPy arrays the kernels write into directly; the GIL is released around all work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <cstring>
#include <memory>
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

py::array_t<float> features_batch(const std::vector<FloatArray>& clips, int kind,
                                  int clip_samples, int win_length, int hop_length, int n_fft,
                                  float power, std::optional<FloatArray> mel_fb, float log_floor,
                                  bool trim, float trim_top_db, int num_threads,
                                  const std::string& isa) {
  s2f::SpectrogramConfig cfg;
  cfg.clip_samples = clip_samples;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.n_fft = n_fft;
  cfg.power = power;
  if (kind < 0 || kind > 2) throw std::invalid_argument("kind must be 0, 1 or 2");
  cfg.kind = static_cast<s2f::Kind>(kind);
  cfg.log_floor = log_floor;
  cfg.trim = trim;
  cfg.trim_top_db = trim_top_db;
  const float* fb = nullptr;
  int n_mels = 0;
  if (cfg.kind == s2f::Kind::LogMel) {
    if (!mel_fb || mel_fb->ndim() != 2 || mel_fb->shape(1) != cfg.n_bins())
      throw std::invalid_argument("logmel needs mel_fb of shape (n_mels, n_fft/2+1)");
    fb = mel_fb->data();
    n_mels = static_cast<int>(mel_fb->shape(0));
  }
  const auto& table = s2f::kernels(isa);
  std::vector<s2f::ClipSource> sources(clips.size());
  for (std::size_t i = 0; i < clips.size(); ++i) {
    if (clips[i].ndim() != 1)
      throw std::invalid_argument("clip " + std::to_string(i) + " must be 1-D mono audio");
    sources[i].data = clips[i].data();
    sources[i].size = static_cast<std::size_t>(clips[i].size());
    if (sources[i].size == 0) throw std::invalid_argument("clip " + std::to_string(i) + " is empty");
  }
  std::unique_ptr<s2f::Plan> plan;
  {
    py::gil_scoped_release release;
    plan.reset(new s2f::Plan(cfg, fb, n_mels));  // cheap (twiddles for one FFT size)
    for (std::size_t i = 0; i < sources.size(); ++i) {
      const std::size_t bad = first_non_finite(sources[i].data, sources[i].size);
      if (bad != sources[i].size)
        throw std::invalid_argument("clip " + std::to_string(i) + " contains NaN or Inf at sample " +
                                    std::to_string(bad));
      if (cfg.trim) {
        std::size_t begin, end;
        s2f::trim_region(sources[i].data, sources[i].size, cfg.win_length, cfg.hop_length,
                         cfg.trim_top_db, &begin, &end);
        sources[i].data += begin;
        sources[i].size = end - begin;
      }
    }
  }
  const int channels = cfg.kind == s2f::Kind::ComplexPowerlaw ? 2 : 1;
  py::array_t<float> out({static_cast<py::ssize_t>(clips.size()),
                          static_cast<py::ssize_t>(cfg.n_frames()),
                          static_cast<py::ssize_t>(plan->width / channels),
                          static_cast<py::ssize_t>(channels)});
  float* out_ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    s2f::compute_batch(*plan, sources, std::max(1, num_threads), table, out_ptr);
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
  d["design_stopband_db"] = s2f::ResamplerDesign::kStopbandDb;
  d["prototype"] = py::array_t<double>(static_cast<py::ssize_t>(rs->prototype.size()),
                                       rs->prototype.data());
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
  m.def("features_batch", &features_batch, py::arg("clips"), py::arg("kind") = 0,
        py::arg("clip_samples") = 96000, py::arg("win_length") = 400, py::arg("hop_length") = 160,
        py::arg("n_fft") = 512, py::arg("power") = 0.3f, py::arg("mel_fb") = py::none(),
        py::arg("log_floor") = 1e-6f, py::arg("trim") = false, py::arg("trim_top_db") = 50.0f,
        py::arg("num_threads") = 1, py::arg("isa") = "auto",
        "Features of each 16 kHz mono clip (kind 0 complex power law, 1 magnitude power law, "
        "2 log-mel) after optional silence trimming and the repeat-then-crop clip policy, in "
        "one call spread over num_threads threads. Returns float32 (batch, frames, F, C).");
  m.def("resample", &resample, py::arg("audio"), py::arg("rate_in"), py::arg("rate_out"),
        py::arg("isa") = "auto",
        "Polyphase Kaiser-windowed-sinc resampling; output length ceil(n * out / in).");
  m.def("resampler_info", &resampler_info, py::arg("rate_in"), py::arg("rate_out"));
  m.def("signed_power", &signed_power, py::arg("x"), py::arg("p"), py::arg("isa") = "auto",
        "sign(x)|x|^p with the kernels' polynomial log2/exp2 (for tests).");
  m.def("trim_region", &trim_region, py::arg("audio"), py::arg("win_length"),
        py::arg("hop_length"), py::arg("top_db"));
  m.def("available_isas", &s2f::available_isas);
}
