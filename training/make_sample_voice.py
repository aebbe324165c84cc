"""Writes `assets/voice_sample.wav`, the demo's bundled clip: synthetic speech (eSpeak NG), not a person."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile

from speech2face.training.data.synthetic_voice import SAMPLE_RATE, VoiceParams, synthesize_clip

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "A face from a voice, served by Triton on any machine."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("assets/voice_sample.wav"))
    args = parser.parse_args()
    voice = VoiceParams(accent="en", variant="f2", pitch=55, pitch_range=55, rate=170, word_gap=0,
                        snr_db=40.0, peak=0.7)
    clip, _ = synthesize_clip(SENTENCES, voice, np.random.default_rng(7), min_seconds=3.0, max_seconds=6.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(args.out, clip, SAMPLE_RATE, subtype="PCM_16")
    print(f"{args.out}: {len(clip) / SAMPLE_RATE:.1f} s at {SAMPLE_RATE} Hz")


if __name__ == "__main__":
    main()
