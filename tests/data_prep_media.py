"""Small real media for the corpus-preparation tests, made offline: synthetic speech (eSpeak NG)
muxed by ffmpeg with a video of a drawn face, in the layouts AVSpeech users and VoxCeleb1/2 ship.
Helpers only, no tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image


def ffmpeg_or_skip() -> str:
    from speech2face.training.data.media import MediaError, ffmpeg_exe

    try:
        return ffmpeg_exe()
    except MediaError as error:
        pytest.skip(f"no ffmpeg: {error}")


def landmarker_or_skip() -> None:
    from speech2face.training.data.landmarks import LandmarkerMissing, check_available

    try:
        check_available()
    except LandmarkerMissing as error:
        pytest.skip(str(error))


def speech(index: int, seconds: float = 4.0) -> np.ndarray:
    """A few seconds of an identity's synthetic voice at 16 kHz (float32)."""
    from speech2face.training.data.synthetic import _clip_sentences, draw_identity
    from speech2face.training.data.synthetic_voice import synthesize_clip

    identity = draw_identity(11, index)
    clip, _ = synthesize_clip(_clip_sentences(identity, 0), identity.voice, np.random.default_rng(index),
                              min_seconds=seconds, max_seconds=seconds)
    return clip


def face(index: int, size: int) -> np.ndarray:
    from speech2face.training.data.synthetic import draw_identity, render_face

    return render_face(draw_identity(11, index).face, size)[0]


def mux(ffmpeg: str, frame: np.ndarray, audio: np.ndarray, rate: int, out: Path, audio_only: bool = False) -> Path:
    """A still-frame H.264 video with AAC audio (or an .m4a with the audio alone)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    wav, png = out.with_suffix(".src.wav"), out.with_suffix(".src.png")
    soundfile.write(wav, audio, rate)
    video = [] if audio_only else ["-loop", "1", "-framerate", "5", "-i", str(png)]
    if not audio_only:
        Image.fromarray(frame).save(png)
    codec = ["-vn"] if audio_only else ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest"]
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *video, "-i", str(wav), *codec,
                    "-c:a", "aac", "-b:a", "64k", str(out)], check=True, timeout=120)
    wav.unlink()
    png.unlink(missing_ok=True)
    return out


def avspeech_media(ffmpeg: str, root: Path, identities: int = 3) -> tuple[Path, Path]:
    """`root/videos/<ytid>.mp4` (640x360, a drawn face centred at (0.3, 0.5), 5 s of speech at
    44.1 kHz) and a CSV of two segments per video, plus a row whose video is missing."""
    rows = []
    for i in range(identities):
        frame = np.full((360, 640, 3), 90, np.uint8)
        frame[100:260, 112:272] = face(i, 160)
        audio = speech(i, 5.0)
        from speech2face.engine.features.resampling import resample

        mux(ffmpeg, frame, resample(audio, 16000, 44100), 44100, root / "videos" / f"vid{i:08d}.mp4")
        rows += [f"vid{i:08d},0.000000,2.400000,0.3,0.5", f"vid{i:08d},2.500000,4.900000,0.3,0.5"]
    rows.append("missingvid1,1.000000,3.000000,0.5,0.5")
    csv = root / "avspeech_train.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv, root / "videos"


def voxceleb_media(ffmpeg: str, root: Path) -> Path:
    """VoxCeleb2 (`dev/aac/*.m4a` + `dev/mp4/*.mp4` face videos) for two speakers and VoxCeleb1
    (`wav/*.wav` + `unzippedFaces/<Name>/1.6/...jpg` + `vox1_meta.csv`) for one, two utterances each."""
    for s in range(2):
        speaker = f"id{s + 1:05d}"
        for u in range(2):
            audio = speech(10 + 2 * s + u, 3.0)
            name = f"{u + 1:05d}"
            mux(ffmpeg, None, audio, 16000, root / "dev" / "aac" / speaker / "vidA" / f"{name}.m4a", audio_only=True)
            mux(ffmpeg, face(10 + s, 224), audio, 16000, root / "dev" / "mp4" / speaker / "vidA" / f"{u + 1:05d}.mp4")
    for u in range(2):
        path = root / "vox1" / "wav" / "id10001" / "vidB" / f"{u + 1:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, speech(20 + u, 3.0), 16000, subtype="PCM_16")
    crops = root / "vox1" / "unzippedFaces" / "Some_Name" / "1.6" / "vidB"
    crops.mkdir(parents=True)
    for k in range(3):
        Image.fromarray(face(12, 224)).save(crops / f"{k:07d}.jpg")
    (root / "vox1" / "vox1_meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                                                "id10001\tSome_Name\tm\tNowhere\tdev\n")
    return root


def prepared_avspeech(root: Path, identities: int = 3) -> Path:
    """`s2f data avspeech` on media made here (skips without ffmpeg or the landmark model): the
    prepared folder."""
    from speech2face.engine.cli.main import main

    ffmpeg = ffmpeg_or_skip()
    landmarker_or_skip()
    csv, videos = avspeech_media(ffmpeg, root / "media", identities=identities)
    assert main(["data", "avspeech", str(csv), "--media-dir", str(videos), "--out", str(root / "prepared"),
                 "--workers", "2"]) == 0
    return root / "prepared"
