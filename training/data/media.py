"""ffmpeg for the corpus preparers: cut a clip's audio, grab one video frame.

ffmpeg is the system one when installed, else the static build inside the `imageio-ffmpeg` wheel
(the `data` extra), so `pip install speech2face[data]` is enough on any x86-64 Linux. Audio is
decoded by ffmpeg at its own rate and brought to 16 kHz by the FeatureSpec's resampler (soxr HQ,
as librosa), not by ffmpeg's, so prepared clips match what the model sees when served.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np


class MediaError(RuntimeError):
    """A file ffmpeg could not read; the message names the file and ffmpeg's reason."""


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaError("ffmpeg is needed to read video and m4a files: install it (apt-get install ffmpeg) "
                         "or `pip install 'speech2face[data]'` (ships a static ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str], source: Path) -> bytes:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args],
                            capture_output=True, timeout=600)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise MediaError(f"{source}: ffmpeg could not read it ({reason[-1] if reason else 'no output'})")
    return result.stdout


def read_audio_segment(path: Path, start: float | None = None, end: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples of [start, end) seconds (the whole file by default) at the file's own rate."""
    import soundfile

    window = (["-ss", f"{start:.6f}"] if start is not None else []) + \
             (["-t", f"{end - (start or 0.0):.6f}"] if end is not None else [])
    wav = _run([*window, "-i", str(path), "-vn", "-ac", "1", "-c:a", "pcm_f32le", "-f", "wav", "-"], path)
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    if samples.size == 0:
        raise MediaError(f"{path}: no audio between {start} s and {end} s")
    return samples, int(rate)


def write_clip_16k(samples: np.ndarray, rate: int, out: Path, resampler: str = "soxr_hq") -> None:
    """16 kHz mono FLAC (PCM 16), written atomically."""
    import soundfile

    from speech2face.engine.features.resampling import resample

    audio = resample(samples, rate, 16000, resampler) if rate != 16000 else samples
    tmp = out.with_name(out.name + ".tmp")
    soundfile.write(tmp, np.clip(audio, -1.0, 1.0), 16000, format="FLAC", subtype="PCM_16")
    tmp.replace(out)


def video_duration(path: Path) -> float:
    """Seconds of the first video stream (ffmpeg's own probe, read from its banner)."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, timeout=60)
    for line in result.stderr.decode(errors="replace").splitlines():
        if "Duration:" in line:
            h, m, s = line.split("Duration:")[1].split(",")[0].strip().split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
    raise MediaError(f"{path}: not a readable video")


def read_frame(path: Path, at: float) -> np.ndarray:
    """The RGB frame (H, W, 3) uint8 at `at` seconds."""
    from PIL import Image

    png = _run(["-ss", f"{max(at, 0.0):.6f}", "-i", str(path), "-frames:v", "1", "-f", "image2pipe",
                "-c:v", "png", "-"], path)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
