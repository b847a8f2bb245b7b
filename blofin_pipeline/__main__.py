"""``python -m blofin_pipeline``: the command line (see `blofin_pipeline.cli`)."""
import sys

from blofin_pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
