"""`s2f data voxceleb ROOT --out DIR`: the official VoxCeleb1/2 layouts -> the folder VoxCelebPairs reads.

Audio: every `<speaker id>/<video id>/<utterance>.wav` (VoxCeleb1 `wav/`) or `.m4a` (VoxCeleb2
`aac/`, decoded by ffmpeg) under ROOT becomes `DIR/audio/<speaker>/<video>/<utterance>.flac`
(16 kHz mono). Face, one per video, whichever ROOT has:
- VoxCeleb2 `mp4/<speaker>/<video>/<utterance>.mp4` (face-track videos): the middle frame of the
  video's first utterance;
- VoxCeleb1 `unzippedFaces/<Name>/1.6/<video>/*.jpg` (face crops), speakers named through
  `vox1_meta.csv` (tab-separated: VoxCeleb1 ID, VGGFace1 ID, ...): the middle image.
It goes to `DIR/faces/<speaker>/<video>/face.jpg` (resized to --face-size) with its landmarks beside
it. Videos already done are kept; failures are listed in `DIR/manifest.json` with the reason.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image

from speech2face.training.data import media
from speech2face.training.data.prepare_common import failure, landmarks_path, run_tasks, save_face, write_manifest

FORMAT = "speech2face-voxceleb"
SPEAKER = re.compile(r"^id\d+$")


def _by_video(root: Path, pattern: str) -> dict[tuple[str, str], list[Path]]:
    found: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(root.rglob(pattern)):
        speaker, video = path.parent.parent.name, path.parent.name
        if SPEAKER.match(speaker):
            found.setdefault((speaker, video), []).append(path)
    return found


def _vox1_faces(root: Path) -> dict[tuple[str, str], list[Path]]:
    """VoxCeleb1's face crops, keyed by (speaker id, video), through vox1_meta.csv's names."""
    ids: dict[str, str] = {}
    for meta in root.rglob("vox1_meta.csv"):
        with open(meta, newline="") as f:
            for row in csv.reader(f, delimiter="\t"):
                if len(row) >= 2 and SPEAKER.match(row[0].strip()):
                    ids[row[1].strip()] = row[0].strip()
    found: dict[tuple[str, str], list[Path]] = {}
    for image in sorted(root.rglob("unzippedFaces/*/*/*/*.jpg")):
        name, video = image.parents[2].name, image.parent.name
        if name in ids:
            found.setdefault((ids[name], video), []).append(image)
    return found


def _face_of(key: tuple[str, str], videos: dict, crops: dict, face_size: int) -> np.ndarray:
    if key in videos:
        clip = videos[key][0]
        frame = media.read_frame(clip, media.video_duration(clip) / 2)
    elif key in crops:
        frame = np.asarray(Image.open(crops[key][len(crops[key]) // 2]).convert("RGB"))
    else:
        raise FileNotFoundError(f"no face for {key[0]}/{key[1]}: neither mp4/{key[0]}/{key[1]}/*.mp4 "
                                "nor a VoxCeleb1 unzippedFaces folder named in vox1_meta.csv")
    return np.asarray(Image.fromarray(frame).resize((face_size, face_size), Image.BICUBIC))


def _prepare_video(key, utterances: list[Path], out: Path, videos: dict, crops: dict, face_size: int) -> dict:
    speaker, video = key
    result: dict = {"done": 0, "failed": [], "faces": {}}
    face_path = out / "faces" / speaker / video / "face.jpg"
    try:
        if not landmarks_path(face_path).exists():
            source = save_face(_face_of(key, videos, crops, face_size), face_path)
            result["faces"][source] = 1
    except Exception as error:  # noqa: BLE001 - recorded in the manifest; the video's clips are useless without it
        return {**result, "failed": [failure(f"{speaker}/{video}", error)]}
    for utterance in utterances:
        target = out / "audio" / speaker / video / f"{utterance.stem}.flac"
        if target.exists():
            result["done"] += 1
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            samples, rate = media.read_audio_segment(utterance)
            media.write_clip_16k(samples, rate, target)
            result["done"] += 1
        except Exception as error:  # noqa: BLE001 - recorded in the manifest, the others go on
            result["failed"].append(failure(f"{speaker}/{video}/{utterance.name}", error))
    return result


def prepare_voxceleb(root: Path, out: Path, workers: int = 4, face_size: int = 224) -> dict:
    from speech2face.training.data.landmarks import check_available

    check_available()
    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    audio = _by_video(root, "*.wav")
    for key, paths in _by_video(root, "*.m4a").items():
        audio.setdefault(key, []).extend(paths)
    if not audio:
        raise FileNotFoundError(f"{root}: no VoxCeleb audio (<speaker id>/<video>/<utterance>.wav or .m4a)")
    videos, crops = _by_video(root, "*.mp4"), _vox1_faces(root)
    results = run_tasks(sorted(audio.items()),
                        lambda task: _prepare_video(task[0], task[1], out, videos, crops, face_size), workers,
                        desc=f"voxceleb -> {out}")
    return write_manifest(out, {"format": FORMAT, "audio": "audio", "faces": "faces", "face_size": face_size,
                                "speakers": len({k[0] for k in audio}), "videos": len(audio),
                                "utterances": sum(len(v) for v in audio.values())}, results)
