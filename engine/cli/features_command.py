"""`s2f features AUDIO -o OUT.npy`: one file's voice-encoder input, by any implementation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speech2face.engine.contract.feature_spec import FEATURE_KINDS, RESAMPLERS, FeatureSpec

IMPLEMENTATIONS = ("cpp", "reference", "dali")


def add(subparsers) -> argparse.ArgumentParser:
    """Registers the `features` command on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "features",
        help="compute the voice encoder's input features of one audio file",
        description="Reads a WAV/FLAC/OGG file (any rate 8-192 kHz, any channel count), resamples "
        "to 16 kHz (--resampler), applies the clip policy and writes the features as a float32 .npy "
        "of shape (frames, F, C).",
    )
    parser.add_argument("audio", type=Path, help="input audio file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .npy file")
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, default="cpp",
                        help="implementation (default cpp; dali supports magnitude_powerlaw and logmel)")
    parser.add_argument("--kind", choices=FEATURE_KINDS, default="complex_powerlaw")
    parser.add_argument("--clip-seconds", type=float, default=6.0)
    parser.add_argument("--trim-silence", action="store_true", help="drop leading/trailing silence")
    parser.add_argument("--resampler", choices=RESAMPLERS, default=FeatureSpec.resampler,
                        help="how other rates reach 16 kHz: soxr_hq (librosa's default; default) or kernel "
                        "(the C++ resampler the built-in model was trained with)")
    parser.set_defaults(run=run)
    return parser


def compute_file_features(audio_path: Path, spec: FeatureSpec, impl: str = "cpp"):
    from speech2face.engine.contract.audio_files import read_audio
    from speech2face.engine.features.resampling import validate_audio

    samples, rate = read_audio(audio_path)
    audio = validate_audio(samples, rate, spec)
    if impl == "cpp":
        from speech2face.engine.features.kernels import compute_features

        return compute_features([audio], spec)[0]
    if impl == "reference":
        from speech2face.engine.features.reference import reference_features

        return reference_features(audio, spec)
    if impl == "dali":
        from speech2face.engine.features.dali_features import check_spec, dali_features

        check_spec(spec)
        return dali_features([audio], spec)[0]
    raise ValueError(f"unknown implementation {impl!r}")


def run(args: argparse.Namespace) -> int:
    """Errors become one line on stderr and exit status 2."""
    try:
        spec = FeatureSpec(kind=args.kind, clip_seconds=args.clip_seconds,
                           trim_silence=bool(getattr(args, "trim_silence", False)),
                           resampler=getattr(args, "resampler", FeatureSpec.resampler))
        features = compute_file_features(args.audio, spec, args.impl)
        output = Path(args.output)
        if output.parent and not output.parent.exists():
            raise ValueError(f"{output.parent}: no such directory")
        import numpy as np

        np.save(output, features)
    except (ValueError, OSError) as error:  # AudioError/AudioFileError are ValueErrors
        print(f"s2f features: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{output}: {features.shape} float32 ({spec.kind}, {args.impl}, {spec.resampler})")
    return 0

