"""TensorRT readiness without a GPU: operator audit and FP16 range audit of an ONNX graph.

Operator audit: every operator of a graph against ONNX-TensorRT's operator support matrix
(onnx/onnx-tensorrt docs/operators.md) of the TensorRT version the gpu target builds with,
TARGET_TENSORRT; the table below copies, for the operators our graphs use (and the STFT we
chose not to use), that matrix's types and restrictions, plus whether the TensorRT 8.5 matrix
already had the operator. Restrictions that a graph can break are checked on the graph itself.
An operator that is not in the table fails the audit: extend the table from the matrix first.

FP16 range audit: the largest |value| of every floating-point tensor of the FP32 graph on
given inputs, against FP16's largest finite value (65504); tensors the FP16 plan keeps in FP32
(the STFT front end) are reported but not held to it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

TARGET_TENSORRT = "10.15"
FP16_MAX = 65504.0
_F = "FP32, FP16"
_FB = "FP32, FP16, BF16"
_ALL = "FP32, FP16, BF16, INT32, INT64"

# op -> (types in the TARGET_TENSORRT matrix, restriction noted there, in the 8.5 matrix)
OPERATORS: dict[str, tuple[str, str, bool]] = {
    "Abs": (_ALL, "", True), "Add": (_ALL, "", True), "Sub": (_ALL, "", True),
    "Mul": (_ALL, "", True), "Div": (_ALL, "", True), "Pow": (_ALL, "", True),
    "Sign": (_ALL, "", True), "Relu": (_ALL, "", True), "Sigmoid": (_FB, "", True),
    "Clip": (_FB, "", True), "BatchNormalization": (_FB, "", True),
    "Cast": (_ALL + ", UINT8, BOOL", "UINT8 only as a network input or output", True),
    "Concat": (_ALL + ", BOOL", "", True), "Constant": (_ALL + ", BOOL", "", True),
    "ConstantOfShape": (_ALL + ", BOOL", "", True), "Shape": (_ALL + ", BOOL", "", True),
    "Reshape": (_ALL + ", BOOL", "", True), "Transpose": (_ALL + ", BOOL", "", True),
    "Flatten": (_ALL + ", BOOL", "", True), "Expand": (_ALL + ", BOOL", "", True),
    "Unsqueeze": (_ALL + ", BOOL", "`axes` must be a constant tensor", True),
    "Squeeze": (_ALL + ", BOOL", "`axes` must be an initializer", True),
    "Slice": (_ALL + ", BOOL", "", True), "Gather": (_ALL + ", BOOL", "", True),
    "Pad": (_ALL, "", True), "Conv": (_FB, "weights must be an initializer (8.5 matrix)", True),
    "ConvTranspose": (_FB, "weights must be an initializer (8.5 matrix)", True),
    "MaxPool": (_FB, "2D or 3D pooling only; `Indices` output unsupported", True),
    "Gemm": (_FB, "", True), "MatMul": (_FB, "", True),
    "ReduceMean": (_ALL, "`axes` must be an initializer", True),
    "ReduceL2": (_ALL, "`axes` must be an initializer", True),
    "ReduceSum": (_ALL, "`axes` must be an initializer", True),
    "Identity": (_ALL + ", BOOL", "", True),
    "GridSample": (_F, "input must be 4D; IGridSampleLayer (TensorRT >= 8.5)", True),
    "STFT": ("FP32", "`frame_step` and `window` must be initializers; real input (not in 8.5)", False),
}


@dataclasses.dataclass(frozen=True)
class OperatorFinding:
    op: str
    count: int
    types: str
    note: str
    problem: str          # "" when the graph meets the matrix

    @property
    def ok(self) -> bool:
        return not self.problem


def _constants(model: onnx.ModelProto) -> set[str]:
    names = {i.name for i in model.graph.initializer}
    return names | {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    return {v.name: len(v.type.tensor_type.shape.dim) for v in values if v.type.tensor_type.HasField("shape")}


def _node_problem(node: onnx.NodeProto, constants: set[str], ranks: dict[str, int], outputs: set[str]) -> str:
    """What in this node breaks a restriction of the matrix ("" if nothing)."""
    op = node.op_type
    if op in ("Conv", "ConvTranspose") and node.input[1] not in constants:
        return f"{node.name}: weights are not an initializer"
    if op in ("ReduceMean", "ReduceL2", "ReduceSum", "Unsqueeze", "Squeeze") and len(node.input) > 1 \
            and node.input[1] and node.input[1] not in constants:
        return f"{node.name}: axes are computed at run time"
    if op == "MaxPool" and (len(node.output) > 1 or ranks.get(node.input[0], 4) not in (4, 5)):
        return f"{node.name}: not a 2D/3D pooling without indices"
    if op == "GridSample" and ranks.get(node.input[0]) != 4:
        return f"{node.name}: input rank {ranks.get(node.input[0])}, TensorRT needs 4D"
    if op == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.UINT8 for a in node.attribute) \
            and node.output[0] not in outputs:
        return f"{node.name}: UINT8 inside the network (TensorRT allows it only as an input or output)"
    return ""


def audit_operators(model: onnx.ModelProto) -> list[OperatorFinding]:
    """One finding per operator type of the graph, in first-use order."""
    constants, ranks = _constants(model), _ranks(model)
    outputs = {o.name for o in model.graph.output}
    counts: dict[str, int] = {}
    problems: dict[str, list[str]] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
        problem = _node_problem(node, constants, ranks, outputs) if node.op_type in OPERATORS else ""
        if problem:
            problems.setdefault(node.op_type, []).append(problem)
    findings = []
    for op, count in counts.items():
        if op not in OPERATORS:
            findings.append(OperatorFinding(op, count, "?", "", f"{op} is not in the TensorRT {TARGET_TENSORRT} table"))
            continue
        types, note, in_8_5 = OPERATORS[op]
        note = note + ("" if in_8_5 else "; needs TensorRT newer than 8.5")
        findings.append(OperatorFinding(op, count, types, note, "; ".join(problems.get(op, []))))
    return findings


@dataclasses.dataclass(frozen=True)
class RangeFinding:
    largest: float        # over the tensors held to FP16
    tensor: str
    over: list[str]       # tensors held to FP16 whose |value| exceeds FP16_MAX
    fp32_largest: float   # over the tensors kept in FP32 (reported only)

    @property
    def ok(self) -> bool:
        return not self.over


def audit_fp16_range(model: onnx.ModelProto, feeds: dict[str, np.ndarray], keep_fp32: set[str] = frozenset(),
                     threads: int = 1) -> RangeFinding:
    """Runs the FP32 graph on `feeds` with every float tensor exposed; `keep_fp32`: node names
    whose outputs the FP16 build keeps in FP32."""
    import onnxruntime as ort

    inferred = onnx.shape_inference.infer_shapes(model)
    floats = [v for v in inferred.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    exposed = onnx.ModelProto()
    exposed.CopyFrom(inferred)
    known = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend(v for v in floats if v.name not in known)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    fp32_tensors = {o for n in model.graph.node if n.name in keep_fp32 for o in n.output}
    constants = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}  # weights, not activations
    largest, where, fp32_largest, over = 0.0, "", 0.0, []
    for name, value in zip(names, session.run(names, feeds)):
        if value.dtype.kind != "f" or value.size == 0 or name in constants:
            continue
        peak = float(np.abs(value).max())
        if name in fp32_tensors:
            fp32_largest = max(fp32_largest, peak)
            continue
        if peak > FP16_MAX:
            over.append(name)
        if peak > largest:
            largest, where = peak, name
    return RangeFinding(largest, where, over, fp32_largest)
