"""`s2f perf-data`: perf_analyzer's --input-data files, checked against the serving contract."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
import soundfile

from speech2face.benchmarks.loadgen.perf_data import length_prefixed, write_perf_data
from speech2face.engine import contract
from speech2face.engine.cli.main import main
from speech2face.engine.contract.audio_files import read_audio
from speech2face.engine.runtime.builtin import SAMPLE_VOICE


@pytest.fixture
def clips(tmp_path):
    """The bundled WAV and a 22.05 kHz stereo FLAC: two entries, two rates."""
    flac = tmp_path / "stereo.flac"
    t = np.arange(22050 * 2) / 22050
    soundfile.write(flac, np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1) * 0.3, 22050,
                    subtype="PCM_16")
    return [SAMPLE_VOICE, flac]


def _entries(clips, tmp_path, kind: str, model: str) -> list[dict]:
    """The written file's entries: one per clip, each filling every input `model` declares."""
    entries = json.loads(write_perf_data(clips, tmp_path / "out")[kind].read_text())["data"]
    assert len(entries) == len(clips)
    assert all(list(entry) == [t.name for t in contract.MODEL_INPUTS[model]] for entry in entries)
    return entries


def test_samples_json_fills_every_input_of_the_samples_model(clips, tmp_path):
    entries = _entries(clips, tmp_path, "samples", contract.SAMPLES_MODEL)
    for entry, clip in zip(entries, clips):
        audio, rate = read_audio(clip)
        samples = entry[contract.AUDIO.name]
        assert samples["shape"] == [audio.size] == [len(samples["content"])]   # no batch axis: perf_analyzer adds it
        np.testing.assert_array_equal(np.array(samples["content"], contract.AUDIO.numpy_dtype), audio)
        assert entry[contract.SAMPLE_RATE.name] == {"content": [rate], "shape": list(contract.SAMPLE_RATE.dims)}


def test_files_json_is_each_file_length_prefixed_as_triton_serializes_bytes(clips, tmp_path):
    from tritonclient.utils import serialize_byte_tensor

    entries = _entries(clips, tmp_path, "files", contract.FILE_MODEL)
    for entry, clip in zip(entries, clips):
        value = entry[contract.AUDIO_FILE.name]
        assert value["shape"] == list(contract.AUDIO_FILE.dims)
        raw = base64.b64decode(value["b64"])
        (length,) = struct.unpack("<I", raw[:4])
        assert length == len(raw) - 4 and raw[4:] == clip.read_bytes()
        assert raw == length_prefixed(clip.read_bytes())
        assert raw == serialize_byte_tensor(np.array([clip.read_bytes()], dtype=object)).item()


def test_the_command_writes_both_files_from_the_bundled_voice(tmp_path, capsys):
    assert main(["perf-data", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"samples.json", "files.json"}
    assert contract.SAMPLES_MODEL in capsys.readouterr().out
    files = json.loads((tmp_path / "files.json").read_text())["data"]
    assert base64.b64decode(files[0][contract.AUDIO_FILE.name]["b64"])[4:] == SAMPLE_VOICE.read_bytes()


def test_a_file_that_is_no_audio_is_refused_by_name(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"not audio at all")
    assert main(["perf-data", "--out", str(tmp_path / "out"), "--audio", str(bad)]) == 2
    assert "notes.wav" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
