"""`s2f train --data DIR` end to end, offline: a folder made by `s2f data` from media made here
trains the three stages (tiny presets, one epoch) into a checkpoint and a servable ONNX bundle,
with the small face encoder or with VGG-Face weights imported from the formats people have."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data_prep_media import prepared_avspeech
from speech2face.engine.cli.main import main
from speech2face.training.networks.face_encoder import VGGFaceEncoder
from speech2face.training.networks.vgg_face_import import CONV_NAMES, FC_NAMES, _target_names, import_vgg_face


def _s2f(*argv):
    return main(list(argv))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_avspeech(tmp_path_factory.mktemp("corpus"), identities=4)


def _narrow_vgg_face(seed=0):
    """A VGG-Face of 1/16 the published width (same layers and layout), random weights."""
    torch.manual_seed(seed)
    return VGGFaceEncoder(n_identities=10, width=1 / 16).eval()


def _as_dag_state_dict(model, path):
    names, state = _target_names(model), model.state_dict()
    torch.save({f"{n}.{p}": state[f"{names[n]}.{p}"] for n in names for p in ("weight", "bias")}, path)
    return path


def _as_matconvnet(model, path):
    """MatConvNet simplenn: `net.layers`, each {name, type, weights {H x W x Cin x Cout filters, biases}};
    fc6-fc8 as 7x7 / 1x1 convolutions; a ReLU between layers, as in the release."""
    from scipy.io import savemat

    def cell(*items):
        array = np.empty(len(items), dtype=object)
        array[:] = list(items)
        return array

    names, state, layers = _target_names(model), model.state_dict(), []
    for name in CONV_NAMES + FC_NAMES:
        weight, bias = state[f"{names[name]}.weight"].numpy(), state[f"{names[name]}.bias"].numpy()
        if name in FC_NAMES:
            side = 7 if name == "fc6" else 1
            weight = weight.reshape(weight.shape[0], -1, side, side)
        layers += [{"name": name, "type": "conv", "weights": cell(weight.transpose(2, 3, 1, 0), bias[None])},
                   {"name": f"relu_{name}", "type": "relu", "weights": cell()}]
    savemat(path, {"net": {"layers": cell(*layers)}})
    return path


@pytest.mark.parametrize("writer", [_as_dag_state_dict, _as_matconvnet], ids=["vgg_face_dag.pth", "vgg_face.mat"])
def test_vgg_face_import_reproduces_the_network(writer, tmp_path):
    model = _narrow_vgg_face()
    path = writer(model, tmp_path / ("vgg_face_dag.pth" if writer is _as_dag_state_dict else "vgg_face.mat"))
    imported = import_vgg_face(path)
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        (f_ref, logits_ref), (f_new, logits_new) = model(images), imported(images)
    assert imported.feature_dim == 256 and logits_new.shape == (2, 10)
    assert torch.equal(f_ref, f_new) and torch.equal(logits_ref, logits_new)   # same float32 arithmetic


def test_vgg_face_import_names_a_wrong_file(tmp_path):
    state = {f"{n}.{p}": torch.zeros(1) for n in CONV_NAMES for p in ("weight", "bias")}
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="not VGG-Face weights"):
        import_vgg_face(tmp_path / "partial.pth")
    path = _as_dag_state_dict(_narrow_vgg_face(), tmp_path / "v.pth")
    state = torch.load(path)
    state["fc7.weight"] = state["fc7.weight"][:, :10]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"fc7 weight has shape \(256, 10\)"):
        import_vgg_face(path)


def test_train_on_a_prepared_folder_end_to_end(prepared, tmp_path, capsys):
    from speech2face.engine.contract.bundle import load_bundle
    from speech2face.engine.runtime.local_runtime import LocalRuntime
    from speech2face.training.checkpoint import load_checkpoint

    out = tmp_path / "model"
    assert _s2f("train", "--data", str(prepared), "--out", str(out), "--epochs", "1", "--batch-size", "4") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["identities"] == 4 and summary["clips"] == 8
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.feature_spec.resampler == "soxr_hq" and checkpoint.face_decoder.config.n_landmarks == 68
    assert checkpoint.provenance["train_options"]["face_encoder"] == "small"
    result = LocalRuntime(load_bundle(out)).infer(np.zeros(44100, np.float32) + 0.01, 44100)
    assert result.image.shape[-1] == 3 and np.linalg.norm(result.feature) == pytest.approx(1.0, abs=1e-4)


def test_train_with_imported_vgg_face(prepared, tmp_path):
    from speech2face.training.checkpoint import load_checkpoint

    weights = _as_matconvnet(_narrow_vgg_face(), tmp_path / "vgg_face.mat")
    out = tmp_path / "model"
    assert _s2f("train", "--data", str(prepared), "--out", str(out), "--epochs", "1", "--batch-size", "4",
                "--face-encoder", "vgg-face", "--vgg-face-weights", str(weights), "--no-export") == 0
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.voice_encoder.config.feature_dim == 256 == checkpoint.face_decoder.config.feature_dim
    assert checkpoint.face_encoder is None and not (out / "model.json").exists()


def test_train_without_a_prepared_folder_is_one_clear_line(tmp_path, capsys):
    assert _s2f("train", "--data", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "no manifest.json" in err and err.count("\n") == 1
