"""One-shot probe for a lent GPU machine: what the paper-size model costs there, in PyTorch.

Runs from a plain copy of the repository (nothing installed, no C++ extension, no TensorRT,
DALI or tritonserver needed): ``python benchmarks/studies/gpu_probe.py --out gpu_probe.json``.
Measures, on the ``paper`` presets (random weights, seed 0):

- the voice encoder alone and the waveform graph (conv-STFT front end + encoder + decoder,
  export/frontend.py), FP32 (TF32 as PyTorch defaults it, recorded), BF16 and FP16 autocast
  and FP16 weights, eager and CUDA graphs, at batch 1/8/32: ms per batch and clips/s;
- the STFT floors at batch 32 of 6 s clips: cuFFT through CuPy (rfft of 598 x 512 frames +
  the power law), torch.stft, and the conv front end;
- parity: reduced-precision features vs FP32 (cosine), the conv front end vs the NumPy
  FeatureSpec reference (TF32 on/off, FP16), and the built-in checkpoint's trained weights.

Every item is guarded (an error is recorded, the rest still runs) and a global budget skips
what would not fit. ``--smoke`` runs everything tiny on the CPU (tests/gpu/test_gpu_probe.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _import_project():
    """Our modules from the repository copy: speech2face.training -> ./training, and so on."""
    sys.path.insert(0, str(REPO))
    import speech2face

    if str(REPO) not in speech2face.__path__:
        speech2face.__path__.append(str(REPO))


_import_project()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from speech2face.engine.contract.feature_spec import FeatureSpec  # noqa: E402
from speech2face.engine.features.reference import reference_features  # noqa: E402
from speech2face.export.frontend import StftFrontEnd, WaveformToFace  # noqa: E402
from speech2face.training.networks import face_decoder  # noqa: E402
from speech2face.training.networks import voice_encoder  # noqa: E402

PRECISIONS = ("fp32", "bf16", "fp16", "fp16_weights")


class Probe:
    """Holds the settings, the budget and the record; `guard` runs one item."""

    def __init__(self, smoke: bool, budget_s: float):
        self.smoke = smoke
        self.device = torch.device("cpu" if smoke else "cuda")
        self.budget_s = budget_s
        self.start = time.perf_counter()
        self.batches = (1, 2) if smoke else (1, 8, 32)
        self.floor_batch = 2 if smoke else 32
        self.min_seconds = 0.0 if smoke else 0.4
        self.max_iters = 1 if smoke else 200
        self.warmup = 0 if smoke else 3
        self.record: dict = {"schema": 1, "smoke": smoke, "budget_s": budget_s, "timings": [],
                             "stft_floor": [], "parity": [], "skipped": [], "errors": []}

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def guard(self, section: str, label: dict, fn, *args, need_s: float = 5.0) -> None:
        if self.left() < need_s:
            self.record["skipped"].append({**label, "section": section, "reason": "time budget"})
            return
        try:
            self.record[section].append({**label, **fn(*args)})
        except Exception as exc:  # noqa: BLE001 - one failure must not lose the other measurements
            self.record["errors"].append({**label, "section": section, "error": f"{type(exc).__name__}: {exc}",
                                          "where": traceback.format_exc(limit=3)[-600:]})
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def time_it(self, run) -> dict:
        """ms per call: warm up, then double the call count until min_seconds have passed."""
        for _ in range(self.warmup):
            run()
        self.sync()
        n, t0 = 0, time.perf_counter()
        while n < self.max_iters:
            run()
            n += 1
            if n & (n - 1) == 0:  # powers of two: check the clock without a sync per call
                self.sync()
                if time.perf_counter() - t0 >= self.min_seconds:
                    break
        self.sync()
        return {"ms": 1000.0 * (time.perf_counter() - t0) / n, "iters": n}


def environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "tf32_conv": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
           "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), driver=_driver_version())
    env["modules"] = {name: getattr(sys.modules.get(name), "__file__", None)
                      for name in ("speech2face", "speech2face.training", "speech2face.export.frontend")}
    try:
        import cupy

        env["cupy"] = cupy.__version__
    except Exception as exc:  # noqa: BLE001 - CuPy missing or without a usable CUDA: recorded
        env["cupy"] = f"unavailable: {type(exc).__name__}"
    return env


def _driver_version() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except Exception:  # noqa: BLE001 - no nvidia-smi: the driver version is optional
        return None


def build_models(smoke: bool, spec: FeatureSpec) -> dict:
    """The encoder and the waveform graph, random weights (seed 0), eval mode, on the CPU."""
    torch.manual_seed(0)
    enc_cfg = voice_encoder.PRESETS["tiny" if smoke else "paper"]
    dec_cfg = face_decoder.PRESETS["builtin" if smoke else "paper"]
    if enc_cfg.feature_dim != dec_cfg.feature_dim:
        raise ValueError("encoder and decoder presets disagree on the feature size")
    encoder = voice_encoder.VoiceEncoder(enc_cfg).eval()
    decoder = face_decoder.FaceDecoder(dec_cfg).eval()
    return {"encoder": encoder, "waveform_to_face": WaveformToFace(spec, encoder, decoder).eval(),
            "encoder_config": enc_cfg, "decoder_config": dec_cfg}


def _first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def make_runner(model, example: torch.Tensor, precision: str, cuda_graph: bool):
    """A no-argument callable running `model` on a fixed input in the given precision."""
    dev = example.device
    if precision == "fp16_weights":
        model, example = model.half(), example.half()
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def forward():
        with torch.no_grad(), torch.autocast(dev.type, dtype=autocast or torch.float32,
                                             enabled=autocast is not None, cache_enabled=False):
            return model(example)

    if not cuda_graph:
        return forward
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            forward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        forward()
    return graph.replay


def measure_model(probe: Probe, model_cpu, shape: tuple[int, ...], precision: str, mode: str, batch: int) -> dict:
    import copy

    model = copy.deepcopy(model_cpu).to(probe.device)
    example = torch.randn(batch, *shape, device=probe.device) * 0.1
    if mode == "compile":
        model = torch.compile(model, mode="reduce-overhead")
        t0 = time.perf_counter()
        make_runner(model, example, precision, False)()
        probe.sync()
        compile_s = time.perf_counter() - t0
        timing = probe.time_it(make_runner(model, example, precision, False))
        timing["compile_s"] = compile_s
    else:
        timing = probe.time_it(make_runner(model, example, precision, mode == "cuda_graph"))
    timing["clips_per_s"] = batch / (timing["ms"] / 1000.0)
    return timing


def run_timings(probe: Probe, models: dict, spec: FeatureSpec) -> None:
    shapes = {"encoder": spec.shape, "waveform_to_face": (spec.clip_samples,)}
    modes = ("eager",) if probe.smoke else ("eager", "cuda_graph")
    for name, shape in shapes.items():
        for precision in PRECISIONS:
            for mode in modes:
                for batch in probe.batches:
                    label = {"model": name, "precision": precision, "mode": mode, "batch": batch}
                    probe.guard("timings", label,
                                measure_model, probe, models[name], shape, precision, mode, batch)


def run_compile(probe: Probe, models: dict, spec: FeatureSpec) -> None:
    """torch.compile(mode="reduce-overhead") once, last: only when plenty of budget remains."""
    if probe.smoke:
        probe.record["skipped"].append({"section": "timings", "mode": "compile", "reason": "smoke run"})
        return
    batch = probe.batches[-1]
    label = {"model": "encoder", "precision": "fp16", "mode": "compile", "batch": batch}
    probe.guard("timings", label, measure_model, probe, models["encoder"], spec.shape, "fp16", "compile", batch,
                need_s=150.0)


def stft_floor_cufft(probe: Probe, spec: FeatureSpec, xp) -> dict:
    """rfft of (batch * 598) x 512 zero-padded windowed frames + sign(x)|x|^0.3 on re and im."""
    rng = np.random.default_rng(0)
    clips = xp.asarray(rng.standard_normal((probe.floor_batch, spec.clip_samples)).astype(np.float32) * 0.1)
    starts = np.arange(spec.n_frames) * spec.hop_length
    index = xp.asarray(starts[:, None] + np.arange(spec.win_length)[None, :])
    window = xp.asarray((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(spec.win_length) / spec.win_length))
                        .astype(np.float32))

    def run():
        frames = clips[:, index] * window  # (batch, 598, 400)
        spectrum = xp.fft.rfft(frames, n=spec.n_fft, axis=-1)
        parts = xp.stack([spectrum.real, spectrum.imag], axis=-1)
        return xp.sign(parts) * xp.abs(parts) ** spec.power

    sync = (lambda: xp.cuda.Stream.null.synchronize()) if xp.__name__ == "cupy" else (lambda: None)
    saved, probe.sync = probe.sync, sync
    try:
        timing = probe.time_it(run)
    finally:
        probe.sync = saved
    return {**timing, "clips_per_s": probe.floor_batch / (timing["ms"] / 1000.0), "backend": xp.__name__}


def stft_floor_torch(probe: Probe, spec: FeatureSpec, impl: str) -> dict:
    clips = torch.randn(probe.floor_batch, spec.clip_samples, device=probe.device) * 0.1
    if impl == "conv_front_end":
        front_end = StftFrontEnd(spec).to(probe.device).eval()
        run = lambda: front_end(clips)  # noqa: E731
    else:
        window = torch.hann_window(spec.win_length, periodic=True, device=probe.device)

        def run():
            s = torch.stft(clips, spec.n_fft, spec.hop_length, spec.win_length, window, center=False,
                           return_complex=True)
            parts = torch.view_as_real(s)
            return torch.sign(parts) * parts.abs() ** spec.power

    with torch.no_grad():
        timing = probe.time_it(run)
    return {**timing, "clips_per_s": probe.floor_batch / (timing["ms"] / 1000.0)}


def run_stft_floors(probe: Probe, spec: FeatureSpec) -> None:
    if probe.smoke:
        xp = np
    else:
        import cupy as xp  # an ImportError is recorded by the guard below
    probe.guard("stft_floor", {"impl": "cupy_cufft" if not probe.smoke else "numpy_fft", "batch": probe.floor_batch},
                stft_floor_cufft, probe, spec, xp)
    for impl in ("torch_stft", "conv_front_end"):
        probe.guard("stft_floor", {"impl": impl, "batch": probe.floor_batch},
                    stft_floor_torch, probe, spec, impl)


def voice_clips(spec: FeatureSpec, count: int) -> np.ndarray:
    """`count` 6 s clips from the bundled voice sample (shifted and scaled copies)."""
    with wave.open(str(REPO / "assets" / "voice_sample.wav")) as w:
        if w.getsampwidth() != 2 or w.getframerate() != spec.sample_rate or w.getnchannels() != 1:
            raise ValueError("assets/voice_sample.wav is not 16-bit mono at the spec's rate")
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    audio = np.tile(audio, -(-2 * spec.clip_samples // audio.size))
    shifts = np.linspace(0, spec.clip_samples // 2, count).astype(int)
    gains = np.linspace(0.3, 1.0, count)
    return np.stack([g * audio[s:s + spec.clip_samples] for s, g in zip(shifts, gains)]).astype(np.float32)


def _min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=1).min())


def features_parity(probe: Probe, model_cpu, clips: np.ndarray, precision: str) -> dict:
    """Reduced precision vs FP32 (TF32 off) on the same inputs: min cosine over the batch."""
    import copy

    x = torch.from_numpy(clips).to(probe.device)
    reference_model = copy.deepcopy(model_cpu).to(probe.device)
    with _tf32(False), torch.no_grad():
        reference = _first_output(reference_model(x))
    out = _first_output(make_runner(copy.deepcopy(model_cpu).to(probe.device), x, precision, False)())
    return {"min_cosine": _min_cosine(out, reference), "max_abs": float((out.float() - reference).abs().max()),
            "finite": bool(torch.isfinite(out).all())}


class _tf32:
    """Context: TF32 for convs and matmuls on or off."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.on

    def __exit__(self, *exc):
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved


def front_end_parity(probe: Probe, spec: FeatureSpec, clips: np.ndarray, precision: str) -> dict:
    """Conv front end on the device vs the float64 NumPy reference (engine/features/reference.py)."""
    reference = np.stack([reference_features(c, spec) for c in clips])
    front_end = StftFrontEnd(spec).to(probe.device).eval()
    x = torch.from_numpy(clips).to(probe.device)
    if precision == "fp16":
        front_end, x = front_end.half(), x.half()
    with _tf32(precision == "tf32"), torch.no_grad():
        out = front_end(x)
    got = out.float().cpu().numpy()
    flat_ref, flat_got = reference.reshape(len(clips), -1), got.reshape(len(clips), -1)
    cos = (flat_ref * flat_got).sum(1) / (np.linalg.norm(flat_ref, axis=1) * np.linalg.norm(flat_got, axis=1))
    return {"max_abs": float(np.abs(got - reference).max()), "min_cosine": float(cos.min()),
            "finite": bool(np.isfinite(got).all())}


def builtin_parity(probe: Probe, clips: np.ndarray, precision: str) -> dict:
    """The built-in checkpoint's trained weights through the waveform graph: precision vs FP32."""
    from speech2face.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(REPO / "models" / "default" / "checkpoint.pt")
    graph = WaveformToFace(ckpt.feature_spec, ckpt.voice_encoder, ckpt.face_decoder).eval()
    return features_parity(probe, graph, clips, precision)


def run_parity(probe: Probe, models: dict, spec: FeatureSpec) -> None:
    clips = voice_clips(spec, 2 if probe.smoke else 8)
    for precision in ("fp32_tf32_off", "tf32", "fp16"):
        probe.guard("parity", {"what": "front_end_vs_reference", "precision": precision},
                    front_end_parity, probe, spec, clips, precision)
    for precision in PRECISIONS[1:] + ("fp32",):
        probe.guard("parity", {"what": "waveform_to_face_features", "precision": precision},
                    features_parity, probe, models["waveform_to_face"], clips, precision)
        probe.guard("parity", {"what": "builtin_checkpoint_features", "precision": precision},
                    builtin_parity, probe, clips, precision)


def print_table(record: dict) -> None:
    print(f"{'model':<18}{'precision':<14}{'mode':<12}{'batch':>6}{'ms':>10}{'clips/s':>12}")
    for t in record["timings"]:
        print(f"{t['model']:<18}{t['precision']:<14}{t['mode']:<12}{t['batch']:>6}{t['ms']:>10.3f}"
              f"{t['clips_per_s']:>12.1f}")
    for f in record["stft_floor"]:
        print(f"stft floor {f['impl']:<20} batch {f['batch']}: {f['ms']:.3f} ms, {f['clips_per_s']:.0f} clips/s")
    for p in record["parity"]:
        print(f"parity {p['what']:<28}{p['precision']:<14} min cos {p['min_cosine']:.6f}  max abs {p['max_abs']:.3g}")
    print(f"{len(record['errors'])} errors, {len(record['skipped'])} skipped, {record['wall_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where to write the JSON record")
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU, one iteration each")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip items once this is spent")
    args = parser.parse_args(argv)
    probe = Probe(args.smoke, args.budget_s)
    spec = FeatureSpec()
    probe.record["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    probe.record["env"] = environment(probe.device)
    models = build_models(args.smoke, spec)
    probe.record["models"] = {"encoder": models["encoder_config"].to_dict(),
                              "decoder": models["decoder_config"].to_dict(),
                              **voice_encoder.describe(models["encoder_config"])}
    probe.record["models"]["conv_out_shape"] = list(probe.record["models"]["conv_out_shape"])
    run_parity(probe, models, spec)
    run_stft_floors(probe, spec)
    run_timings(probe, models, spec)
    run_compile(probe, models, spec)
    probe.record["wall_s"] = time.perf_counter() - probe.start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(probe.record, indent=1, default=_json_default) + "\n")
    print_table(probe.record)
    return 0


def _json_default(value):
    return str(value)  # tuples of config values, dtypes: recorded as text


if __name__ == "__main__":
    sys.exit(main())
