"""The synthetic paired voice/face corpus: deterministic from a seed, built from pip wheels only.

Each identity has a gender (0 male, 1 female) and an age bucket (0 young, 1 middle, 2 old).
Its voice (eSpeak NG) and its face (drawn procedurally) both follow those latents; every other
trait is independent noise, so only voice-correlated traits are learnable from the voice, as
in the paper. The rules are in SYNTHETIC.md; bump RULES_VERSION whenever they change.

    generate_corpus(out_dir, n_identities, clips_per_identity=2, seed=0, workers=2) -> Path
    SyntheticPairs(out_dir, split="train")[i] -> {"audio", "sample_rate", "face", "landmarks",
                                                   "identity", "gender", "age", "clip"}
    estimate_face_traits(image) -> {"gender", "age", ...}

On disk (`out_dir`): manifest.json (written last; the corpus is complete iff it is there),
faces.npy (N, S, S, 3) uint8, landmarks.npy (N, K, 2) float32 (x, y) in [0, 1], audio.pcm (all
clips, concatenated, int16 little-endian, 16 kHz mono), clip_offsets.npy (C + 1,) int64 sample
offsets into audio.pcm (clip c of identity i is row i * clips_per_identity + c), meta.jsonl (one
record per identity).
"""

from __future__ import annotations

import dataclasses
import json
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from speech2face.training.data.synthetic_face import (IMAGE_SIZE, LANDMARK_NAMES, N_LANDMARKS, FaceParams,
                                                     VoiceLinks, draw_face_params, estimate_face_traits,
                                                     face_measurements, render_face)
from speech2face.training.data.synthetic_voice import (ACCENTS, SAMPLE_RATE, SENTENCES, VARIANTS, VoiceParams,
                                                      estimate_f0, synthesize_clip)

__all__ = ["generate_corpus", "SyntheticPairs", "estimate_face_traits", "face_measurements", "estimate_f0",
           "draw_identity", "split_identities", "render_face", "RULES_VERSION", "FORMAT_VERSION",
           "GENDERS", "AGES", "LANDMARK_NAMES", "SAMPLE_RATE"]

FORMAT_VERSION = 1
RULES_VERSION = 4
CHUNK_SIZE = 40           # identities per fresh worker process (fixed: it is part of the determinism)
GENDERS = ("male", "female")
AGES = ("young", "middle", "old")

# Voice rules by age bucket (young, middle, old): means of espeakPITCH, espeakRANGE, espeakRATE.
AGE_PITCH = (62.0, 48.0, 34.0)
AGE_RANGE = (62.0, 48.0, 34.0)
AGE_RATE = (195.0, 170.0, 145.0)
PITCH_SD, RANGE_SD, RATE_SD = 7.0, 8.0, 8.0   # within-age spreads; their z-scores drive face geometry
# Within a bucket, pitch and rate fall by one bucket step as maturity goes 0 -> 1, plus noise; the
# two parts add up to about the within-bucket spreads above.
AGE_STEP_PITCH, AGE_STEP_RATE = 14.0, 25.0
NOISE_SD_PITCH, NOISE_SD_RATE = 5.0, 4.0
MAX_TILT = 4.0   # brightness: spectral tilt uniform in +-MAX_TILT dB per octave

_FILES = ("faces.npy", "landmarks.npy", "audio.pcm", "clip_offsets.npy", "meta.jsonl")


@dataclasses.dataclass(frozen=True)
class Identity:
    id: int
    gender: int
    age: int
    voice: VoiceParams
    face: FaceParams
    sentence_order: tuple


def draw_identity(seed: int, index: int) -> Identity:
    """An identity's latents and parameters, from its own random streams (independent of the others)."""
    latent = np.random.default_rng([seed, index, 0])
    gender, age = int(latent.integers(2)), int(latent.integers(3))
    # Age is continuous: `maturity` in [0, 1) places the identity inside its bucket. The voice's
    # means slide with it (a smooth, monotone cue), and so do the face's age cues.
    maturity = float(latent.uniform())
    slide = maturity - 0.5
    v = np.random.default_rng([seed, index, 1])
    variants = VARIANTS[gender]
    variant = int(v.integers(len(variants)))
    accent = int(v.integers(len(ACCENTS)))
    voice = VoiceParams(
        accent=ACCENTS[accent],
        variant=variants[variant],
        pitch=int(np.clip(round(v.normal(AGE_PITCH[age] - AGE_STEP_PITCH * slide, NOISE_SD_PITCH)), 0, 100)),
        pitch_range=int(np.clip(round(v.normal(AGE_RANGE[age], RANGE_SD)), 0, 100)),
        rate=int(np.clip(round(v.normal(AGE_RATE[age] - AGE_STEP_RATE * slide, NOISE_SD_RATE)), 100, 260)),
        word_gap=int(v.integers(0, 2)),
        snr_db=float(v.uniform(20, 40)),
        peak=float(v.uniform(0.3, 0.9)),
        tilt=round(float(v.uniform(-MAX_TILT, MAX_TILT)), 2),
    )
    sentence_order = tuple(int(k) for k in v.permutation(len(SENTENCES)))
    links = VoiceLinks(variant=2.0 * variant / (len(variants) - 1) - 1.0,
                       brightness=voice.tilt / MAX_TILT,
                       pitch=(voice.pitch - AGE_PITCH[age]) / PITCH_SD,
                       rate=(voice.rate - AGE_RATE[age]) / RATE_SD,
                       pitch_range=(voice.pitch_range - AGE_RANGE[age]) / RANGE_SD, maturity=maturity)
    face = draw_face_params(gender, age, links, np.random.default_rng([seed, index, 2]))
    return Identity(index, gender, age, voice, face, sentence_order)


def _clip_sentences(identity: Identity, clip: int, per_clip: int = 3) -> list[str]:
    order = identity.sentence_order
    start = (clip * per_clip) % len(order)
    return [SENTENCES[order[(start + k) % len(order)]] for k in range(per_clip)]


def _record(identity: Identity, texts: list[list[str]], lengths: list[int]) -> dict:
    voice = dataclasses.asdict(identity.voice) | {"voice_name": identity.voice.voice_name}
    face = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(identity.face).items()}
    return {"id": identity.id, "gender": identity.gender, "age": identity.age,
            "gender_name": GENDERS[identity.gender], "age_name": AGES[identity.age], "voice": voice, "face": face,
            "clips": [{"text": " ".join(t), "samples": n} for t, n in zip(texts, lengths)]}


def _generate_chunk(seed: int, start: int, stop: int, clips_per_identity: int, image_size: int) -> tuple:
    """Identities [start, stop). Must run in a fresh process (eSpeak NG's hidden state: see synthetic_voice)."""
    faces, marks, records, clips = [], [], [], []
    for index in range(start, stop):
        identity = draw_identity(seed, index)
        face, landmarks = render_face(identity.face, image_size)
        texts, lengths = [], []
        for c in range(clips_per_identity):
            audio, used = synthesize_clip(_clip_sentences(identity, c), identity.voice,
                                          np.random.default_rng([seed, index, 3, c]))
            clips.append(np.round(audio * 32767).astype("<i2"))
            texts.append(used)
            lengths.append(len(audio))
        faces.append(face)
        marks.append(landmarks)
        records.append(_record(identity, texts, lengths))
    return np.stack(faces), np.stack(marks), records, clips


def _chunk_worker(seed: int, start: int, stop: int, clips_per_identity: int, image_size: int, path: str) -> None:
    """Entry point of a chunk's process: writes `path` (.npz), atomically."""
    faces, marks, records, clips = _generate_chunk(seed, start, stop, clips_per_identity, image_size)
    tmp = path + ".tmp.npz"
    np.savez(tmp, faces=faces, landmarks=marks, audio=np.concatenate(clips),
             lengths=np.asarray([len(c) for c in clips], np.int64),
             meta=np.frombuffer("\n".join(json.dumps(r) for r in records).encode(), np.uint8))
    os.replace(tmp, path)


def _run_chunks(tasks: list[tuple], chunk_dir: Path, workers: int, verbose: bool, progress: bool = False) -> None:
    """Each pending chunk in its own fresh interpreter, at most `workers` at a time."""
    pending = [t for t in tasks if not (chunk_dir / f"{t[1]:07d}.npz").exists()]
    running: list[tuple[subprocess.Popen, tuple]] = []
    done = len(tasks) - len(pending)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), initial=done, desc=f"synthetic corpus -> {chunk_dir.parent}", unit="chunk")
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                task = pending.pop(0)
                args = ", ".join(repr(a) for a in task) + f", {str(chunk_dir / f'{task[1]:07d}.npz')!r}"
                code = f"from {__name__} import _chunk_worker; _chunk_worker({args})"
                running.append((subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT), task))
            process, task = running[0]
            output = process.communicate()[0]
            running.pop(0)
            if process.returncode != 0:
                raise RuntimeError(f"synthetic corpus: chunk {task[1]}..{task[2]} failed "
                                   f"(exit {process.returncode}):\n{output.decode(errors='replace')[-4000:]}")
            done += 1
            if bar is not None:
                bar.update(1)
            if verbose:
                print(f"synthetic corpus: chunk {done}/{len(tasks)} done", flush=True)
    finally:
        if bar is not None:
            bar.close()
        for process, _ in running:
            process.kill()
            process.wait()


def _manifest_key(n_identities: int, clips_per_identity: int, seed: int, image_size: int) -> dict:
    return {"format": "speech2face-synthetic-corpus", "format_version": FORMAT_VERSION,
            "rules_version": RULES_VERSION, "seed": int(seed), "n_identities": int(n_identities),
            "clips_per_identity": int(clips_per_identity), "image_size": int(image_size), "chunk_size": CHUNK_SIZE}


def read_manifest(root: str | Path) -> dict | None:
    path = Path(root) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def generate_corpus(out_dir: str | Path, n_identities: int, clips_per_identity: int = 2, seed: int = 0,
                    workers: int = 2, *, image_size: int = IMAGE_SIZE, verbose: bool = False,
                    progress: bool = False) -> Path:
    """Write the corpus to `out_dir` and return it; a no-op when its manifest already matches.

    Identities are generated in fixed chunks of CHUNK_SIZE, each in a fresh Python process (at
    most `workers` at a time), so the output depends on the seed only, never on `workers`. An
    interrupted run resumes from the chunks it finished (kept under `out_dir/.chunks-*`).
    `progress`: a progress bar (tqdm, on stderr) over the chunks.
    """
    out = Path(out_dir)
    key = _manifest_key(n_identities, clips_per_identity, seed, image_size)
    manifest = read_manifest(out)
    if manifest is not None and all(manifest.get(k) == v for k, v in key.items()) \
            and all((out / f).exists() for f in _FILES):
        return out
    if n_identities < 1 or clips_per_identity < 1:
        raise ValueError("n_identities and clips_per_identity must be >= 1")
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    started = time.time()
    key_hash = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    chunk_dir = out / f".chunks-{key_hash}"
    chunk_dir.mkdir(exist_ok=True)
    tasks = [(seed, s, min(s + CHUNK_SIZE, n_identities), clips_per_identity, image_size)
             for s in range(0, n_identities, CHUNK_SIZE)]
    _run_chunks(tasks, chunk_dir, workers, verbose, progress)

    faces = np.zeros((n_identities, image_size, image_size, 3), np.uint8)
    landmarks = np.zeros((n_identities, N_LANDMARKS, 2), np.float32)
    offsets = [0]
    with open(out / "audio.pcm.tmp", "wb") as audio_file, open(out / "meta.jsonl.tmp", "w") as meta_file:
        for _, start, stop, _, _ in tasks:
            with np.load(chunk_dir / f"{start:07d}.npz") as chunk:
                faces[start:stop], landmarks[start:stop] = chunk["faces"], chunk["landmarks"]
                audio_file.write(chunk["audio"].astype("<i2").tobytes())
                offsets.extend((offsets[-1] + np.cumsum(chunk["lengths"])).tolist())
                meta_file.write(chunk["meta"].tobytes().decode() + "\n")
    np.save(out / "faces.npy", faces)
    np.save(out / "landmarks.npy", landmarks)
    np.save(out / "clip_offsets.npy", np.asarray(offsets, np.int64))
    os.replace(out / "audio.pcm.tmp", out / "audio.pcm")
    os.replace(out / "meta.jsonl.tmp", out / "meta.jsonl")
    shutil.rmtree(chunk_dir, ignore_errors=True)
    seconds = time.time() - started
    manifest = key | {
        "sample_rate": SAMPLE_RATE, "n_clips": len(offsets) - 1, "audio_seconds": round(offsets[-1] / SAMPLE_RATE, 1),
        "audio": {"file": "audio.pcm", "dtype": "int16", "byteorder": "little", "scale": 32768,
                  "offsets": "clip_offsets.npy", "clip_index": "identity * clips_per_identity + clip"},
        "faces": "faces.npy", "landmarks": "landmarks.npy", "meta": "meta.jsonl",
        "n_landmarks": N_LANDMARKS, "landmark_names": list(LANDMARK_NAMES), "landmark_coordinates": "(x, y) in [0, 1]",
        "genders": list(GENDERS), "ages": list(AGES), "generation_seconds": round(seconds, 1),
        "note": "synthetic data: eSpeak NG voices and drawn faces, not real people",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def split_identities(n_identities: int, seed: int, val_fraction: float = 0.1,
                     test_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Identity ids (sorted) of each split: a seeded permutation cut into test, val, train."""
    order = np.random.default_rng([seed, 0x5917]).permutation(n_identities)
    n_test = int(round(test_fraction * n_identities)) if test_fraction > 0 else 0
    n_val = int(round(val_fraction * n_identities)) if val_fraction > 0 else 0
    if n_identities >= 3:
        n_test, n_val = max(n_test, 1 if test_fraction > 0 else 0), max(n_val, 1 if val_fraction > 0 else 0)
    if n_test + n_val >= n_identities:
        raise ValueError(f"{n_identities} identities are too few for val {val_fraction} and test {test_fraction}")
    return {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]),
            "train": np.sort(order[n_test + n_val:])}


class SyntheticPairs:
    """One item per clip of the identities in `split` ('train', 'val', 'test' or 'all').

    Items: `audio` (float32, 16 kHz mono, variable length), `sample_rate` (16000), `face`
    (uint8 HxWx3), `landmarks` (float32 Kx2, (x, y) in [0, 1]), `identity` (int, the corpus id),
    `gender` (0 male, 1 female), `age` (0 young, 1 middle, 2 old), `clip` (index within the
    identity). Splits are by identity, so held-out identities never appear in train. Plain
    indexable (no torch needed); safe to pickle into DataLoader workers.
    """

    def __init__(self, root: str | Path, split: str = "train", val_fraction: float = 0.1,
                 test_fraction: float = 0.1):
        self.root = Path(root)
        manifest = read_manifest(self.root)
        if manifest is None:
            raise FileNotFoundError(f"{self.root}: no synthetic corpus (manifest.json missing); run generate_corpus")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.root}: corpus format {manifest.get('format_version')}, expected {FORMAT_VERSION}")
        self.manifest = manifest
        self.split = split
        n, self.clips_per_identity = manifest["n_identities"], manifest["clips_per_identity"]
        if split == "all":
            self.identities = np.arange(n)
        elif split in ("train", "val", "test"):
            self.identities = split_identities(n, manifest["seed"], val_fraction, test_fraction)[split]
        else:
            raise ValueError(f"split must be 'train', 'val', 'test' or 'all', not {split!r}")
        with open(self.root / "meta.jsonl") as f:
            records = [json.loads(line) for line in f]
        self.records = {int(r["id"]): r for r in records}
        self.faces = np.load(self.root / "faces.npy", mmap_mode="r")
        self.landmarks = np.load(self.root / "landmarks.npy", mmap_mode="r")
        self.offsets = np.load(self.root / "clip_offsets.npy")
        self._audio = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_audio"] = None
        return state

    @property
    def audio_samples(self) -> np.ndarray:
        if self._audio is None:
            self._audio = np.memmap(self.root / "audio.pcm", dtype="<i2", mode="r")
        return self._audio

    def __len__(self) -> int:
        return len(self.identities) * self.clips_per_identity

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        identity = int(self.identities[index // self.clips_per_identity])
        clip = index % self.clips_per_identity
        row = identity * self.clips_per_identity + clip
        pcm = self.audio_samples[self.offsets[row]:self.offsets[row + 1]]
        record = self.records[identity]
        return {"audio": pcm.astype(np.float32) / 32768.0, "sample_rate": SAMPLE_RATE,
                "face": np.array(self.faces[identity]), "landmarks": np.array(self.landmarks[identity]),
                "identity": identity, "gender": int(record["gender"]), "age": int(record["age"]), "clip": clip}

    def record(self, identity: int) -> dict:
        """The identity's metadata: gender, age, voice and face parameters, clip texts."""
        return self.records[int(identity)]
