"""`s2f data avspeech CSV --out DIR`: AVSpeech rows -> the folder AVSpeechPairs reads.

For each CSV row (YouTube id, start, end, face centre x, y): the video comes from `--media-dir`
(`<ytid>.mp4|.mkv|.webm|.mov`, videos the user already has) or is fetched once per video with
yt-dlp into `DIR/downloads/`. The segment [start, end) becomes `DIR/clips/<ytid>_<start>.flac`
(16 kHz mono), its middle frame `DIR/frames/<ytid>_<start>.jpg`, and the landmarks of the face crop
at the row's centre (the crop AVSpeechPairs makes) go beside it. Rows already done are kept (the
command resumes); rows that fail are listed in `DIR/manifest.json` with the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from speech2face.training.data import media
from speech2face.training.data.prepare_common import failure, landmarks_path, run_tasks, save_face, write_manifest
from speech2face.training.datasets import avspeech_rows, crop_face

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov")
FORMAT = "speech2face-avspeech"


def find_video(media_dir: Path, ytid: str) -> Path:
    for suffix in VIDEO_SUFFIXES:
        if (media_dir / f"{ytid}{suffix}").exists():
            return media_dir / f"{ytid}{suffix}"
    raise FileNotFoundError(f"no video {ytid}.{{mp4,mkv,webm,mov}} in {media_dir}")


def fetch_with_yt_dlp(ytid: str, downloads: Path) -> Path:
    """The whole video, once (rows of one video share it), at most 720p."""
    try:
        return find_video(downloads, ytid)
    except FileNotFoundError:
        pass
    try:
        import yt_dlp
    except ImportError:
        raise RuntimeError("fetching AVSpeech videos needs yt-dlp: pip install 'speech2face[data]', "
                           "or pass --media-dir with the videos you have") from None
    options = {"format": "best[height<=720][ext=mp4]/best[height<=720]/best", "quiet": True, "noprogress": True,
               "outtmpl": str(downloads / "%(id)s.%(ext)s")}
    with yt_dlp.YoutubeDL(options) as downloader:
        downloader.download([f"https://www.youtube.com/watch?v={ytid}"])
    return find_video(downloads, ytid)


def _prepare_video(ytid: str, rows: list, out: Path, locate: Callable[[str], Path], face_size: int) -> dict:
    result: dict = {"done": 0, "failed": [], "faces": {}}
    pending = [r for r in rows if not ((out / "clips" / f"{r.stem}.flac").exists()
                                      and landmarks_path(out / "frames" / f"{r.stem}.jpg").exists())]
    result["done"] = len(rows) - len(pending)
    if not pending:
        return result
    try:
        video = locate(ytid)
    except Exception as error:  # noqa: BLE001 - every row of this video fails for the same reason
        result["failed"] += [failure(r.stem, error) for r in pending]
        return result
    for row in pending:
        try:
            if not row.end > row.start:
                raise ValueError(f"end {row.end} is not after start {row.start}")
            samples, rate = media.read_audio_segment(video, row.start, row.end)
            frame = media.read_frame(video, (row.start + row.end) / 2)
            crop = crop_face(frame, (row.x, row.y), face_size)
            source = save_face(frame, out / "frames" / f"{row.stem}.jpg", crop=crop)
            media.write_clip_16k(samples, rate, out / "clips" / f"{row.stem}.flac")
            result["done"] += 1
            result["faces"][source] = result["faces"].get(source, 0) + 1
        except Exception as error:  # noqa: BLE001 - recorded in the manifest, the others go on
            result["failed"].append(failure(row.stem, error))
    return result


def prepare_avspeech(csv_path: Path, out: Path, media_dir: Path | None = None, workers: int = 4,
                     face_size: int = 224) -> dict:
    from speech2face.training.data.landmarks import check_available

    check_available()
    rows = avspeech_rows(csv_path)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    if Path(csv_path).resolve() != (out / "avspeech.csv").resolve():
        shutil.copyfile(csv_path, out / "avspeech.csv")
    if media_dir is not None:
        locate = lambda ytid: find_video(Path(media_dir), ytid)  # noqa: E731
    else:
        (out / "downloads").mkdir(exist_ok=True)
        locate = lambda ytid: fetch_with_yt_dlp(ytid, out / "downloads")  # noqa: E731
    by_video: dict[str, list] = {}
    for row in rows:
        by_video.setdefault(row.ytid, []).append(row)
    results = run_tasks(list(by_video.items()),
                        lambda task: _prepare_video(task[0], task[1], out, locate, face_size), workers,
                        desc=f"avspeech -> {out}")
    return write_manifest(out, {"format": FORMAT, "csv": "avspeech.csv", "clips": "clips", "frames": "frames",
                                "face_size": face_size, "rows": len(rows)}, results)
