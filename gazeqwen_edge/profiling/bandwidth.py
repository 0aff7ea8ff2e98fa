"""Bytes a decoded token reads, and the share of a device's memory bandwidth that decoding reaches.

At batch 1 each decoded token runs every decoder layer and the LM head once: it reads every weight of them (at its
stored size: a bitsandbytes NF4 weight is half a byte per value plus its block scales) and the keys and values of the
whole context, and only one row of the embedding table. Utilisation = (bytes per token / seconds per token) / peak
bandwidth: how close decoding is to the memory-bound ceiling (REFERENCE.md section 5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class DecodeBytes:
    """Bytes read per decoded token: `weights` (decoder layers + final norm + LM head + one embedding row, stored
    size), `kv_per_position` (keys + values of one context position over all layers) and `context` (mean context
    positions); `total` = weights + kv_per_position * context."""

    weights: int
    kv_per_position: int
    context: float

    @property
    def total(self) -> float:
        return self.weights + self.kv_per_position * self.context

    def to_dict(self) -> dict:
        return asdict(self) | {"total": self.total}


def _tensor_bytes(t) -> int:
    return int(t.numel()) * int(t.element_size())


def _quant_state_bytes(weight) -> int:
    """Bytes of a bitsandbytes 4-bit weight's block scales (absmax, and with double quantisation its own absmax and
    code book); 0 for an ordinary weight."""
    qs = getattr(weight, "quant_state", None)
    if qs is None:
        return 0
    n = _tensor_bytes(qs.absmax) if getattr(qs, "absmax", None) is not None else 0
    nested = getattr(qs, "state2", None)
    if nested is not None:
        for name in ("absmax", "code"):
            t = getattr(nested, name, None)
            if t is not None:
                n += _tensor_bytes(t)
    return n


def llm_weight_bytes(qwen) -> int:
    """Stored bytes of the weights one decoded token reads in a Qwen2.5-VL (transformers' ForConditionalGeneration):
    every parameter and buffer of the language model except the embedding table, the LM head, and one embedding row.
    A weight shared by two modules (tied embeddings) counts once."""
    lm = qwen.model.language_model
    embed = lm.embed_tokens.weight
    seen: set[int] = set()
    total = 0

    def add(t, extra: int = 0) -> None:
        nonlocal total
        key = t.data_ptr()
        if key in seen:
            return
        seen.add(key)
        total += _tensor_bytes(t) + extra

    seen.add(embed.data_ptr())
    for _, p in lm.named_parameters():
        add(p, _quant_state_bytes(p))
    for _, b in lm.named_buffers():
        if b.dtype.is_floating_point and b.numel() > 0 and "inv_freq" not in _:
            add(b)
    head = qwen.lm_head.weight
    if head.data_ptr() == embed.data_ptr():  # tied: the head reads the whole table
        seen.discard(embed.data_ptr())
    add(head, _quant_state_bytes(head))
    return total + embed.shape[1] * embed.element_size()


def kv_bytes_per_position(qwen, dtype_bytes: int | None = None) -> int:
    """Bytes of keys + values of one context position over all decoder layers: 2 x layers x kv heads x head dim x
    the element size (the model's compute dtype unless `dtype_bytes` is given)."""
    cfg = qwen.config.text_config if hasattr(qwen.config, "text_config") else qwen.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    if dtype_bytes is None:
        dtype_bytes = qwen.model.language_model.norm.weight.element_size()
    return 2 * cfg.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def decode_bytes(qwen, context: float) -> DecodeBytes:
    """DecodeBytes of `qwen` at a mean context of `context` positions."""
    return DecodeBytes(llm_weight_bytes(qwen), kv_bytes_per_position(qwen), float(context))


def utilisation(bytes_per_token: float, seconds_per_token: float, bandwidth_gbs: float) -> dict:
    """{achieved_gbs, bandwidth_gbs, utilisation}: bytes per token over seconds per token, as a share of the peak.
    Raises ValueError for a non-positive time or bandwidth."""
    if not (seconds_per_token > 0 and bandwidth_gbs > 0):
        raise ValueError("seconds per token and bandwidth must be positive")
    achieved = bytes_per_token / seconds_per_token / 1e9
    return {"achieved_gbs": achieved, "bandwidth_gbs": bandwidth_gbs, "utilisation": achieved / bandwidth_gbs}
