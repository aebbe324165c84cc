"""The synthetic paired corpus: determinism, layout, splits, voice/face trait rules, trait estimator."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from speech2face.training.data.synthetic import (AGE_PITCH, AGE_RATE, LANDMARK_NAMES, MAX_TILT, PITCH_SD, RATE_SD,
                                                 SAMPLE_RATE,
                                                 SyntheticPairs, draw_identity,
                                                 estimate_f0, estimate_face_traits, generate_corpus, read_manifest,
                                                 render_face, split_identities)
from speech2face.training.data.synthetic_voice import ACCENTS, VARIANTS, apply_tilt

N_IDENTITIES = 60
CLIPS = 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("synthetic") / "corpus", N_IDENTITIES, CLIPS, seed=3, workers=2)


@pytest.fixture(scope="module")
def everything(corpus):
    return SyntheticPairs(corpus, split="all")


@pytest.fixture(scope="module")
def many_identities():
    return [draw_identity(11, i) for i in range(400)]


def test_layout_shapes_and_dtypes(corpus, everything):
    manifest = read_manifest(corpus)
    assert manifest["seed"] == 3 and manifest["n_identities"] == N_IDENTITIES and manifest["rules_version"] >= 1
    assert manifest["n_clips"] == N_IDENTITIES * CLIPS and manifest["sample_rate"] == SAMPLE_RATE
    faces = np.load(corpus / "faces.npy")
    landmarks = np.load(corpus / "landmarks.npy")
    assert faces.shape == (N_IDENTITIES, 64, 64, 3) and faces.dtype == np.uint8
    assert landmarks.shape == (N_IDENTITIES, len(LANDMARK_NAMES), 2) and landmarks.dtype == np.float32
    assert landmarks.min() > 0 and landmarks.max() < 1
    assert len(everything) == N_IDENTITIES * CLIPS
    item = everything[5]
    assert set(item) >= {"audio", "sample_rate", "face", "landmarks", "identity", "gender", "age"}
    assert item["audio"].dtype == np.float32 and item["audio"].ndim == 1 and item["sample_rate"] == SAMPLE_RATE
    assert 2.0 * SAMPLE_RATE < len(item["audio"]) <= 6.0 * SAMPLE_RATE
    assert 0.05 < np.abs(item["audio"]).max() <= 1.0
    assert item["face"].shape == (64, 64, 3) and item["face"].dtype == np.uint8
    assert item["landmarks"].shape == (32, 2) and item["landmarks"].dtype == np.float32
    assert item["identity"] == 2 and item["gender"] in (0, 1) and item["age"] in (0, 1, 2)
    assert np.array_equal(item["face"], faces[2])
    # clips of one identity say different sentences
    texts = [c["text"] for c in everything.record(2)["clips"]]
    assert len(set(texts)) == CLIPS


def test_deterministic_from_the_seed_whatever_the_workers(corpus, tmp_path):
    again = generate_corpus(tmp_path / "again", N_IDENTITIES, CLIPS, seed=3, workers=1)
    for name in ("audio.pcm", "faces.npy", "landmarks.npy", "clip_offsets.npy", "meta.jsonl"):
        assert (corpus / name).read_bytes() == (again / name).read_bytes(), name
    other = [draw_identity(4, i).face for i in range(5)]
    assert all(a != b for a, b in zip(other, (draw_identity(3, i).face for i in range(5))))


def test_idempotent_when_the_manifest_matches(corpus):
    stamp = (corpus / "audio.pcm").stat().st_mtime_ns
    assert generate_corpus(corpus, N_IDENTITIES, CLIPS, seed=3, workers=2) == corpus
    assert (corpus / "audio.pcm").stat().st_mtime_ns == stamp


def test_splits_are_disjoint_by_identity(corpus):
    splits = {name: SyntheticPairs(corpus, split=name) for name in ("train", "val", "test")}
    ids = {name: set(map(int, s.identities)) for name, s in splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert ids["train"] | ids["val"] | ids["test"] == set(range(N_IDENTITIES))
    assert len(ids["test"]) == 6 and len(ids["val"]) == 6
    assert {splits["test"][i]["identity"] for i in range(len(splits["test"]))} == ids["test"]
    assert all(splits["train"][i]["identity"] in ids["train"] for i in range(0, len(splits["train"]), 7))
    assert np.array_equal(split_identities(N_IDENTITIES, 3)["test"], splits["test"].identities)
    with pytest.raises(ValueError):
        SyntheticPairs(corpus, split="holdout")


def test_pickles_for_dataloader_workers(corpus):
    data = SyntheticPairs(corpus, split="val")
    first = data[0]
    copy = pickle.loads(pickle.dumps(data))
    assert np.array_equal(copy[0]["audio"], first["audio"])


def test_voice_carries_gender_and_age(everything):
    f0, gender, age, seconds_per_char = [], [], [], []
    for index in range(0, len(everything), CLIPS):
        item = everything[index]
        record = everything.record(item["identity"])
        f0.append(estimate_f0(item["audio"]))
        gender.append(item["gender"])
        age.append(item["age"])
        clip = record["clips"][0]
        cropped = clip["samples"] >= 6 * SAMPLE_RATE
        seconds_per_char.append(np.nan if cropped else clip["samples"] / SAMPLE_RATE / len(clip["text"]))
    f0, gender, age, seconds_per_char = map(np.asarray, (f0, gender, age, seconds_per_char))
    assert (f0 > 0).all()
    male, female = np.median(f0[gender == 0]), np.median(f0[gender == 1])
    assert female > 1.5 * male, (male, female)
    for g in (0, 1):  # older voices are lower and slower, within each gender
        young, old = (gender == g) & (age == 0), (gender == g) & (age == 2)
        assert np.median(f0[young]) > np.median(f0[old])
        assert np.nanmedian(seconds_per_char[young]) < np.nanmedian(seconds_per_char[old])


def _high_to_low_db(audio: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1.0 / SAMPLE_RATE)
    return float(10 * np.log10(power[(freqs > 2000) & (freqs < 6000)].sum() / power[(freqs > 100) & (freqs < 1000)].sum()))


def test_voice_brightness_is_audible(everything):
    """Rules v4: the tilt (a face link) shows in the clip's band energies, across variants and accents."""
    tilt, balance = [], []
    for index in range(0, len(everything), CLIPS):
        item = everything[index]
        tilt.append(everything.record(item["identity"])["voice"]["tilt"])
        balance.append(_high_to_low_db(item["audio"]))
    assert max(np.abs(tilt)) <= MAX_TILT
    assert _corr(tilt, balance) > 0.7


def test_apply_tilt_pivots_at_1khz():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SAMPLE_RATE).astype(np.float32)
    freqs = np.fft.rfftfreq(len(noise), 1.0 / SAMPLE_RATE)
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(apply_tilt(noise, 3.0))) / np.abs(np.fft.rfft(noise)))
    for f, expected in ((1000, 0.0), (4000, 6.0), (250, -6.0), (100, -6.0)):
        assert gain_db[np.argmin(np.abs(freqs - f))] == pytest.approx(expected, abs=1e-3), f  # exact: a pure gain


def test_trait_estimator_reads_true_faces(corpus, everything):
    faces = np.load(corpus / "faces.npy")
    truth = [everything.record(i) for i in range(N_IDENTITIES)]
    extra = [draw_identity(21, i) for i in range(300)]
    images = list(faces) + [render_face(identity.face)[0] for identity in extra]
    gender = np.array([r["gender"] for r in truth] + [i.gender for i in extra])
    age = np.array([r["age"] for r in truth] + [i.age for i in extra])
    estimates = [estimate_face_traits(image) for image in images]
    assert np.mean([e["gender"] for e in estimates] == gender) >= 0.95
    assert np.mean([e["age"] for e in estimates] == age) >= 0.9
    # blurry reconstructions at another size, as float images: still readable
    blurred = [np.asarray(Image.fromarray(im).resize((24, 24), Image.BILINEAR).resize((128, 128), Image.BILINEAR))
               for im in images[:120]]
    estimates = [estimate_face_traits(im.astype(np.float32) / 255) for im in blurred]
    assert np.mean([e["gender"] for e in estimates] == gender[:120]) >= 0.9
    assert np.mean([e["age"] for e in estimates] == age[:120]) >= 0.8


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def test_noise_traits_are_independent_of_gender_and_age(many_identities):
    gender = [i.gender for i in many_identities]
    age = [i.age for i in many_identities]
    assert 0.35 < np.mean(gender) < 0.65
    noise = {
        "skin": [np.mean(i.face.skin) for i in many_identities],
        "background": [np.mean(i.face.background) for i in many_identities],
        "clothes": [np.mean(i.face.clothes) for i in many_identities],
        "eye_spacing": [i.face.eye_spacing for i in many_identities],
        "tilt": [i.voice.tilt for i in many_identities],
        "eye_size": [i.face.eye_size for i in many_identities],
        "mouth_width": [i.face.mouth_width for i in many_identities],
        "cheek_width": [i.face.cheek_width for i in many_identities],
        "offset_x": [i.face.offset[0] for i in many_identities],
        "snr_db": [i.voice.snr_db for i in many_identities],
    }
    for name, values in noise.items():
        assert abs(_corr(values, gender)) < 0.15, name
        assert abs(_corr(values, age)) < 0.15, name
    # ...while the typed traits follow their latents
    assert _corr([i.face.jaw_ratio for i in many_identities], gender) < -0.8
    assert _corr([i.face.brow_thickness for i in many_identities], gender) < -0.8
    assert _corr([i.face.long_hair for i in many_identities], gender) == pytest.approx(1.0)
    assert _corr([i.face.grey for i in many_identities], age) > 0.9
    assert abs(_corr([i.face.grey for i in many_identities], gender)) < 0.15
    assert _corr([i.voice.rate for i in many_identities], age) < -0.8
    assert _corr([i.voice.variant.startswith("f") for i in many_identities], gender) == pytest.approx(1.0)



def test_voice_linked_traits_follow_the_voice_within_gender_and_age(many_identities):
    """Rules v3/v4: beyond gender and age, the voice's own codes set traits that vary inside each
    gender/age cell, so that retrieval from a voice can rise above the cell level."""
    people = many_identities
    variant = np.array([VARIANTS[i.gender].index(i.voice.variant) / (len(VARIANTS[i.gender]) - 1) for i in people])
    brightness = np.array([i.voice.tilt for i in people])
    accent = np.array([ACCENTS.index(i.voice.accent) for i in people], float)
    pitch_z = np.array([(i.voice.pitch - AGE_PITCH[i.age]) / PITCH_SD for i in people])
    rate_z = np.array([(i.voice.rate - AGE_RATE[i.age]) / RATE_SD for i in people])
    gender = np.array([i.gender for i in people])
    age = np.array([i.age for i in people])
    for g in (0, 1):
        cell = gender == g
        assert _corr(variant[cell], [i.face.hair_length for i, c in zip(people, cell) if c]) > 0.8, g
    assert _corr(brightness, [i.face.fringe for i in people]) > 0.8
    assert _corr(brightness, [i.face.eye_spacing for i in people]) > 0.8
    assert abs(_corr(accent, [i.face.fringe for i in people])) < 0.15   # the accent is noise since v4
    for a in (1, 2):   # young faces are barely grey, so the within-bucket cue shows from middle age on
        cell = age == a
        older_voice = -(pitch_z + rate_z)[cell]
        assert _corr(older_voice, [i.face.grey for i, c in zip(people, cell) if c]) > 0.7, a
        assert _corr(older_voice, [i.face.sag for i, c in zip(people, cell) if c]) > 0.7, a
    # ...and these links do not leak into the latents: the marginals stay centred on their cells
    for trait in ("fringe", "eye_spacing"):
        values = np.array([getattr(i.face, trait) for i in people])
        assert abs(_corr(values, gender)) < 0.15 and abs(_corr(values, age)) < 0.15, trait


def test_landmarks_follow_the_drawing(many_identities):
    index = {name: k for k, name in enumerate(LANDMARK_NAMES)}
    for identity in many_identities[:20]:
        image, marks = render_face(identity.face)
        x, y = marks[:, 0], marks[:, 1]
        assert x[index["eye_l_outer"]] < x[index["eye_l_inner"]] < x[index["eye_r_inner"]] < x[index["eye_r_outer"]]
        assert y[index["brow_l_arch"]] < y[index["eye_l_top"]] < y[index["nose_tip"]] < y[index["mouth_upper"]]
        assert y[index["contour_chin"]] == y[:9].max()
        # the pupils are dark, the skin between the brows is not
        for eye in ("l", "r"):
            ex = (x[index[f"eye_{eye}_outer"]] + x[index[f"eye_{eye}_inner"]]) / 2
            pupil = image[int(y[index[f"eye_{eye}_top"]] * 64 + 1.5), int(ex * 64)]
            assert pupil.mean() < image[int(y[index["nose_bridge"]] * 64) - 3, 32].mean()
