"""Serving graphs: an ONNX graph with its tensors renamed to the Triton names of engine/contract/tensors.py.

So tensorrt_plan and onnxruntime_onnx models need no Python glue: inputs and outputs carry the
contract's names, outputs nobody serves are dropped (the decoder's landmarks), every shape is
pinned to [batch, *contract dims], and the graph is made TensorRT-friendly where our exporter
is not (the uint8 cast moves to the network's edge).
"""

from __future__ import annotations

from pathlib import Path

import onnx

from speech2face.engine.contract.tensors import Tensor
from speech2face.export import tensorrt_build

MIN_OPSET = 17


def serving_graph(source: str | Path | onnx.ModelProto, inputs: list[tuple[str, Tensor]],
                  outputs: list[tuple[str, Tensor]]) -> onnx.ModelProto:
    """The ONNX at `source` with inputs/outputs renamed to the contract tensors they carry (pairs of
    ONNX name and contract Tensor), other outputs dropped, shapes pinned to [batch, *dims]."""
    model = onnx.load(str(source)) if not isinstance(source, onnx.ModelProto) else source
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise ValueError(f"{source}: opset {opset}; the gpu target needs opset >= {MIN_OPSET}")
    rename = {name: tensor.name for name, tensor in (*inputs, *outputs)}
    graph = model.graph
    internal = {n for node in graph.node for n in (*node.input, *node.output)}
    clashes = (set(rename.values()) & internal) - set(rename)
    if clashes:
        raise ValueError(f"{source}: contract names {sorted(clashes)} already name tensors in the graph")
    by_name = {o.name: o for o in graph.output}
    missing = [name for name, _ in outputs if name not in by_name] + [
        name for name, _ in inputs if name not in {i.name for i in graph.input}]
    if missing:
        raise ValueError(f"{source}: no graph tensors named {missing}")
    kept = [by_name[name] for name, _ in outputs]
    del graph.output[:]
    graph.output.extend(kept)
    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for value in graph.value_info:
        value.name = rename.get(value.name, value.name)
    for value, tensor in [*((i, t) for i in graph.input for n, t in inputs if i.name == n),
                          *((o, t) for o in graph.output for n, t in outputs if o.name == n)]:
        value.name = tensor.name
        shape = value.type.tensor_type.shape
        del shape.dim[:]
        shape.dim.add().dim_param = "batch"
        for d in tensor.dims:
            shape.dim.add().dim_value = d
    _cast_to_uint8_last(model)
    onnx.checker.check_model(model, full_check=True)
    tensorrt_build.check_onnx_contract(model, [t for _, t in inputs], [t for _, t in outputs])
    return model


def _cast_to_uint8_last(model: onnx.ModelProto) -> None:
    """TensorRT allows UINT8 only as a network input or output, and the decoder casts its image to
    uint8 before the HWC transpose (to_uint8_image): Cast(u8) -> Transpose -> output becomes
    Transpose -> Cast(u8) -> output (the same values; found by export/trt_audit.py)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    for cast in graph.node:
        to = next((a.i for a in cast.attribute if a.name == "to"), None)
        after = users.get(cast.output[0], [])
        if (cast.op_type != "Cast" or to != onnx.TensorProto.UINT8 or cast.output[0] in outputs
                or len(after) != 1 or after[0].op_type != "Transpose" or after[0].output[0] not in outputs):
            continue
        transpose = after[0]
        source, moved, final = cast.input[0], cast.output[0], transpose.output[0]
        transpose.input[0], transpose.output[0] = source, moved
        cast.input[0], cast.output[0] = moved, final
        nodes = [n for n in graph.node if n is not cast] + [cast]  # keep topological order
        del graph.node[:]
        graph.node.extend(nodes)
        for value in graph.value_info:
            if value.name == moved:
                value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
