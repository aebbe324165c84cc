"""Conv-STFT front end vs ONNX's STFT operator, on ONNX Runtime CPU: same features, which is faster.

    .venv/bin/python benchmarks/studies/stft_choice.py [--batch 8] [--repeats 20]

The STFT operator has no zero-padding of the window to the FFT size, so the 512-point DFT of a
400-sample window is frame_length 512 with the Hann window zero-padded to 512, after padding the
clip with 112 zeros (else the last of the 598 frames would end past the clip).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.engine.features.reference import periodic_hann, reference_features
from speech2face.engine.runtime.onnx_runner import open_session
from speech2face.export.waveform_graph import front_end_onnx


def stft_op_graph(spec: FeatureSpec) -> onnx.ModelProto:
    window = np.zeros(spec.n_fft, np.float32)
    window[:spec.win_length] = periodic_hann(spec.win_length)
    pad = spec.n_fft - spec.win_length
    inits = [helper.make_tensor("window", TensorProto.FLOAT, [spec.n_fft], window),
             helper.make_tensor("step", TensorProto.INT64, [], [spec.hop_length]),
             helper.make_tensor("pads", TensorProto.INT64, [4], [0, 0, 0, pad]),
             helper.make_tensor("p", TensorProto.FLOAT, [], [spec.power]),
             helper.make_tensor("axes", TensorProto.INT64, [1], [2])]
    nodes = [helper.make_node("Pad", ["clip", "pads"], ["padded"]),
             helper.make_node("Unsqueeze", ["padded", "axes"], ["signal"]),
             helper.make_node("STFT", ["signal", "step", "window"], ["X"], onesided=1),
             helper.make_node("Sign", ["X"], ["s"]), helper.make_node("Abs", ["X"], ["a"]),
             helper.make_node("Pow", ["a", "p"], ["m"]), helper.make_node("Mul", ["s", "m"], ["spectrogram"])]
    clip = helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["batch", spec.clip_samples])
    out = helper.make_tensor_value_info("spectrogram", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "stft_op", [clip], [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    spec = FeatureSpec()
    clips = (np.random.default_rng(0).standard_normal((args.batch, spec.clip_samples)) * 0.1).astype(np.float32)
    reference = np.stack([reference_features(c, spec) for c in clips])
    for name, model in (("conv", front_end_onnx(spec)), ("stft_op", stft_op_graph(spec))):
        path = Path(tempfile.mkdtemp()) / f"{name}.onnx"
        onnx.save(model, str(path))
        session = open_session(path, 1)
        out = session.run(None, {"clip": clips})[0]
        session.run(None, {"clip": clips})
        start = time.perf_counter()
        for _ in range(args.repeats):
            session.run(None, {"clip": clips})
        ms = 1000 * (time.perf_counter() - start) / args.repeats
        print(f"{name:8s} batch {args.batch}: {ms:8.2f} ms  max |err| vs reference {np.abs(out - reference).max():.2e}")


if __name__ == "__main__":
    main()
