import sys

from speech2face.engine.cli.main import main

sys.exit(main())
