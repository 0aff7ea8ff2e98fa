"""Adding the gaze residuals to the LLM's video tokens.

Interface (`Injector`): `attach(model)` once, then

    with injector.inject(residuals, positions):   # residuals (M, B, P, D) for the M injected layers, positions (B, P)
        model(...)                                # ONE forward (a prefill, a streamed chunk): each injected layer adds
                                                  # residuals[m, b, p] to its output at sequence index positions[b, p]

Each injected layer fires once per `inject` (so a `generate()` call inside the block injects in its prefill only);
outside the block nothing is added: cached token-by-token decoding never sees residuals, the gaze effect lives in the
KV cache of the video tokens. Two implementations behind that interface:

- `HookInjector` (the reference): forward hooks on `model.model.language_model.layers[l]` (transformers 5: the layers
  return a tensor).
- `FusedInjector` (the edge runtime's default): the injected decoder layers themselves become a subclass of their own
  class whose `forward` adds the residual after the layer's computation. No hooks are registered, so every layer keeps
  PyTorch's fast module call path; parameter names and the state dict are unchanged (only `__class__` is swapped, and
  `detach` swaps it back); a decoded token costs each injected layer one attribute test; positions are checked once
  per `inject`, not per layer (no host sync inside the forward), and contiguous video tokens (every stream chunk, any
unpadded prompt) get a slice add instead of a scatter. Numerically it is the same `index_put` as the hooks
  (tests/model/test_fused_injection.py: equal logits in full prefill, chunked streaming prefill and decode).

`make_injector(kind, layers)` builds either by name (`INJECTIONS`).
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

    def _layer_modules(self, model) -> torch.nn.ModuleList:
        """The model's decoder layers, after checking every injected layer index exists (ValueError if not)."""
        mods = decoder_layers(model)
        bad = [x for x in self.layers if not 0 <= x < len(mods)]
        if bad:
            raise ValueError(f"injected layers {bad} do not exist in an LLM of {len(mods)} layers")
        return mods

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
        """hidden (B, L, d) with this layer's pending residual added at its positions; None when none is pending.
        Raises ValueError when the positions do not fit the hidden states (another forward than the video's)."""
        item = self._pending.pop(layer, None)
        if item is None:
            return None
        res, pos = item
        b, length, _ = hidden.shape
        max_pos = self._max_position(pos)
        if pos.shape[0] != b or max_pos >= length:
            raise ValueError(
                f"injection positions {tuple(pos.shape)} (max {max_pos}) do not fit hidden states "
                f"{tuple(hidden.shape)}; residuals must be injected in the forward that holds the video tokens"
            )
        self.fired.append(layer)
        return self._add(hidden, res.to(hidden.device, hidden.dtype), pos)

    def _max_position(self, pos: torch.Tensor) -> int:
        """The largest injection position (a host sync: the hooks read it per layer)."""
        return int(pos.max())

    def _add(self, hidden: torch.Tensor, res: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """hidden with res (B, N, d) added at positions pos (B, N): a scatter (`index_put`, accumulate)."""
        bidx = torch.arange(hidden.shape[0], device=hidden.device).unsqueeze(1).expand_as(pos)
        return hidden.index_put((bidx, pos.to(hidden.device)), res, accumulate=True)


INJECTIONS = ("fused", "hooks")


def make_injector(kind: str, layers: Sequence[int]) -> Injector:
    """An injector by name: "fused" (FusedInjector) or "hooks" (HookInjector). Raises ValueError for another name."""
    if kind == "fused":
        return FusedInjector(layers)
    if kind == "hooks":
        return HookInjector(layers)
    raise ValueError(f"injection must be one of {', '.join(INJECTIONS)}, got {kind!r}")


class HookInjector(Injector):
    """The reference behaviour: a forward hook on each injected decoder layer."""

    def __init__(self, layers: Sequence[int]):
        super().__init__(layers)
        self._handles: list = []

    def attach(self, model) -> HookInjector:
        self.detach()
        mods = self._layer_modules(model)
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


class _GazeResidualLayer:
    """Mixin placed in front of a decoder layer's class by FusedInjector: after the layer's own forward, add the
    pending residual (set by `FusedInjector.inject`, consumed by the first forward) at the video-token positions."""

    _gaze_injector: FusedInjector
    _gaze_layer: int

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        inj = self._gaze_injector
        if not inj._pending:  # decode and plain forwards: nothing armed
            return out
        if isinstance(out, tuple):  # older transformers returned (hidden, ...)
            new = inj._apply(self._gaze_layer, out[0])
            return out if new is None else (new, *out[1:])
        new = inj._apply(self._gaze_layer, out)
        return out if new is None else new


_FUSED_CLASSES: dict[type, type] = {}


def _fused_class(cls: type) -> type:
    """The subclass of decoder-layer class `cls` with the residual add fused into its forward (one per class)."""
    if cls not in _FUSED_CLASSES:
        _FUSED_CLASSES[cls] = type(f"GazeFused{cls.__name__}", (_GazeResidualLayer, cls), {})
    return _FUSED_CLASSES[cls]


class FusedInjector(Injector):
    """Residual injection fused into the injected decoder layers' forward (see the module docstring): no hooks, the
    state dict unchanged, one bounds check per `inject` (the largest position) instead of a host sync per layer.
    Works with autograd (the add is out of place), the KV cache, chunked streaming prefill and torch.compile."""

    def __init__(self, layers: Sequence[int]):
        super().__init__(layers)
        self._modules: list[torch.nn.Module] = []
        self._max_pos = -1
        self._span: tuple[int, int] | None = None  # the video tokens' [start, end) when one slice holds them all

    def attach(self, model) -> FusedInjector:
        self.detach()
        mods = self._layer_modules(model)
        for layer in self.layers:
            mod = mods[layer]
            if isinstance(mod, _GazeResidualLayer):
                raise ValueError(f"decoder layer {layer} already has a fused injector attached")
            mod.__class__ = _fused_class(type(mod))
            mod._gaze_injector = self
            mod._gaze_layer = layer
            self._modules.append(mod)
        return self

    def detach(self) -> None:
        for mod in self._modules:
            mod.__class__ = mod.__class__.__mro__[2]  # (GazeFused<cls>, _GazeResidualLayer, <cls>, ...)
            del mod._gaze_injector, mod._gaze_layer
        self._modules = []

    @contextmanager
    def inject(self, residuals: torch.Tensor | None, positions: torch.Tensor | None) -> Iterator[None]:
        """As Injector.inject; the largest position is read once here (one host sync per forward, not per layer)."""
        self._max_pos, self._span = -1, None
        if positions is not None and positions.numel() > 0:
            self._max_pos = int(positions.max())
            first = positions[:, :1]
            steps = torch.arange(positions.shape[1], device=positions.device)
            if bool((positions == first + steps).all()) and bool((first == first[0]).all()):
                self._span = (int(first[0, 0]), int(first[0, 0]) + positions.shape[1])  # one slice for every sample
        with super().inject(residuals, positions):
            yield

    def _max_position(self, pos: torch.Tensor) -> int:
        return self._max_pos  # read once per forward in inject()

    def _add(self, hidden: torch.Tensor, res: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        if self._span is not None:  # contiguous video tokens (a stream chunk, an unpadded prompt): a slice add
            a, z = self._span
            if not torch.is_grad_enabled():  # the layer's output is a fresh tensor nobody else holds: add in place
                hidden[:, a:z].add_(res)
                return hidden
            return torch.cat([hidden[:, :a], hidden[:, a:z] + res, hidden[:, z:]], dim=1)
        return super()._add(hidden, res, pos)
