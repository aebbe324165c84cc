"""One ONNX graph from the 16 kHz clip to the face: conv-STFT front end + voice encoder + decoder.

The front end is export/frontend.py's StftFrontEnd exported on its own; the encoder and decoder
are the bundle's own ONNX files, joined with `onnx.compose`, so the graph computes exactly what
the bundle serves, with the FeatureSpec's features computed inside it. Inputs and outputs carry
the ONNX names of engine/contract/tensors.py (`clip` -> `feature_normalized`, `image`); the gpu repository
renames them to the Triton names.

The FP16 twin keeps the front end (Conv, Sign, Abs, Pow) in FP32: near zero sign(x)|x|^0.3 turns
an FP16 rounding error of 1e-3 in X into 0.13 in the feature (measured: max 0.26 with an FP16
front end, 0.002 in FP32), while the front end is ~0.1 % of the network's FLOPs.
"""

from __future__ import annotations

import io

import onnx
import onnx.compose

from speech2face.engine import contract
from speech2face.engine.contract.bundle import ModelBundle
from speech2face.engine.contract.feature_spec import FeatureSpec

OPSET = 18
FRONT_END_PREFIX = "front_end/"
DECODER_PREFIX = "decoder/"
OUTPUTS = (contract.ONNX_ENCODER_OUTPUTS[1], DECODER_PREFIX + contract.ONNX_DECODER_OUTPUTS[0])


def front_end_onnx(spec: FeatureSpec) -> onnx.ModelProto:
    """StftFrontEnd as ONNX: input `clip` (batch, clip_samples), output `spectrogram` (batch, *spec.shape)."""
    import torch

    from speech2face.export.frontend import StftFrontEnd

    buffer = io.BytesIO()
    names = {"input_names": [contract.ONNX_CLIP_INPUT], "output_names": [contract.ONNX_ENCODER_INPUT]}
    torch.onnx.export(StftFrontEnd(spec).eval(), (torch.zeros(2, spec.clip_samples),), buffer, dynamo=False,
                      opset_version=OPSET, do_constant_folding=True,
                      dynamic_axes={n[0]: {0: "batch"} for n in names.values()}, **names)
    return onnx.load_from_string(buffer.getvalue())


def _same_versions(model: onnx.ModelProto, like: onnx.ModelProto) -> onnx.ModelProto:
    """onnx.compose needs equal IR and opset versions; every part here is exported at opset 18."""
    ours = {o.domain: o.version for o in model.opset_import}
    theirs = {o.domain: o.version for o in like.opset_import}
    if ours.get("", 0) != theirs.get("", 0):
        raise ValueError(f"opset {ours.get('')} vs {theirs.get('')}: re-export the bundle at opset {OPSET}")
    model.ir_version = like.ir_version
    return model


def waveform_graph(bundle: ModelBundle) -> onnx.ModelProto:
    """clip -> (feature_normalized, decoder/image): the bundle's two graphs behind the front end."""
    encoder = onnx.load(str(bundle.voice_encoder))
    decoder = onnx.compose.add_prefix(onnx.load(str(bundle.face_decoder)), DECODER_PREFIX)
    front = onnx.compose.add_prefix(_same_versions(front_end_onnx(bundle.feature_spec), encoder),
                                    FRONT_END_PREFIX, rename_inputs=False)
    front_output = FRONT_END_PREFIX + contract.ONNX_ENCODER_INPUT
    joined = onnx.compose.merge_models(front, encoder, io_map=[(front_output, contract.ONNX_ENCODER_INPUT)],
                                       outputs=list(contract.ONNX_ENCODER_OUTPUTS))
    decoder_input = DECODER_PREFIX + contract.ONNX_DECODER_INPUT
    joined = onnx.compose.merge_models(_same_versions(joined, decoder), decoder,
                                       io_map=[(contract.ONNX_ENCODER_OUTPUTS[0], decoder_input)],
                                       outputs=list(OUTPUTS))
    onnx.checker.check_model(joined, full_check=True)
    return joined


def front_end_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the front end's nodes in a waveform graph (kept FP32 in the FP16 twin)."""
    return [node.name for node in model.graph.node if node.name.startswith(FRONT_END_PREFIX)]


def check_fp16_parity(fp32_path, fp16_path, clips, tolerance=None, threads: int = 1):
    """The FP16 twin against the FP32 graph on ONNX Runtime CPU, on 16 kHz clips (batch, samples):
    feature cosine per row and uint8 image levels, as fp16.Fp16Parity (the graph serves only the
    normalised feature, so both cosine fields hold its cosine)."""
    import numpy as np

    from speech2face.engine.runtime.onnx_runner import open_session
    from speech2face.export import fp16

    def run(path):
        session = open_session(path, threads)
        return session.run(None, {session.get_inputs()[0].name: np.asarray(clips, np.float32)})

    (feature32, image32), (feature16, image16) = run(fp32_path), run(fp16_path)
    cosine = float(fp16._cosine_rows(feature32, feature16).min())
    diff = np.abs(image32.astype(np.int16) - image16.astype(np.int16))
    return fp16.Fp16Parity(cosine, cosine, int(diff.max()), float(diff.mean()), tolerance or fp16.Fp16Tolerance())
