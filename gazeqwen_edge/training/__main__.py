"""`python -m gazeqwen_edge.training [train options]`: `gazeqwen-edge train`, e.g. under
`accelerate launch -m gazeqwen_edge.training --qa data/train.json --out runs/train`."""

import sys

from gazeqwen_edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
