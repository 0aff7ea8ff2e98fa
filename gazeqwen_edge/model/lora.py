"""Stage-2 LoRA (rank 8, alpha 16 on the LLM's q_proj and v_proj) merged into Qwen2.5-VL's weights for inference:
W <- W + (alpha / r) * B @ A. Merging needs no peft at run time, costs nothing per token, and leaves a plain model
that quantisation and export see as ordinary weights.

Accepted keys: anything ending in `layers.<i>.self_attn.<q_proj|v_proj>.lora_<A|B>[.<adapter>].weight` (peft's
`get_peft_model_state_dict` layout, with or without the adapter name, old or new transformers module paths).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.injection import decoder_layers

_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.self_attn\.(q_proj|v_proj|k_proj|o_proj)\.lora_([AB])(?:\.[\w-]+)?\.weight$")


def parse_lora_state_dict(state: dict[str, torch.Tensor]) -> dict[tuple[int, str], dict[str, torch.Tensor]]:
    """{(layer, proj): {"A": (r, in), "B": (out, r)}}; InputError on keys it cannot place or incomplete pairs."""
    out: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    unknown = []
    for k, v in state.items():
        m = _KEY.search(k)
        if not m:
            unknown.append(k)
            continue
        out.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3)] = v
    if unknown:
        raise InputError(
            None, f"LoRA state dict has {len(unknown)} keys that are not LLM attention LoRA weights, e.g. {unknown[:3]}"
        )
    broken = [k for k, ab in out.items() if set(ab) != {"A", "B"}]
    if broken:
        raise InputError(None, f"LoRA state dict lacks A or B for {broken[:3]}")
    return out


@torch.no_grad()
def merge_lora(qwen, state: dict[str, torch.Tensor], config: dict[str, Any] | None) -> int:
    """Merge LoRA weights into `qwen` in place. Returns the number of merged projections."""
    pairs = parse_lora_state_dict(state)
    if not pairs:
        return 0
    cfg = config or {}
    any_a = next(iter(pairs.values()))["A"]
    r = int(cfg.get("r", any_a.shape[0]))
    alpha = float(cfg.get("lora_alpha", cfg.get("alpha", 2 * r)))
    scale = alpha / r
    layers = decoder_layers(qwen)
    for (i, proj), ab in pairs.items():
        if i >= len(layers):
            raise InputError(None, f"LoRA targets layer {i}, the LLM has {len(layers)} layers")
        lin = getattr(layers[i].self_attn, proj)
        a, b = ab["A"].float(), ab["B"].float()
        if a.shape[1] != lin.in_features or b.shape[0] != lin.out_features or a.shape[0] != b.shape[1]:
            raise InputError(
                None,
                f"LoRA for layer {i} {proj}: A {tuple(a.shape)}, B {tuple(b.shape)} do not fit "
                f"a {lin.in_features}->{lin.out_features} projection",
            )
        delta = (b @ a) * scale
        lin.weight.copy_((lin.weight.float() + delta.to(lin.weight.device)).to(lin.weight.dtype))
    return len(pairs)
