"""``python -m batchgen``."""

from batchgen.cli import main

raise SystemExit(main())
