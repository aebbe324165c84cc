"""The AVSpeech and VoxCeleb loaders on tiny layouts written here (no download), and their use by the
training stages."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from PIL import Image

from speech2face.engine.contract.feature_spec import FeatureSpec
from speech2face.training.datasets import AVSpeechPairs, VoxCelebPairs
from speech2face.training.stage_data import VoiceToFace, faces_by_identity

RED = (255, 0, 0)


def _tone(path, rate: int = 44_100, channels: int = 2, seconds: float = 1.0) -> None:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t)
    soundfile.write(path, np.stack([mono] * channels, axis=1), rate)


def _frame(path, centre_xy=(0.5, 0.5), size=(320, 180)) -> None:
    """A grey frame with a red square around the given normalised face centre."""
    image = Image.new("RGB", size, (90, 90, 90))
    cx, cy = centre_xy[0] * size[0], centre_xy[1] * size[1]
    image.paste(RED, (int(cx - 10), int(cy - 10), int(cx + 10), int(cy + 10)))
    image.save(path, quality=95)


@pytest.fixture()
def avspeech(tmp_path):
    clips, frames = tmp_path / "clips", tmp_path / "frames"
    clips.mkdir(), frames.mkdir()
    rows = [("vidA", 10.0, 13.5, 0.25, 0.4), ("vidA", 20.0, 24.0, 0.7, 0.5), ("vidB", 3.2, 7.0, 0.5, 0.5),
            ("gone", 1.0, 4.0, 0.5, 0.5)]          # the last one's files were never downloaded
    for ytid, start, _end, x, y in rows[:3]:
        _tone(clips / f"{ytid}_{start:.6f}.wav")
        _frame(frames / f"{ytid}_{start:.6f}.jpg", (x, y))
    csv_path = tmp_path / "avspeech_train.csv"
    csv_path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return csv_path, clips, frames


def test_avspeech_pairs_skip_missing_clips_and_crop_around_the_face(avspeech):
    pairs = AVSpeechPairs(*avspeech, face_size=64)
    assert len(pairs) == 3 and pairs.missing == 1
    assert [pairs[i]["identity"] for i in range(3)] == [0, 0, 1]    # one identity per YouTube video
    item = pairs[1]
    assert item["sample_rate"] == 44_100 and item["audio"].ndim == 1 and item["audio"].dtype == np.float32
    assert item["face"].shape == (64, 64, 3)
    centre = item["face"][28:36, 28:36].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 200 and centre[1] < 60                        # the face centre is in the crop's centre


def test_avspeech_csv_header_is_skipped_and_bad_rows_are_named(avspeech, tmp_path):
    csv_path, clips, frames = avspeech
    with_header = tmp_path / "with_header.csv"
    with_header.write_text("youtube_id,start,end,x,y\n" + csv_path.read_text())
    assert len(AVSpeechPairs(with_header, clips, frames)) == 3
    broken = tmp_path / "broken.csv"
    broken.write_text(csv_path.read_text() + "vidC,abc,4.0,0.5,0.5\n")
    with pytest.raises(ValueError, match=r"broken.csv line 5"):
        AVSpeechPairs(broken, clips, frames)


def test_voxceleb_pairs_use_a_middle_frame_per_video(tmp_path):
    audio_root, faces_root = tmp_path / "wav", tmp_path / "faces"
    layout = {"id10001": {"vid1": 2, "vid2": 1}, "id10002": {"vid9": 1, "noframes": 1}}
    for speaker, videos in layout.items():
        for video, utterances in videos.items():
            (audio_root / speaker / video).mkdir(parents=True)
            for k in range(utterances):
                _tone(audio_root / speaker / video / f"{k:05d}.wav", rate=16_000, channels=1)
            if video != "noframes":
                (faces_root / speaker / video).mkdir(parents=True)
                for k in range(3):  # frames 0 and 2 are grey; the middle one carries the red square
                    Image.new("RGB", (50, 50), RED if k == 1 else (90, 90, 90)).save(
                        faces_root / speaker / video / f"{k:04d}.jpg", quality=95)
    pairs = VoxCelebPairs(audio_root, faces_root, face_size=32)
    assert len(pairs) == 4                                           # the video without frames is skipped
    assert [pairs[i]["identity"] for i in range(4)] == [0, 0, 0, 1]
    assert pairs[0]["face"].shape == (32, 32, 3) and pairs[0]["face"][..., 0].mean() > 200
    assert pairs[3]["sample_rate"] == 16_000


def test_real_layouts_feed_the_voice_stage(avspeech):
    """The stages take any source: one face per identity, and spectrograms by the serving kernels."""
    pairs = AVSpeechPairs(*avspeech, face_size=64)
    faces, landmarks, ids, rows = faces_by_identity(pairs)
    assert faces.shape == (2, 64, 64, 3) and landmarks is None and ids == [0, 1]
    spec = FeatureSpec()
    data = VoiceToFace(pairs, rows, face_features=np.eye(2, dtype=np.float32), spec=spec)
    assert tuple(data.spectrograms.shape) == (3, *spec.shape)
    assert data[2]["face_feature"].tolist() == [0.0, 1.0]
