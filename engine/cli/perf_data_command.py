"""`s2f perf-data`: perf_analyzer's --input-data files (samples.json, files.json) from real clips."""

from __future__ import annotations


def add(commands) -> None:
    perf_data = commands.add_parser(
        "perf-data", help="write perf_analyzer --input-data JSON from audio clips (samples.json, files.json)")
    perf_data.add_argument("--out", required=True, help="folder to write samples.json and files.json into")
    perf_data.add_argument("--audio", nargs="+", action="extend", metavar="CLIP",
                           help="WAV/FLAC/OGG clips, one input-data entry each (default: the bundled sample voice)")
    perf_data.set_defaults(run=run)


def run(args) -> int:
    from speech2face.benchmarks.loadgen.perf_data import write_perf_data
    from speech2face.engine import contract
    from speech2face.engine.runtime.builtin import SAMPLE_VOICE

    paths = write_perf_data(args.audio or [SAMPLE_VOICE], args.out)
    print(f"{paths['samples']}  (perf_analyzer -m {contract.SAMPLES_MODEL} --input-data {paths['samples']})")
    print(f"{paths['files']}  (perf_analyzer -m {contract.FILE_MODEL} --input-data {paths['files']})")
    return 0
