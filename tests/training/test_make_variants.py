"""`make demo-variants` trains each baseline exactly as `make demo-model` trains the demo model (the five-variant table
compares ways of feeding gaze, not recipes): read from `make -n`, the commands are the same but for the output paths
and each variant's own flags, which reach both training stages and the evaluation."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VARIANT_FLAGS = {
    "no_gaze": (["--variant", "no_gaze"], ["--variant", "no_gaze"]),
    "visual_prompt": (["--variant", "visual_prompt"], ["--variant", "visual_prompt"]),
    "gaze_text": (["--variant", "gaze_text"], ["--variant", "gaze_text"]),
    "reference": (["--gaze-encoding", "reference"], []),  # the encoding is saved with the model eval loads
}


def _commands(target: str) -> list[list[str]]:
    """The gazeqwen-edge commands `make -n target` would run, each as argv without the program."""
    out = subprocess.run(
        ["make", "-n", "-s", target, "VENV=.venv-unused"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    lines = out.replace("\\\n", " ").splitlines()
    return [shlex.split(ln)[1:] for ln in lines if ln.strip().startswith(".venv-unused/bin/gazeqwen-edge ")]


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _strip(argv: list[str], flags: list[str], name: str = "") -> list[str]:
    """argv without the variant's flags, and the variant's own directory read as the demo model's."""
    rest = list(argv)
    for i in range(0, len(flags), 2):
        j = rest.index(flags[i])
        assert rest[j + 1] == flags[i + 1]
        del rest[j : j + 2]
    return [a.replace(f"build/demo-variants/{name}/", "build/demo-model/") if name else a for a in rest]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_each_baseline_gets_the_demo_model_recipe_and_only_its_own_flags():
    demo = _commands("demo-model")
    demo_train = [c for c in demo if c[0] == "train"]
    demo_eval = [c for c in demo if c[0] == "eval"]
    assert len(demo_train) == 2 and len(demo_eval) == 1
    variants = _commands("demo-variants")
    table = [c for c in variants if c[0] == "eval-table"]
    assert len(table) == 1
    for name, (train_flags, eval_flags) in VARIANT_FLAGS.items():
        mine = [
            c for c in variants if c[0] in ("train", "eval") and f"build/demo-variants/{name}/" in _option(c, "--out")
        ]
        assert [c[0] for c in mine] == ["train", "train", "eval"], name
        for got, want in zip(mine[:2], demo_train, strict=True):
            assert _strip(got, train_flags, name) == want, name
        assert _strip(mine[2], eval_flags, name) == demo_eval[0], name
        # the second stage starts from this variant's first stage, and the evaluation scores its second stage
        assert _option(mine[1], "--model") == f"build/demo-variants/{name}/joint/best"
        assert _option(mine[2], "--model") == f"build/demo-variants/{name}/alerts/best"
        assert f"build/demo-variants/{name}/eval-test" in table[0]
    assert table[0][1] == "build/demo-model/eval-test"  # the demo model's own test run is the spatial row
