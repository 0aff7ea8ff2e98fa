"""Data parallelism for the trainer: which process am I (before accelerate is set up), which device each process
trains on, and the collectives the trainer runs (one flat all-reduce of the gradients, one broadcast of the initial
trainable weights, a check that every process still holds the same weights).

Launching: `accelerate launch --num_processes N -m gazeqwen_edge.training [train options]`. accelerate starts N
processes through torchrun (on a machine with several GPUs it does so by itself; on CPUs only `--multi_gpu` makes it:
`--cpu --num_processes N` starts ONE process unless an MPI hostfile is given) and sets RANK, LOCAL_RANK, WORLD_SIZE;
`torchrun --nproc_per_node N -m gazeqwen_edge.training ...` is the same. The trainer then picks the gloo backend for a
model on the CPU and NCCL for one on a GPU (its own: cuda:LOCAL_RANK, see `process_device`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from gazeqwen_edge.errors import ConfigError

# the variables torchrun / accelerate launch set, then those of the MPI launchers accelerate also reads
_RANK = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_LOCAL_RANK = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")
_WORLD = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _env_int(names: tuple[str, ...], default: int) -> int:
    for n in names:
        v = os.environ.get(n)
        if v not in (None, ""):
            return int(v)
    return default


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place in a launch, from the launcher's environment variables (rank 0 of 1 when not launched):
    rank (0 .. world_size-1, 0 is the main process), local_rank (its index on this machine), world_size."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch_env() -> LaunchEnv:
    """Read RANK / LOCAL_RANK / WORLD_SIZE (or the MPI equivalents) without initialising torch.distributed, so the
    command line can quiet its non-main processes before the trainer's Accelerator exists."""
    return LaunchEnv(_env_int(_RANK, 0), _env_int(_LOCAL_RANK, 0), _env_int(_WORLD, 1))


def process_device(dev: str, env: LaunchEnv | None = None) -> str:
    """The torch device this process trains on: `dev` as given in a single process; under a multi-process launch a
    CUDA device becomes this process's own GPU, cuda:LOCAL_RANK (choose the GPUs with CUDA_VISIBLE_DEVICES or
    accelerate's --gpu_ids). Raises ConfigError for a CUDA device with an index under such a launch (every process
    would share that one GPU)."""
    env = env or launch_env()
    d = torch.device(dev)
    if env.world_size <= 1 or d.type != "cuda":
        return dev
    if d.index is not None:
        raise ConfigError(
            f"--torch-device {dev}: under a launch of {env.world_size} processes each process takes its own GPU",
            hint="pass --torch-device cuda (process k uses cuda:LOCAL_RANK; pick GPUs with CUDA_VISIBLE_DEVICES)",
        )
    return f"cuda:{env.local_rank}"


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).float() for t in tensors])


def _unflat(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(flat[i : i + t.numel()].view_as(t).to(t.dtype))
        i += t.numel()
    return out


def average_gradients(params: list[torch.nn.Parameter], acc) -> None:
    """Replace each parameter's gradient by its mean over the processes (one all-reduce of all gradients flattened
    into one float32 buffer). A parameter without a gradient on this process (unused by its micro-batches) counts
    as zeros, so every process takes part in the same collective whatever its batches held."""
    if acc.num_processes <= 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    mean = acc.reduce(_flat(grads), reduction="mean")
    for p, g in zip(params, _unflat(mean, grads), strict=True):
        p.grad = g


def broadcast_parameters(params: list[torch.nn.Parameter], acc) -> None:
    """Copy the main process's values of `params` to every process (the trainable weights before the first step:
    a randomly initialised resampler or LoRA then starts the same everywhere)."""
    if acc.num_processes <= 1 or not params:
        return
    from accelerate.utils import broadcast

    flat = broadcast(_flat(list(params)).to(acc.device), from_process=0)
    with torch.no_grad():
        for p, v in zip(params, _unflat(flat, list(params)), strict=True):
            p.copy_(v)


def check_in_sync(params: list[torch.nn.Parameter], acc, rtol: float = 1e-6) -> None:
    """Raise RuntimeError on every process when the processes' `params` differ (compared through the float64 sum
    and sum of squares of each process's values, gathered): data parallelism that lost its all-reduce."""
    if acc.num_processes <= 1 or not params:
        return
    with torch.no_grad():
        s = sum(torch.sum(p, dtype=torch.float64) for p in params)
        q = sum(torch.sum(p.double() ** 2) for p in params)
        stats = acc.gather(torch.stack([s, q]).reshape(1, 2).to(acc.device)).cpu()
    if not torch.allclose(stats, stats[:1].expand_as(stats), rtol=rtol, atol=0.0):
        raise RuntimeError(
            f"the processes' trainable weights differ (sum, sum of squares per process: {stats.tolist()})"
        )


def reduce_sum(values: list[float], acc) -> list[float]:
    """The sums over the processes of a few numbers (counts for the validation accuracy), in float64."""
    t = torch.tensor(values, dtype=torch.float64, device=acc.device)
    if acc.num_processes > 1:
        t = acc.reduce(t, reduction="sum")
    return t.tolist()


def reduce_mean(value: float, acc) -> float:
    """The mean over the processes of one number (a logged loss)."""
    if acc.num_processes <= 1:
        return value
    return float(acc.reduce(torch.tensor([value], dtype=torch.float64, device=acc.device), reduction="mean")[0])
