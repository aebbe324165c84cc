"""`s2f infer` on many files: which files, where each face (and feature) goes, and one failure never
stops the rest.

A folder gives every file with an audio or video suffix FFmpeg may read; its other files are
counted and reported as skipped. Files named on the command line are all tried. Each is checked
here first from its header (readable, within the limits), so a bad file is reported without a
server being started; WAV/FLAC/OGG then travel whole (AUDIO_FILE), anything else is decoded by the
client (PyAV). Every line about a file names it once.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

# What FFmpeg may read as audio, or as a video with an audio track; lower case.
AUDIO_SUFFIXES = frozenset(
    ".wav .wave .flac .ogg .oga .opus .spx .mp3 .mp2 .mpga .m4a .m4b .aac .adts .ac3 .eac3 .dts .amr .awb .wma "
    ".aif .aiff .aifc .caf .au .snd .w64 .rf64 .voc .wv .ape .tta .mka .weba .ra .gsm".split())
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .qt .mkv .webm .avi .wmv .asf .flv .f4v .3gp .3g2 .ts .mts .m2ts .mpg .mpeg .vob .ogv .dv "
    ".mxf .rm .rmvb".split())
MEDIA_SUFFIXES = AUDIO_SUFFIXES | VIDEO_SUFFIXES
NAMES_SHOWN = 10    # skipped files named in the report line; the rest are counted


@dataclass(frozen=True)
class Job:
    source: Path
    relative: Path      # the name under the output folder: the file's path below the folder given


def collect(inputs: list[str], recursive: bool = False) -> tuple[list[Job], list[Path]]:
    """(jobs, skipped): files as given (even missing ones: they are reported, not skipped), and the
    media files of folders; a folder's other files are skipped (as paths below their folder)."""
    jobs: list[Job] = []
    skipped: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = item.rglob("*") if recursive else item.iterdir()
            for path in sorted(p for p in found if p.is_file()):
                if path.suffix.lower() in MEDIA_SUFFIXES:
                    jobs.append(Job(path, path.relative_to(item)))
                else:
                    skipped.append(path.relative_to(item))
        else:
            jobs.append(Job(item, Path(item.name)))
    return jobs, skipped


def skipped_line(skipped: list[Path]) -> str:
    """"skipped 2 files that are not audio (a.txt, b.jpg)"."""
    names = ", ".join(str(p) for p in skipped[:NAMES_SHOWN])
    more = f" and {len(skipped) - NAMES_SHOWN} more" if len(skipped) > NAMES_SHOWN else ""
    files = "file that is" if len(skipped) == 1 else "files that are"
    return f"skipped {len(skipped)} {files} not audio ({names}{more})"


def targets(jobs: list[Job], output: Path, suffix: str = ".png") -> list[Path]:
    """Where each output goes: a single input may name a file; otherwise `<folder>/<name><suffix>`, and
    `<name>.<ext><suffix>` for files whose stems clash (a.wav and a.flac)."""
    if len(jobs) == 1 and output.suffix:
        return [output]
    plain = [output / job.relative.with_suffix(suffix) for job in jobs]
    return [output / job.relative.with_name(job.relative.name + suffix) if plain.count(p) > 1 else p
            for job, p in zip(jobs, plain)]


def about(job: Job, message: str, kind: str = "") -> str:
    """`<file>: [<kind>: ]<message>`, naming the file once (the client's messages may start with it)."""
    name = str(job.source)
    text = message[len(name) + 2:] if message.startswith(f"{name}: ") else message
    return f"{name}: {kind}: {text}" if kind else f"{name}: {text}"


def check(jobs: list[Job]) -> tuple[list[Job], list[tuple[Job, str]]]:
    """(readable jobs, failed jobs with their line), from each file's header, without any server.
    Nothing is decoded and no bytes are kept: a folder of thousands of files is read again one at a
    time when sent."""
    from speech2face.engine.client.audio_inputs import inspect_file
    from speech2face.engine.client.errors import InvalidInput

    good, failed = [], []
    for job in jobs:
        try:
            inspect_file(job.source)
        except InvalidInput as error:
            failed.append((job, about(job, str(error))))
            continue
        good.append(job)
    return good, failed


def run(client, work: list[tuple[Job, Path, Path | None]]) -> list[tuple[Job, str]]:
    """Infers each file, writes its PNG (and its feature, .npy, where a path is given) and prints one
    line per AudioWarning; returns the failures with their line (the rest still run)."""
    import numpy as np
    from PIL import Image

    from speech2face.engine.client.errors import InferenceError
    from speech2face.engine.contract.audio_rules import AudioWarning

    failed = []
    for job, image_path, feature_path in work:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AudioWarning)
            try:
                result = client.infer(job.source)
            except InferenceError as error:
                result = None
                failed.append((job, about(job, str(error))))
        for warning in caught:
            if issubclass(warning.category, AudioWarning):
                print(about(job, str(warning.message), "warning"), file=sys.stderr)
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        if result is None:
            print(failed[-1][1], file=sys.stderr)
            continue
        image_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result.image).save(image_path)
        written = str(image_path)
        if feature_path is not None:
            feature_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(feature_path, np.asarray(result.feature, dtype=np.float32))
            written += f", {feature_path}"
        print(f"{job.source} -> {written}  ({result.latency_s * 1e3:.0f} ms)")
    return failed
