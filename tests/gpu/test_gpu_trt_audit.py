"""export/trt_audit.py on small graphs built to break each rule, and clean on what the gpu target ships
(the shipped graphs' audit runs in `s2f check`, tests/training/test_check.py)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from speech2face.export import trt_audit


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _float(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _problems(model) -> dict[str, str]:
    return {f.op: f.problem for f in trt_audit.audit_operators(model) if not f.ok}


def test_unknown_operator_fails():
    model = _model([helper.make_node("Hardmax", ["x"], ["y"])], [_float("x", [2, 3])], [_float("y", [2, 3])])
    assert "not in the TensorRT" in _problems(model)["Hardmax"]


def test_uint8_inside_the_network_fails_and_at_the_edge_passes():
    cast = helper.make_node("Cast", ["x"], ["u"], to=TensorProto.UINT8)
    inside = _model([cast, helper.make_node("Transpose", ["u"], ["y"], perm=[1, 0])], [_float("x", [2, 3])],
                    [helper.make_tensor_value_info("y", TensorProto.UINT8, [3, 2])])
    assert "UINT8" in _problems(inside)["Cast"]
    edge = _model([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
                   helper.make_node("Cast", ["t"], ["y"], to=TensorProto.UINT8)], [_float("x", [2, 3])],
                  [helper.make_tensor_value_info("y", TensorProto.UINT8, [3, 2])])
    assert _problems(edge) == {}


def test_conv_weights_computed_at_run_time_fail():
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"])], [_float("x", [1, 1, 8]), _float("w", [2, 1, 3])],
                   [_float("y", [1, 2, 6])])
    assert "initializer" in _problems(model)["Conv"]
    weights = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 3], np.ones(6, np.float32))
    fixed = _model([helper.make_node("Conv", ["x", "w"], ["y"])], [_float("x", [1, 1, 8])], [_float("y", [1, 2, 6])],
                   [weights])
    assert _problems(fixed) == {}


def test_grid_sample_needs_4d_and_stft_is_flagged_as_newer():
    grid = _model([helper.make_node("GridSample", ["x", "g"], ["y"])],
                  [_float("x", [1, 1, 2, 4, 4]), _float("g", [1, 2, 4, 4, 3])], [_float("y", [1, 1, 2, 4, 4])])
    assert "4D" in _problems(grid)["GridSample"]
    op = {f.op: f for f in trt_audit.audit_operators(_model(
        [helper.make_node("STFT", ["x", "s"], ["y"])], [_float("x", [1, 512, 1])], [_float("y", None)],
        [helper.make_tensor("s", TensorProto.INT64, [], [160])]))}
    assert "newer than 8.5" in op["STFT"].note


def test_fp16_range_finds_overflow_and_spares_fp32_islands():
    scale = helper.make_tensor("k", TensorProto.FLOAT, [], [1e5])
    nodes = [helper.make_node("Mul", ["x", "k"], ["big"], name="front_end/scale"),
             helper.make_node("Div", ["big", "k"], ["y"], name="rest")]
    model = _model(nodes, [_float("x", [4])], [_float("y", [4])], [scale])
    feeds = {"x": np.array([1.0, -2.0, 0.5, 0.0], np.float32)}
    found = trt_audit.audit_fp16_range(model, feeds)
    assert not found.ok and found.over == ["big"] and found.largest == 2e5
    spared = trt_audit.audit_fp16_range(model, feeds, keep_fp32={"front_end/scale"})
    assert spared.ok and spared.fp32_largest == 2e5 and spared.largest == 2.0
