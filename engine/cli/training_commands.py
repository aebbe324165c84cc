"""`s2f data`, `s2f train`, `s2f train-default` and `s2f eval`: the training recipe's commands.

PyTorch loads only when one of them runs. Training writes checkpoints; exporting the ONNX bundle
(export/, a layer above training) and evaluating it are steps these commands add.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from speech2face.engine.cli.common import UsageError


def add(commands) -> None:
    _add_data(commands)
    _add_train(commands)
    _add_train_default(commands)
    _add_recipe_spread(commands)
    _add_eval(commands)


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="prepare AVSpeech or VoxCeleb into the folder `s2f train` reads")
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


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="train the three stages on a folder made by `s2f data`")
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


# `s2f train-default` options that override a field of training/train_default.DefaultRecipe (None keeps it;
# the defaults live there alone, and importing it here would load PyTorch to build the parser).
RECIPE_OPTIONS = {"identities": (int, "identities in the synthetic corpus"),
                  "voice_epochs": (int, "voice encoder epochs"), "face_epochs": (int, "face encoder epochs"),
                  "decoder_epochs": (int, "face decoder epochs"),
                  "face_attribute_weight": (float, "face encoder: attribute regression weight beside "
                                                   "instance discrimination"),
                  "voice_preset": (str, "voice encoder preset"),
                  "voice_crop_frames": (int, "spectrogram frames per voice training window (100 per second)"),
                  "train_seed": (int, "seed of every training generator (the corpus keeps its own)"),
                  "threads": (int, "PyTorch threads (results are reproducible for a fixed count)")}


def _add_train_default(commands) -> None:
    recipe = commands.add_parser("train-default", help="rebuild the built-in model: synthetic corpus, three "
                                                       "stages, export, evaluation (also under torchrun)")
    recipe.add_argument("--data", type=Path, default=Path("artifacts/synthetic-corpus"))
    recipe.add_argument("--work", type=Path, default=Path("artifacts/train-default"))
    recipe.add_argument("--out", type=Path, default=Path("artifacts/default-model"),
                        help="bundle folder (make train-default passes models/default, the committed built-in model)")
    recipe.add_argument("--workers", type=int, default=2, help="processes generating the corpus")
    for field, (kind, text) in RECIPE_OPTIONS.items():
        recipe.add_argument(f"--{field.replace('_', '-')}", type=kind, help=f"{text} (default: the recipe's)")
    recipe.set_defaults(run=run_train_default)


def _add_recipe_spread(commands) -> None:
    spread = commands.add_parser("recipe-spread", help="rebuild the built-in model once per training seed and "
                                                       "write the spread of every figure (spread.json)")
    spread.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    spread.add_argument("--guard", action="store_true",
                        help="the recipe guard's reduced recipe (guard_spread.json) instead of the full one")
    spread.add_argument("--data", type=Path, default=Path("artifacts/synthetic-corpus"))
    spread.add_argument("--root", type=Path, help="one folder per seed, reused when finished "
                                                  "(default: artifacts/seeds or artifacts/seeds-guard)")
    spread.add_argument("--out", type=Path, default=Path("artifacts/default-model"),
                        help="where the spread goes (models/default: the built-in model's folder)")
    spread.add_argument("--ship", action="store_true", help="also copy the median seed's bundle into --out")
    spread.add_argument("--workers", type=int, default=2, help="processes generating the corpus")
    spread.set_defaults(run=run_recipe_spread)


def _add_eval(commands) -> None:
    evaluation = commands.add_parser("eval", help="retrieval R@K and attribute agreement on held-out identities")
    evaluation.add_argument("--checkpoint", help="default: the built-in model's checkpoint")
    evaluation.add_argument("--data", help="synthetic corpus folder (default: the checkpoint recipe's own, "
                                           "generated and cached when missing)")
    evaluation.add_argument("--out", help="folder for evaluation.json and EVALUATION.md (default: "
                                          "artifacts/eval/<checkpoint folder>; --out models/default rewrites the "
                                          "built-in model's committed report)")
    evaluation.add_argument("--report", help="markdown report path (default: OUT/EVALUATION.md)")
    evaluation.add_argument("--json", action="store_true", help="print the metrics as one JSON object last")
    evaluation.set_defaults(run=run_eval)


def run_data(args: argparse.Namespace) -> int:
    try:
        if args.corpus == "avspeech":
            from speech2face.training.data.prepare_avspeech import prepare_avspeech

            manifest = prepare_avspeech(args.csv, args.out, args.media_dir, args.workers, args.face_size)
        else:
            from speech2face.training.data.prepare_voxceleb import prepare_voxceleb

            manifest = prepare_voxceleb(args.root, args.out, args.workers, args.face_size)
    except ModuleNotFoundError:
        raise   # main names the extra
    except (ValueError, RuntimeError, OSError, ImportError) as error:   # ImportError: no landmark model
        raise UsageError(str(error)) from None
    print(f"{args.out}: {manifest['prepared']} prepared, {len(manifest['failed'])} failed "
          f"(reasons in {args.out / 'manifest.json'})")
    return 0 if manifest["prepared"] else 2


def run_train(args: argparse.Namespace) -> int:
    from speech2face.engine.runtime.builtin import ARTIFACTS
    from speech2face.training.train_command import TrainOptions, train_on_folder

    epochs = {k: args.epochs if args.epochs is not None else getattr(args, k)
              for k in ("face_epochs", "decoder_epochs", "voice_epochs")}
    options = TrainOptions(face_encoder=args.face_encoder, vgg_face_weights=args.vgg_face_weights,
                           voice_preset=args.voice_preset, decoder_preset=args.decoder_preset,
                           batch_size=args.batch_size, resampler=args.resampler, **epochs)
    out = args.out or ARTIFACTS / "train" / args.data.resolve().name
    try:
        checkpoint, summary = train_on_folder(args.data, out, args.work or out / "work", options)
        if not args.no_export:
            from speech2face.export.build import export_bundle

            export_bundle(checkpoint, out)
    except (ValueError, RuntimeError, OSError) as error:
        raise UsageError(str(error)) from None
    print(json.dumps({**summary, "checkpoint": str(checkpoint), "bundle": None if args.no_export else str(out)}))
    return 0


def run_train_default(args: argparse.Namespace) -> int:
    from speech2face.training import train_default

    overrides = {f: getattr(args, f) for f in RECIPE_OPTIONS if getattr(args, f) is not None}
    recipe = train_default.DefaultRecipe(**overrides)
    trained = train_default.train(args.data, args.work, recipe, args.workers)
    if trained is not None:   # the main process of a torchrun group publishes
        publish(trained.checkpoint, args.out, trained.test_pairs)
    return 0


def run_recipe_spread(args: argparse.Namespace) -> int:
    import dataclasses
    import shutil

    from speech2face.training import train_default
    from speech2face.training.evaluation import spread

    base = train_default.guard_recipe() if args.guard else train_default.DefaultRecipe()
    root = args.root or Path("artifacts/seeds-guard" if args.guard else "artifacts/seeds")
    per_seed, folders = {}, {}
    for seed in sorted(set(args.seeds)):
        recipe = dataclasses.replace(base, train_seed=seed)
        folders[seed] = root / str(seed) / "model"
        if not _finished(folders[seed], recipe):
            trained = train_default.train(args.data, root / str(seed) / "work", recipe, args.workers)
            publish(trained.checkpoint, folders[seed], trained.test_pairs)
        per_seed[seed] = spread.figures(json.loads((folders[seed] / "evaluation.json").read_text()))
    command = "s2f recipe-spread --seeds " + " ".join(map(str, sorted(per_seed))) + " --guard" * args.guard
    summary = spread.summarise(per_seed, train_default.recipe_record(base), command)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ship:
        for name in SHIPPED_FILES:
            shutil.copyfile(folders[summary["median_seed"]] / name, args.out / name)
    spread.write(args.out / (spread.GUARD_SPREAD_FILE if args.guard else spread.SPREAD_FILE), summary)
    if (args.out / "evaluation.json").exists():   # the folder's report gains the spread (and is printed)
        _write_report(json.loads((args.out / "evaluation.json").read_text()), args.out)
    else:
        print(spread.markdown(summary, "Spread across seeds"))
    return 0


# What a published bundle folder holds (publish writes them; --ship copies them).
SHIPPED_FILES = ("checkpoint.pt", "voice_encoder.onnx", "face_decoder.onnx", "model.json", "evaluation.json")


def _finished(model_dir: Path, recipe) -> bool:
    """A seed's bundle is reused when it was published and trained with exactly this recipe."""
    from speech2face.training.train_default import recipe_record

    try:
        provenance = json.loads((model_dir / "model.json").read_text())["provenance"]
    except (OSError, ValueError, KeyError):
        return False
    return (model_dir / "evaluation.json").exists() and \
        provenance.get("recipe") == recipe_record(recipe)


def _write_report(result: dict, out_dir: Path) -> None:
    from speech2face.training.evaluation.evaluate import BUILTIN_TITLE, markdown_report
    from speech2face.training.evaluation.spread import with_spreads

    report = with_spreads(markdown_report(result, BUILTIN_TITLE), out_dir)
    (out_dir / "EVALUATION.md").write_text(report)
    print(report)


def publish(checkpoint: Path, out_dir: Path, test_pairs) -> None:
    """Bundle (ONNX, parity-checked) + checkpoint + evaluation report into `out_dir`."""
    import shutil

    from speech2face.export.build import export_bundle
    from speech2face.training.checkpoint import load_checkpoint
    from speech2face.training.data.synthetic import estimate_face_traits
    from speech2face.training.evaluation.evaluate import evaluate

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, out_dir / "checkpoint.pt")
    export_bundle(out_dir / "checkpoint.pt", out_dir)
    result = evaluate(load_checkpoint(out_dir / "checkpoint.pt"), test_pairs, estimate_face_traits)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    _write_report(result, out_dir)


def run_eval(args) -> int:
    """Held-out evaluation of a checkpoint (training/evaluation/eval_command.py)."""
    from speech2face.engine.runtime.builtin import ARTIFACTS, BUILTIN_BUNDLE
    from speech2face.training.evaluation.eval_command import run_eval as evaluate
    from speech2face.training.evaluation.evaluate import BUILTIN_TITLE

    checkpoint = Path(args.checkpoint or BUILTIN_BUNDLE / "checkpoint.pt")
    out = Path(args.out) if args.out else ARTIFACTS / "eval" / checkpoint.parent.name
    # The built-in bundle's report is committed: its title names no machine-specific path.
    title = BUILTIN_TITLE if args.checkpoint is None else f"Evaluation of {args.checkpoint}"
    try:
        result = evaluate(checkpoint, Path(args.data) if args.data else None, out,
                          Path(args.report) if args.report else None, title)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(result))
    return 0
