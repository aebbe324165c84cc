"""What both corpus preparers share: per-item outputs written atomically, a worker pool with a
progress bar, failures kept with their reasons, and the manifest that `s2f train` reads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from speech2face.training.data.landmarks import face_landmarks

_LANDMARK_LOCK = threading.Lock()  # dlib's models are not documented as thread-safe; ffmpeg runs in parallel


def landmarks_path(face_path: Path) -> Path:
    """Where a face image's landmarks live: beside it, `<name>.landmarks.npy` ((68, 2), x, y in [0, 1])."""
    return face_path.with_name(face_path.stem + ".landmarks.npy")


def save_face(image: np.ndarray, path: Path, crop: np.ndarray | None = None) -> str:
    """Writes `image` as JPEG and the landmarks of `crop` (default: the image) beside it; returns the
    landmark box source ('detected' or 'crop'). Landmarks are written last: their file marks a done face."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LANDMARK_LOCK:
        points, source = face_landmarks(image if crop is None else crop)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image).save(tmp, format="JPEG", quality=95)
    tmp.replace(path)
    np.save(landmarks_path(path), points)
    return source


def run_tasks(tasks: list, work: Callable[[object], dict], workers: int, desc: str) -> list[dict]:
    """work(task) -> {"done": n, "failed": [{"item", "reason"}], "faces": {...}} for every task, in
    `workers` threads (the work is ffmpeg subprocesses), with a progress bar on stderr."""
    from tqdm import tqdm

    results = []
    with ThreadPoolExecutor(max(1, workers)) as pool, tqdm(total=len(tasks), desc=desc, unit="item") as bar:
        for future in as_completed([pool.submit(work, task) for task in tasks]):
            results.append(future.result())
            bar.update(1)
    return results


def write_manifest(out: Path, fields: dict, results: Iterable[dict]) -> dict:
    results = list(results)
    failed = sorted((f for r in results for f in r.get("failed", [])), key=lambda f: f["item"])
    boxes: dict[str, int] = {}
    for r in results:
        for key, value in r.get("faces", {}).items():
            boxes[key] = boxes.get(key, 0) + value
    manifest = {**fields, "prepared": sum(r.get("done", 0) for r in results), "failed": failed,
                "landmarks": "beside each face image: <name>.landmarks.npy, (68, 2) float32 (x, y) in [0, 1] "
                             "of the face crop (dlib 68-point, iBUG 300-W order)", "landmark_boxes": boxes}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / "manifest.json")
    return manifest


def failure(item: str, error: BaseException) -> dict:
    return {"item": item, "reason": f"{type(error).__name__}: {error}"}
