"""FP16 variants of the exported ONNX graphs, and the parity check that accepts them.

The conversion uses `onnxconverter-common` (`float16.convert_float_to_float16`) with the graph's
inputs and outputs kept in their original types (`keep_io_types`), so the fp16 graph has exactly
the serving contract of the fp32 one (engine/contract/tensors.py) and Triton configs do not change.

Two parts of our graphs stay in fp32 on purpose:

- the *post-processing tail*: every node downstream of a graph output that is also consumed inside
  the graph (the voice encoder's L2 normalisation of `feature`, the face decoder's warp that reads
  `landmarks`). A sum of squares in fp16 overflows at 65504, and the converter mishandles an output
  that is also an internal input (it feeds the fp32 copy of the output to fp16 nodes);
- reductions and sampling (`FP32_ONLY_OPS`): a mean over ~600 time steps and grid coordinates
  are where fp16 loses most.

Tolerances (fp16 ONNX vs fp32 ONNX, both on ORT CPU, same inputs; `Fp16Tolerance`): face feature
cosine similarity >= 0.999 for every row (raw and normalised), decoded image at most 8 uint8
levels apart anywhere and at most 1 level on average (fp16 rounding flips many pixels by one
level; the built-in model measures max 1, mean 0.26).

What the CPU check measures: ONNX Runtime's CPU provider has fp16 kernels for few operators and
runs the others in fp32 between inserted casts, so on CPU the check covers fp16 weights and fp16
activations at operator boundaries, not fp16 accumulation inside GPU kernels. The TensorRT tests
(tests/gpu/test_tensorrt.py, GPU only) measure the engine itself.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

# Ops kept in fp32 in the fp16 ONNX (numerically fragile in fp16). The TensorRT build does not use
# the fp16 ONNX: it builds from the fp32 ONNX with the FP16 builder flag and lets TensorRT choose.
FP32_ONLY_OPS = ("GridSample", "ReduceL2", "ReduceMean")


@dataclasses.dataclass(frozen=True)
class Fp16Tolerance:
    """What an fp16 graph must achieve against its fp32 twin."""

    feature_min_cosine: float = 0.999     # per row, raw and normalised feature
    image_max_levels: int = 8             # max |difference| of uint8 pixels
    image_mean_levels: float = 1.0        # mean |difference| of uint8 pixels


def _tail_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes downstream of a graph output that is also an internal input."""
    outputs = {o.name for o in model.graph.output}
    tainted = set(outputs)
    blocked: list[str] = []
    for node in model.graph.node:  # ONNX nodes are topologically sorted
        if any(name in tainted for name in node.input):
            blocked.append(node.name)
            tainted.update(node.output)
    # Constants that feed only blocked nodes stay fp32 too (e.g. a 1e-12 clip floor).
    blocked_set = set(blocked)
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            users = consumers.get(node.output[0], [])
            if users and all(u in blocked_set for u in users):
                blocked.append(node.name)
    return blocked


def _split_shared_initializers(model: onnx.ModelProto, blocked: set[str]) -> None:
    """Gives fp32-kept nodes their own copy of an initializer that fp16 nodes also read (the
    converter would otherwise type one tensor two ways, e.g. the decoder's mean landmarks)."""
    initializers = {i.name: i for i in model.graph.initializer}
    users: dict[str, set[bool]] = {}
    for node in model.graph.node:
        for name in node.input:
            if name in initializers:
                users.setdefault(name, set()).add(node.name in blocked)
    for name, kinds in users.items():
        if kinds != {True, False}:
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(initializers[name])
        copy.name = f"{name}__fp32"
        model.graph.initializer.append(copy)
        for node in model.graph.node:
            if node.name in blocked:
                node.input[:] = [copy.name if i == name else i for i in node.input]


def _restore_io_types(original: onnx.ModelProto, converted: onnx.ModelProto) -> None:
    """`keep_io_types` misses outputs produced by fp32-kept nodes (it casts them to fp16): point
    such final Casts back at the original type, so the contract is unchanged."""
    wanted = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    producers = {out: node for node in converted.graph.node for out in node.output}
    for output in converted.graph.output:
        elem_type = wanted[output.name]
        if output.type.tensor_type.elem_type == elem_type:
            continue
        node = producers.get(output.name)
        if node is None or node.op_type != "Cast":
            raise ValueError(f"fp16 conversion changed the type of output {output.name!r}")
        for attribute in node.attribute:
            if attribute.name == "to":
                attribute.i = elem_type
        output.type.tensor_type.elem_type = elem_type


def _drop_round_trip_casts(converted: onnx.ModelProto, fp32_tensors: set[str]) -> None:
    """Removes Cast(fp16) -> Cast(fp32) pairs on tensors that are fp32 already (the converter puts
    them between two fp32-kept nodes; they would flush a 1e-12 clip floor to zero)."""
    nodes = list(converted.graph.node)
    fp32_tensors = set(fp32_tensors) | {
        node.output[0] for node in nodes if node.op_type == "Constant" and any(
            a.name == "value" and a.t.data_type == onnx.TensorProto.FLOAT for a in node.attribute)}
    producers = {out: node for node in nodes for out in node.output}
    to = {node.name: next((a.i for a in node.attribute if a.name == "to"), None) for node in nodes}
    rename: dict[str, str] = {}
    drop: set[str] = set()
    for node in nodes:
        if node.op_type != "Cast" or to[node.name] != onnx.TensorProto.FLOAT:
            continue
        first = producers.get(node.input[0])
        if (first is not None and first.op_type == "Cast" and to[first.name] == onnx.TensorProto.FLOAT16
                and first.input[0] in fp32_tensors):
            rename[node.output[0]] = first.input[0]
            drop.add(node.name)
    if not rename:
        return
    graph_outputs = {o.name for o in converted.graph.output}
    if graph_outputs & set(rename):
        return  # never rename a contract tensor
    kept = [n for n in nodes if n.name not in drop]
    for node in kept:
        node.input[:] = [rename.get(i, i) for i in node.input]
    used = {i for n in kept for i in n.input} | graph_outputs
    kept = [n for n in kept if not (n.op_type == "Cast" and to[n.name] == onnx.TensorProto.FLOAT16
                                    and n.output[0] not in used)]
    del converted.graph.node[:]
    converted.graph.node.extend(kept)


def _ensure_node_names(model: onnx.ModelProto) -> None:
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"_s2f_node_{i}"


def to_fp16(model: onnx.ModelProto, keep_fp32_nodes: list[str] = ()) -> onnx.ModelProto:
    """An fp16 copy of `model` with fp32 inputs/outputs (same contract) and an fp32 tail;
    `keep_fp32_nodes` (node names) stay fp32 too (the waveform graph's STFT front end)."""
    from onnxconverter_common import float16  # export-time dependency only

    model = onnx.ModelProto.FromString(model.SerializeToString())
    _ensure_node_names(model)
    tail = _tail_nodes(model) + list(keep_fp32_nodes)
    _split_shared_initializers(model, set(tail))
    with warnings.catch_warnings():
        # "the float32 number 1e-12 will be truncated to 1e-07": expected for tiny constants.
        warnings.simplefilter("ignore", UserWarning)
        converted = float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST) + list(FP32_ONLY_OPS),
            node_block_list=tail,
        )
    _restore_io_types(model, converted)
    blocked = set(tail)
    fp32_tensors = {out for node in model.graph.node if node.name in blocked for out in node.output}
    _drop_round_trip_casts(converted, fp32_tensors)
    onnx.checker.check_model(converted)
    return converted


def write_fp16(source: str | Path, target: str | Path, keep_fp32_nodes: list[str] = ()) -> Path:
    """Converts the ONNX file at `source` and writes it atomically to `target`."""
    source, target = Path(source), Path(target)
    converted = to_fp16(onnx.load(str(source)), keep_fp32_nodes)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        onnx.save(converted, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@dataclasses.dataclass(frozen=True)
class Fp16Parity:
    feature_min_cosine: float
    normalized_min_cosine: float
    image_max_levels: int
    image_mean_levels: float
    tolerance: Fp16Tolerance

    @property
    def ok(self) -> bool:
        t = self.tolerance
        return (self.feature_min_cosine >= t.feature_min_cosine
                and self.normalized_min_cosine >= t.feature_min_cosine
                and self.image_max_levels <= t.image_max_levels
                and self.image_mean_levels <= t.image_mean_levels)


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)


def check_fp16_parity(encoder32: Path, encoder16: Path, decoder32: Path, decoder16: Path,
                      spectrograms: np.ndarray, tolerance: Fp16Tolerance = Fp16Tolerance(),
                      threads: int = 1) -> Fp16Parity:
    """Runs both precisions on ORT CPU. Tensors are taken by position (encoder: raw feature, then
    normalised; decoder: image first), so bundle graphs and serving graphs (contract names) both
    work. Both decoders see the fp32 encoder's raw feature: each graph's error is measured alone."""
    from speech2face.engine.runtime.onnx_runner import open_session

    enc32, enc16 = open_session(encoder32, threads), open_session(encoder16, threads)
    dec32, dec16 = open_session(decoder32, threads), open_session(decoder16, threads)

    def run(session, array):
        names = [o.name for o in session.get_outputs()]
        return session.run(names, {session.get_inputs()[0].name: array})

    raw32, norm32 = run(enc32, spectrograms.astype(np.float32))[:2]
    raw16, norm16 = run(enc16, spectrograms.astype(np.float32))[:2]
    image32, image16 = run(dec32, raw32)[0], run(dec16, raw32)[0]
    diff = np.abs(image32.astype(np.int16) - image16.astype(np.int16))
    return Fp16Parity(float(_cosine_rows(raw32, raw16).min()), float(_cosine_rows(norm32, norm16).min()),
                      int(diff.max()), float(diff.mean()), tolerance)
