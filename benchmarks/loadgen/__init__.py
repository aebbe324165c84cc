"""The load generator (`s2f bench`): engines under load, side by side, on the same clips.

- clips.py: the deterministic voice-like clips (and their FLAC files for AUDIO_FILE);
- targets.py: the engines (Triton over samples, files or shared memory; FastAPI; in process);
- measure.py: the one load loop (closed loop or Poisson arrivals), answers checked, latencies kept;
  `s2f tune` and the soak test drive their load through it too;
- engines.py: starting each engine for a comparison, in interleaved rounds;
- report.py: the CSV/JSON/PNG files, the table and the goals;
- cli.py: the command line (`s2f bench`, or `python -m speech2face.benchmarks.loadgen`).
"""
