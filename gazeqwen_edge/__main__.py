"""`python -m gazeqwen_edge ...`: the `gazeqwen-edge` command (e.g. where the script's directory is not on PATH)."""

import sys

from gazeqwen_edge.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
