from speech2face.benchmarks.loadgen.cli import main

raise SystemExit(main())
