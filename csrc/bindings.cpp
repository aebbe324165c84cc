// The one Python face of csrc/: speech2face.engine._kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include "spectrogram.h"

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

namespace {

s2f::SpectrogramConfig make_config(int clip_samples, int win_length, int hop_length, int n_fft,
                                   float power) {
  s2f::SpectrogramConfig cfg{clip_samples, win_length, hop_length, n_fft, power};
  cfg.validate();
  return cfg;
}

void check_finite(const float* data, std::size_t n, std::size_t clip_index) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i]))
      throw std::invalid_argument("clip " + std::to_string(clip_index) +
                                  " contains NaN or Inf at sample " + std::to_string(i));
  }
}

// Features of many clips in one call, spread over threads with the GIL released.
py::array_t<float> complex_powerlaw_batch(const std::vector<FloatArray>& clips, int clip_samples,
                                          int win_length, int hop_length, int n_fft, float power,
                                          int num_threads) {
  const auto cfg = make_config(clip_samples, win_length, hop_length, n_fft, power);
  std::vector<const float*> data(clips.size());
  std::vector<std::size_t> sizes(clips.size());
  for (std::size_t i = 0; i < clips.size(); ++i) {
    if (clips[i].ndim() != 1)
      throw std::invalid_argument("clip " + std::to_string(i) + " must be 1-D mono audio");
    data[i] = clips[i].data();
    sizes[i] = static_cast<std::size_t>(clips[i].size());
    if (sizes[i] == 0) throw std::invalid_argument("clip " + std::to_string(i) + " is empty");
    check_finite(data[i], sizes[i], i);
  }
  const std::size_t per_clip = static_cast<std::size_t>(cfg.n_frames()) * cfg.n_bins() * 2;
  py::array_t<float> out({static_cast<py::ssize_t>(clips.size()),
                          static_cast<py::ssize_t>(cfg.n_frames()),
                          static_cast<py::ssize_t>(cfg.n_bins()), static_cast<py::ssize_t>(2)});
  float* out_ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    const s2f::RealFFT fft(cfg.n_fft);
    const auto window = s2f::periodic_hann(cfg.win_length);
    const int workers = std::max(1, std::min<int>(num_threads, static_cast<int>(clips.size())));
    auto run = [&](int worker) {
      for (std::size_t i = worker; i < clips.size(); i += workers)
        s2f::complex_powerlaw(data[i], sizes[i], cfg, fft, window, out_ptr + i * per_clip);
    };
    if (workers == 1) {
      run(0);
    } else {
      std::vector<std::thread> pool;
      for (int w = 0; w < workers; ++w) pool.emplace_back(run, w);
      for (auto& t : pool) t.join();
    }
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "Speech2Face audio kernels (C++): spectrogram features for the voice encoder";
  m.def("complex_powerlaw_batch", &complex_powerlaw_batch, py::arg("clips"),
        py::arg("clip_samples") = 96000, py::arg("win_length") = 400, py::arg("hop_length") = 160,
        py::arg("n_fft") = 512, py::arg("power") = 0.3f, py::arg("num_threads") = 1,
        "sign(x)|x|^power of the real and imaginary STFT parts of each 16 kHz mono clip, after "
        "the repeat-then-crop clip policy. Returns float32 (batch, frames, bins, 2).");
}
