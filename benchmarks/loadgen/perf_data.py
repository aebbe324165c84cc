"""perf_analyzer's `--input-data` files from real clips, in the contract's tensor names.

    samples.json  {"data": [{"AUDIO": {"content": [...], "shape": [n]},
                             "SAMPLE_RATE": {"content": [rate], "shape": [1]}}, ...]}
    files.json    {"data": [{"AUDIO_FILE": {"b64": "...", "shape": [1]}}, ...]}

One entry per clip; perf_analyzer sends them in turn. Shapes leave out the batch axis (perf_analyzer
adds it, `-b`). A "b64" value is sent as the tensor's raw bytes, and a BYTES tensor's raw form is
each element preceded by its length (4 bytes, little-endian), so a file goes in with that prefix.
`samples.json` serves `speech2face_samples` (and `speech2face`), `files.json` `speech2face_file`.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np

from speech2face.engine import contract
from speech2face.engine.contract.audio_files import AudioFileError, read_audio

SAMPLES_FILE, FILES_FILE = "samples.json", "files.json"


def length_prefixed(data: bytes) -> bytes:
    """One BYTES element as Triton serializes it: uint32 little-endian length, then the bytes."""
    return struct.pack("<I", len(data)) + data


def samples_entry(audio: np.ndarray, rate: int) -> dict:
    audio = np.asarray(audio, dtype=contract.AUDIO.numpy_dtype).reshape(-1)
    return {contract.AUDIO.name: {"content": audio.tolist(), "shape": [audio.size]},
            contract.SAMPLE_RATE.name: {"content": [int(rate)], "shape": list(contract.SAMPLE_RATE.dims)}}


def file_entry(data: bytes) -> dict:
    return {contract.AUDIO_FILE.name: {"b64": base64.b64encode(length_prefixed(data)).decode("ascii"),
                                       "shape": list(contract.AUDIO_FILE.dims)}}


def _file_bytes(path: Path) -> bytes:
    """The file as the server will get it, once its format is known to be one AUDIO_FILE takes."""
    import soundfile

    try:
        kind = soundfile.info(str(path)).format
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioFileError(f"{path}: not a readable audio file ({error})") from None
    if kind not in contract.AUDIO_FILE_FORMATS:
        raise AudioFileError(f"{path}: {kind} files are not taken by {contract.AUDIO_FILE.name} "
                             f"(only {', '.join(contract.AUDIO_FILE_FORMATS)})")
    return path.read_bytes()


def write_perf_data(clips: list[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Writes samples.json (each clip decoded to mono float32 at its own rate) and files.json (each
    file's bytes as they are) into `out_dir`; returns {"samples": path, "files": path}."""
    if not clips:
        raise ValueError("no clips given")
    samples, files = [], []
    for clip in map(Path, clips):
        samples.append(samples_entry(*read_audio(clip)))
        files.append(file_entry(_file_bytes(clip)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"samples": out / SAMPLES_FILE, "files": out / FILES_FILE}
    paths["samples"].write_text(json.dumps({"data": samples}))
    paths["files"].write_text(json.dumps({"data": files}))
    return paths
