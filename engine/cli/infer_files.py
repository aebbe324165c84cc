"""`s2f infer` on many files: which files, where each face goes, and one failure never stops the rest.

Files travel whole (AUDIO_FILE, decoded on the server). Each is checked here first (readable, a
served format, within the limits), so a bad file is reported without a server being started.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class Job:
    source: Path
    relative: Path      # the name under the output folder: the file's path below the folder given


def collect(inputs: list[str], recursive: bool = False) -> list[Job]:
    """Files as given (even missing ones: they are reported, not skipped) and audio files of folders."""
    jobs: list[Job] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = item.rglob("*") if recursive else item.iterdir()
            jobs += [Job(p, p.relative_to(item)) for p in sorted(found)
                     if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
        else:
            jobs.append(Job(item, Path(item.name)))
    return jobs


def targets(jobs: list[Job], output: Path) -> list[Path]:
    """Where each face goes: a single input may name a .png; otherwise `<folder>/<name>.png`, and
    `<name>.<suffix>.png` for files whose stems clash (a.wav and a.flac)."""
    if len(jobs) == 1 and output.suffix:
        return [output]
    plain = [output / job.relative.with_suffix(".png") for job in jobs]
    return [output / job.relative.with_name(job.relative.name + ".png") if plain.count(p) > 1 else p
            for job, p in zip(jobs, plain)]


def check(jobs: list[Job]) -> tuple[list[Job], list[tuple[Job, str]]]:
    """(readable jobs, failed jobs with the reason), without any server. Bytes are not kept:
    a folder of thousands of files is read again one at a time when sent."""
    from speech2face.engine.client.core import check_audio_file, read_file
    from speech2face.engine.client.errors import InvalidInput

    good, failed = [], []
    for job in jobs:
        try:
            data, name = read_file(job.source)
            check_audio_file(data, name)
        except InvalidInput as error:
            failed.append((job, str(error)))
            continue
        good.append(job)
    return good, failed


def run(client, good: list[tuple[Job, Path]]) -> list[tuple[Job, str]]:
    """Infers each file and writes its PNG; returns the failures (the rest still run)."""
    from PIL import Image

    from speech2face.engine.client.core import read_file
    from speech2face.engine.client.errors import InferenceError

    failed = []
    for job, target in good:
        try:
            result = client.infer_file(read_file(job.source)[0])
        except InferenceError as error:
            print(f"{job.source}: {error}", file=sys.stderr)
            failed.append((job, str(error)))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result.image).save(target)
        print(f"{job.source} -> {target}  ({result.latency_s * 1e3:.0f} ms)")
    return failed
