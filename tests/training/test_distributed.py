"""Data-parallel training under `accelerate launch` (training/distributed.py, trainer.py): two CPU processes at batch
b train as one process at batch 2b over the same item order (to rounding), and end with identical weights (the
trainer's closing check fails the run otherwise).

Sharding: each epoch's seeded order of the items is cut to a multiple of P processes and process i takes positions
i, i+P, ...; so one optimizer step of the two processes' micro-batches of b items (gradients averaged by one
all-reduce) covers the same 2b items as one step of a single process at batch 2b, and the scanpath augmentation is
seeded per item. With the "letter" objective (a mean of per-item losses) the two runs then agree to rounding; the
"answer" objective averages over answer tokens per process, which weighs items differently (documented, not tested
for equality).

The launch: `accelerate launch --cpu --num_processes 2` starts ONE process (accelerate starts several CPU processes
only through mpirun with a hostfile), so the test launches with `--multi_gpu`, which starts them through torchrun;
the model on the CPU makes the trainer pick gloo. CUDA is hidden from the processes and HF_HOME points to an empty
folder, so neither a GPU nor a user's accelerate config changes the run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
STEPS = 5  # optimizer steps: 5 x 4 items of the 23 (the 2-process order uses 22, the single one all 23)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_epoch_order_gives_every_process_as_many_items_in_the_single_order(world):
    """Equal shares (the all-reduce needs the same number of steps everywhere), disjoint, and interleaved they are
    the single-process order less its last n mod world items; another epoch, another order."""
    from gazeqwen_edge.errors import InputError
    from gazeqwen_edge.training.trainer import epoch_order

    for n in range(world, 12):
        single = epoch_order(n, 3, 1)
        assert sorted(single.tolist()) == list(range(n))
        shares = [epoch_order(n, 3, 1, r, world) for r in range(world)]
        assert {len(s) for s in shares} == {n // world}
        interleaved = torch.tensor(list(zip(*shares, strict=True))).flatten().tolist()
        assert interleaved == single[: n - n % world].tolist()
    assert epoch_order(11, 3, 2).tolist() != epoch_order(11, 3, 1).tolist()
    if world > 1:
        with pytest.raises(InputError, match="processes"):
            epoch_order(world - 1, 3, 1, 0, world)


def test_each_launched_process_takes_its_own_gpu(monkeypatch):
    from gazeqwen_edge.errors import ConfigError
    from gazeqwen_edge.training.distributed import LaunchEnv, launch_env, process_device

    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert launch_env() == LaunchEnv(0, 0, 1) and launch_env().is_main
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    env = launch_env()
    assert env == LaunchEnv(3, 1, 4) and not env.is_main
    assert process_device("cuda", env) == "cuda:1" and process_device("cpu", env) == "cpu"
    assert process_device("cuda:1", LaunchEnv(0, 0, 1)) == "cuda:1"  # one process: as given
    with pytest.raises(ConfigError, match="its own GPU"):
        process_device("cuda:0", env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "RANK", "LOCAL_RANK", "WORLD_"))}
    env.update(
        OMP_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
        HF_HOME=str(tmp / "hf"),  # no default accelerate config of the user's
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def _train_args(qa: Path, out: Path, batch: int, cache: Path) -> list[str]:
    return [
        "-m",
        "gazeqwen_edge.training",
        "--qa",
        str(qa),
        "--val",
        str(qa),  # 23 items: the processes validate 12 and 11
        "--out",
        str(out),
        "--stage",
        "1",
        "--objective",
        "letter",
        "--max-pixels",
        "3136",
        "--clip-seconds",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        str(batch),
        "--grad-accum",
        "1",
        "--lr",
        "0.05",
        "--max-steps",
        str(STEPS),
        "--cache-dir",
        str(cache),
        "--torch-device",
        "cpu",
    ]


def _run(cmd: list[str], tmp: Path) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=ROOT, env=_env(tmp), capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, f"{' '.join(cmd)}\nexit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return r


def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def _params(out: Path) -> torch.Tensor:
    blob = torch.load(out / "last" / "trainer.pt", weights_only=False)
    return torch.cat([p.flatten() for p in blob["params"]])


@pytest.fixture(scope="module")
def qa23(toy_qa) -> Path:
    """The toy set less one question: 23 items, so the 2-process order is cut (one item of each epoch left out)."""
    items = json.loads(toy_qa.read_text())
    items[0]["questions"] = items[0]["questions"][:-1]
    path = toy_qa.parent / "qa23.json"
    path.write_text(json.dumps(items))
    return path


def test_two_processes_train_as_one_with_the_double_batch(qa23, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
    ]
    r2 = _run(launch + _train_args(qa23, two, 2, tmp_path / "cache"), tmp_path)  # a shared feature cache
    _run([sys.executable] + _train_args(qa23, one, 4, tmp_path / "cache1"), tmp_path)

    # only the main process logs and prints: each step once, one validation, one summary line
    recs2, recs1 = _records(two), _records(one)
    assert [r["step"] for r in recs2 if "loss" in r] == list(range(1, STEPS + 1))
    assert len([r for r in recs2 if "val_accuracy" in r]) == 1
    assert r2.stdout.count("optimizer steps; best validation accuracy") == 1
    assert (two / "best" / "gazeqwen.json").is_file() and not list((tmp_path / "cache").glob("*.tmp"))

    # the same steps: the losses (means over both processes) and the trained resampler agree with one process
    losses2 = [r["loss"] for r in recs2 if "loss" in r]
    losses1 = [r["loss"] for r in recs1 if "loss" in r]
    assert losses2 == pytest.approx(losses1, abs=1e-4)
    p2, p1 = _params(two), _params(one)
    from gazeqwen_edge.cli.training import _model

    start = torch.cat(
        [p.detach().flatten() for p in _model("tiny", None, "cpu", "spatial", "stream", 3136).resampler.parameters()]
    )
    change = float((p1 - start).abs().max())
    assert change > 1e-2  # it trained
    # equal up to rounding: batches of 2 and 4 pad and multiply differently (~1e-7 relative in the gradients), and
    # Adam's g / (sqrt(v) + eps) magnifies that in the few weights whose gradient is near eps (measured: 234 of 61572
    # weights off by more than 1e-6, the largest by 4e-5, against changes of up to 3.6e-2; one process training on
    # its own half of each batch is off by the order of the change itself)
    torch.testing.assert_close(p2, p1, atol=1e-4, rtol=0)
    assert float((p2 - p1).norm() / (p1 - start).norm()) < 1e-3
    # validation split over the processes, counts summed: the same accuracy as one process scoring all
    val2 = [r["val_accuracy"] for r in recs2 if "val_accuracy" in r]
    val1 = [r["val_accuracy"] for r in recs1 if "val_accuracy" in r]
    assert val2 == val1 and [r["val_items"] for r in recs2 if "val_items" in r] == [23]
