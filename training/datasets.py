"""One paired voice/face Dataset interface over three sources: AVSpeech, VoxCeleb, synthetic.

Every source yields dicts with `audio` (float32 mono), `sample_rate`, `face` (uint8 HxWx3) and
`identity` (int); sources that know more add `landmarks`, `gender`, `age`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from speech2face.engine.audio_io import read_audio


class PairedVoiceFaces(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> dict: ...


def crop_face(image: np.ndarray, centre_xy: tuple[float, float], size: int, scale: float = 0.45) -> np.ndarray:
    """A square crop of side `scale` x image height around a normalised face centre, resized to `size`."""
    h, w = image.shape[:2]
    half = scale * h / 2
    cx, cy = centre_xy[0] * w, centre_xy[1] * h
    box = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))
    return np.asarray(Image.fromarray(image).crop(box).resize((size, size), Image.BICUBIC))


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class AVSpeechPairs:
    """AVSpeech: its CSV (YouTube id, start, end, face x, y) plus clips the user downloaded.

    Expected files for CSV row (ytid, start, ...): `clips_dir/{ytid}_{start:.6f}.wav` (any rate,
    any channels) and `frames_dir/{ytid}_{start:.6f}.jpg` (a frame of the clip). Rows whose files
    are missing are skipped; `missing` counts them.
    """

    def __init__(self, csv_path: str | Path, clips_dir: str | Path, frames_dir: str | Path, face_size: int = 224):
        self.face_size = face_size
        self.items: list[tuple[Path, Path, tuple[float, float], int]] = []
        self.missing = 0
        identities: dict[str, int] = {}
        with open(csv_path, newline="") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if len(row) < 5 or (line == 1 and not _is_number(row[1])):   # blank line, or a header
                    continue
                try:
                    ytid, start, x, y = row[0], float(row[1]), float(row[3]), float(row[4])
                except ValueError:
                    raise ValueError(f"{Path(csv_path).name} line {line}: expected ytid,start,end,x,y "
                                     f"with numbers, got {row!r}") from None
                stem = f"{ytid}_{start:.6f}"
                audio, frame = Path(clips_dir) / f"{stem}.wav", Path(frames_dir) / f"{stem}.jpg"
                if not (audio.exists() and frame.exists()):
                    self.missing += 1
                    continue
                self.items.append((audio, frame, (x, y), identities.setdefault(ytid, len(identities))))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        audio_path, frame_path, centre, identity = self.items[index]
        audio, rate = read_audio(audio_path)
        frame = np.asarray(Image.open(frame_path).convert("RGB"))
        return {"audio": audio, "sample_rate": rate, "face": crop_face(frame, centre, self.face_size),
                "identity": identity}


class VoxCelebPairs:
    """VoxCeleb1/2 layouts: `audio_root/<speaker>/<video>/<utt>.{wav,m4a-converted wav}` with face
    frames `faces_root/<speaker>/<video>/*.jpg` (VoxCeleb1's unzippedFaces and VoxCeleb2's frames
    both reduce to this after renaming the speaker folders to ids). One frame per video is used."""

    def __init__(self, audio_root: str | Path, faces_root: str | Path, face_size: int = 224):
        self.face_size = face_size
        self.items: list[tuple[Path, Path, int]] = []
        speakers = sorted(p for p in Path(audio_root).iterdir() if p.is_dir())
        for identity, speaker in enumerate(speakers):
            for video in sorted(p for p in speaker.iterdir() if p.is_dir()):
                frames = sorted((Path(faces_root) / speaker.name / video.name).glob("*.jpg"))
                if not frames:
                    continue
                for utterance in sorted(video.glob("*.wav")):
                    self.items.append((utterance, frames[len(frames) // 2], identity))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        audio_path, frame_path, identity = self.items[index]
        audio, rate = read_audio(audio_path)
        face = Image.open(frame_path).convert("RGB").resize((self.face_size, self.face_size), Image.BICUBIC)
        return {"audio": audio, "sample_rate": rate, "face": np.asarray(face), "identity": identity}
