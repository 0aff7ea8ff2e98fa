"""Adding the gaze residuals to the LLM's video tokens.

Interface (`Injector`): `attach(model)` once, then

    with injector.inject(residuals, positions):   # residuals (M, B, P, D) for the M injected layers, positions (B, P)
        model(...)                                # ONE forward (a prefill, a streamed chunk): each injected layer adds
                                                  # residuals[m, b, p] to its output at sequence index positions[b, p]

Each injected layer fires once per `inject` (so a `generate()` call inside the block injects in its prefill only);
outside the block nothing is added: cached token-by-token decoding never sees residuals, the gaze effect lives in the
KV cache of the video tokens. `HookInjector` does this with forward hooks on
`model.model.language_model.layers[l]` (transformers 5: the layers return a tensor); a fused implementation (export)
can replace it behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from gazeqwen_edge.errors import InputError


def decoder_layers(model) -> torch.nn.ModuleList:
    """The LLM decoder layers of a Qwen2.5-VL model (ForConditionalGeneration, Model or the text model)."""
    for path in ("model.language_model.layers", "language_model.layers", "layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise TypeError(f"cannot find the decoder layers of {type(model).__name__}")


def video_token_positions(input_ids: torch.Tensor, video_token_id: int) -> torch.Tensor:
    """(B, L) token ids -> (B, P) sequence indices of each sample's video tokens, in order. Every sample must have the
    same number P of video tokens (padding elsewhere, left or right, is fine)."""
    mask = input_ids == video_token_id
    counts = mask.sum(1)
    if (counts != counts[0]).any():
        raise InputError(None, f"samples of a batch have different numbers of video tokens: {counts.tolist()}")
    p = int(counts[0])
    # stable sort puts the video tokens first, in sequence order
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    return order[:, :p]


def flatten_residuals(residuals: torch.Tensor) -> torch.Tensor:
    """(M, B, T, N, D) per temporal step -> (M, B, T*N, D) in video-token order (step-major)."""
    m, b, t, n, d = residuals.shape
    return residuals.reshape(m, b, t * n, d)


class Injector(ABC):
    """Adds per-layer residuals to chosen sequence positions during the next forward of the attached model."""

    def __init__(self, layers: Sequence[int]):
        self.layers = tuple(int(x) for x in layers)
        self._pending: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.fired: list[int] = []  # layers that added residuals since the last `inject` (for tests / profiling)

    @abstractmethod
    def attach(self, model) -> Injector: ...

    @abstractmethod
    def detach(self) -> None: ...

    @contextmanager
    def inject(self, residuals: torch.Tensor | None, positions: torch.Tensor | None) -> Iterator[None]:
        """residuals (M, B, P, D) (or (M, B, T, N, D)) and positions (B, P); None or an empty P: inject nothing."""
        if residuals is not None and residuals.dim() == 5:
            residuals = flatten_residuals(residuals)
        self.fired = []
        if residuals is not None and positions is not None and positions.numel() > 0:
            if residuals.shape[0] != len(self.layers):
                raise ValueError(f"{residuals.shape[0]} residual sets for {len(self.layers)} injected layers")
            if tuple(residuals.shape[1:3]) != tuple(positions.shape):
                raise ValueError(f"residuals {tuple(residuals.shape)} do not match positions {tuple(positions.shape)}")
            self._pending = {layer: (residuals[m], positions) for m, layer in enumerate(self.layers)}
        try:
            yield
        finally:
            self._pending = {}

    def _apply(self, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        item = self._pending.pop(layer, None)
        if item is None:
            return None
        res, pos = item
        b, length, _ = hidden.shape
        if pos.shape[0] != b or int(pos.max()) >= length:
            raise ValueError(
                f"injection positions {tuple(pos.shape)} (max {int(pos.max())}) do not fit hidden states "
                f"{tuple(hidden.shape)}; residuals must be injected in the forward that holds the video tokens"
            )
        bidx = torch.arange(b, device=hidden.device).unsqueeze(1).expand_as(pos)
        self.fired.append(layer)
        return hidden.index_put((bidx, pos.to(hidden.device)), res.to(hidden.device, hidden.dtype), accumulate=True)


class HookInjector(Injector):
    """The reference behaviour: a forward hook on each injected decoder layer."""

    def __init__(self, layers: Sequence[int]):
        super().__init__(layers)
        self._handles: list = []

    def attach(self, model) -> HookInjector:
        self.detach()
        mods = decoder_layers(model)
        bad = [x for x in self.layers if not 0 <= x < len(mods)]
        if bad:
            raise ValueError(f"injected layers {bad} do not exist in an LLM of {len(mods)} layers")
        for layer in self.layers:
            self._handles.append(mods[layer].register_forward_hook(self._make_hook(layer)))
        return self

    def _make_hook(self, layer: int):
        def hook(_module, _args, output):
            if isinstance(output, tuple):  # older transformers returned (hidden, ...)
                new = self._apply(layer, output[0])
                return None if new is None else (new, *output[1:])
            return self._apply(layer, output)

        return hook

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
