"""`python -m gazeqwen_edge.training [train options]`: `gazeqwen-edge train`, e.g. data parallel on N GPUs under
`accelerate launch --num_processes N -m gazeqwen_edge.training --torch-device cuda --qa data/train.json --out
runs/train` (see `gazeqwen-edge train --help` and training/distributed.py)."""

import sys

from gazeqwen_edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
