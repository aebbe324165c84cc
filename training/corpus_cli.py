"""`s2f data avspeech|voxceleb` and `s2f train`: registered on the `s2f` parser with nothing heavy
imported until a command runs (serving must not import torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_corpus_commands(subparsers) -> None:
    data = subparsers.add_parser("data", help="prepare AVSpeech or VoxCeleb into the folder `s2f train` reads")
    kinds = data.add_subparsers(dest="corpus", required=True)
    avspeech = kinds.add_parser("avspeech", help="AVSpeech CSV rows -> 16 kHz FLAC clips, middle frames, landmarks")
    avspeech.add_argument("csv", type=Path, help="AVSpeech CSV (ytid, start, end, face x, face y)")
    avspeech.add_argument("--media-dir", type=Path, help="videos you have (<ytid>.mp4|mkv|webm|mov); "
                                                         "default: fetch each with yt-dlp")
    vox = kinds.add_parser("voxceleb", help="VoxCeleb1/2 (wav or m4a, face videos or crops) -> FLAC, faces, landmarks")
    vox.add_argument("root", type=Path,
                     help="folder holding the official layout (wav/ or aac/, mp4/ or unzippedFaces/)")
    for parser in (avspeech, vox):
        parser.add_argument("--out", type=Path, required=True, help="output folder (rerun to resume)")
        parser.add_argument("--workers", type=int, default=4, help="items prepared in parallel (ffmpeg processes)")
        parser.add_argument("--face-size", type=int, default=224)
    data.set_defaults(run=run_data)

    train = subparsers.add_parser("train", help="train the three stages on a folder made by `s2f data`")
    train.add_argument("--data", type=Path, required=True)
    train.add_argument("--out", type=Path,
                       help="checkpoint and ONNX bundle folder (default: artifacts/train/<data name>)")
    train.add_argument("--work", type=Path, help="stage states, for resuming (default: OUT/work)")
    train.add_argument("--face-encoder", choices=("small", "vgg-face"), default="small")
    train.add_argument("--vgg-face-weights", help="vgg_face_dag.pth (PyTorch state dict) or vgg_face.mat (MatConvNet)")
    train.add_argument("--voice-preset", default="tiny", help="voice encoder preset: tiny, builtin, small, paper")
    train.add_argument("--decoder-preset", default="builtin", help="face decoder preset: builtin, small, paper")
    train.add_argument("--epochs", type=int, help="epochs of every stage (overrides the three below)")
    train.add_argument("--face-epochs", type=int, default=20)
    train.add_argument("--decoder-epochs", type=int, default=20)
    train.add_argument("--voice-epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--resampler", choices=("soxr_hq", "kernel"), default="soxr_hq")
    train.add_argument("--no-export", action="store_true", help="write the checkpoint only")
    train.set_defaults(run=run_train)


def _fail(command: str, error: BaseException) -> int:
    print(f"s2f {command}: error: {error}", file=sys.stderr)
    return 2


def run_data(args: argparse.Namespace) -> int:
    try:
        if args.corpus == "avspeech":
            from speech2face.training.data.prepare_avspeech import prepare_avspeech

            manifest = prepare_avspeech(args.csv, args.out, args.media_dir, args.workers, args.face_size)
        else:
            from speech2face.training.data.prepare_voxceleb import prepare_voxceleb

            manifest = prepare_voxceleb(args.root, args.out, args.workers, args.face_size)
    except (ValueError, RuntimeError, ImportError, OSError) as error:
        return _fail("data", error)
    print(f"{args.out}: {manifest['prepared']} prepared, {len(manifest['failed'])} failed "
          f"(reasons in {args.out / 'manifest.json'})")
    return 0 if manifest["prepared"] else 2


def run_train(args: argparse.Namespace) -> int:
    from speech2face.engine.builtin import ARTIFACTS
    from speech2face.training.train_command import TrainOptions, train_on_folder

    epochs = {k: args.epochs if args.epochs is not None else getattr(args, k)
              for k in ("face_epochs", "decoder_epochs", "voice_epochs")}
    options = TrainOptions(face_encoder=args.face_encoder, vgg_face_weights=args.vgg_face_weights,
                           voice_preset=args.voice_preset, decoder_preset=args.decoder_preset,
                           batch_size=args.batch_size, resampler=args.resampler, **epochs)
    out = args.out or ARTIFACTS / "train" / args.data.resolve().name
    try:
        train_on_folder(args.data, out, args.work or out / "work", options, export=not args.no_export)
    except (ValueError, RuntimeError, ImportError, OSError) as error:
        return _fail("train", error)
    return 0
