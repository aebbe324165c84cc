from speech2face.bench.cli import main

raise SystemExit(main())
