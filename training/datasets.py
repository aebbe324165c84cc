"""One paired voice/face Dataset interface over three sources: AVSpeech, VoxCeleb, synthetic.

Every source yields dicts with `audio` (float32 mono), `sample_rate`, `face` (uint8 HxWx3) and
`identity` (int); sources that know more add `landmarks` ((K, 2), x, y in [0, 1] of `face`),
`gender`, `age`. `open_prepared` opens a folder written by `s2f data`.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from speech2face.engine.contract.audio_files import read_audio


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


@dataclasses.dataclass(frozen=True)
class AVSpeechRow:
    line: int
    ytid: str
    start: float
    end: float
    x: float
    y: float

    @property
    def stem(self) -> str:
        return f"{self.ytid}_{self.start:.6f}"


def avspeech_rows(csv_path: str | Path) -> list[AVSpeechRow]:
    """The rows of an AVSpeech CSV (ytid, start, end, face x, y); a header line is skipped and a
    malformed row is named by its line."""
    rows = []
    with open(csv_path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if len(row) < 5 or (line == 1 and not _is_number(row[1])):   # blank line, or a header
                continue
            try:
                rows.append(AVSpeechRow(line, row[0], float(row[1]), float(row[2]), float(row[3]), float(row[4])))
            except ValueError:
                raise ValueError(f"{Path(csv_path).name} line {line}: expected ytid,start,end,x,y "
                                 f"with numbers, got {row!r}") from None
    return rows


def _landmarks_beside(image_path: Path) -> np.ndarray | None:
    """`s2f data` writes a face image's landmarks beside it (training/data/prepare_common.py)."""
    path = image_path.with_name(image_path.stem + ".landmarks.npy")
    return np.load(path).astype(np.float32) if path.exists() else None


class AVSpeechPairs:
    """AVSpeech: its CSV (YouTube id, start, end, face x, y) plus clips the user downloaded.

    Expected files for CSV row (ytid, start, ...): `clips_dir/{ytid}_{start:.6f}.flac` (or .wav;
    any rate, any channels) and `frames_dir/{ytid}_{start:.6f}.jpg` (a frame of the clip), with
    optional landmarks of the face crop beside the frame (`s2f data avspeech` writes all three).
    Rows whose files are missing are skipped; `missing` counts them.
    """

    def __init__(self, csv_path: str | Path, clips_dir: str | Path, frames_dir: str | Path, face_size: int = 224):
        self.face_size = face_size
        self.items: list[tuple[Path, Path, tuple[float, float], int]] = []
        self.missing = 0
        identities: dict[str, int] = {}
        for row in avspeech_rows(csv_path):
            audio = next((p for p in (Path(clips_dir) / f"{row.stem}{ext}" for ext in (".flac", ".wav"))
                          if p.exists()), None)
            frame = Path(frames_dir) / f"{row.stem}.jpg"
            if audio is None or not frame.exists():
                self.missing += 1
                continue
            self.items.append((audio, frame, (row.x, row.y), identities.setdefault(row.ytid, len(identities))))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        audio_path, frame_path, centre, identity = self.items[index]
        audio, rate = read_audio(audio_path)
        frame = np.asarray(Image.open(frame_path).convert("RGB"))
        item = {"audio": audio, "sample_rate": rate, "face": crop_face(frame, centre, self.face_size),
                "identity": identity}
        landmarks = _landmarks_beside(frame_path)
        if landmarks is not None:
            item["landmarks"] = landmarks
        return item


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
                for utterance in sorted([*video.glob("*.wav"), *video.glob("*.flac")]):
                    self.items.append((utterance, frames[len(frames) // 2], identity))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        audio_path, frame_path, identity = self.items[index]
        audio, rate = read_audio(audio_path)
        face = Image.open(frame_path).convert("RGB").resize((self.face_size, self.face_size), Image.BICUBIC)
        item = {"audio": audio, "sample_rate": rate, "face": np.asarray(face), "identity": identity}
        landmarks = _landmarks_beside(frame_path)
        if landmarks is not None:   # of the whole (already face-cropped) frame, so resizing keeps them
            item["landmarks"] = landmarks
        return item


def open_prepared(root: str | Path, face_size: int = 224):
    """The loader for a folder written by `s2f data avspeech|voxceleb` (its manifest.json names which)."""
    import json

    root = Path(root)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{root}: no manifest.json; prepare the corpus with "
                                "`s2f data avspeech|voxceleb`") from None
    if manifest.get("format") == "speech2face-avspeech":
        return AVSpeechPairs(root / manifest["csv"], root / manifest["clips"], root / manifest["frames"], face_size)
    if manifest.get("format") == "speech2face-voxceleb":
        return VoxCelebPairs(root / manifest["audio"], root / manifest["faces"], face_size)
    raise ValueError(f"{root}: manifest format {manifest.get('format')!r} is not a prepared AVSpeech or "
                     "VoxCeleb folder")
