"""Evaluating a model variant on QA items (StreamGaze or the synthetic benchmark) under one protocol.

Protocols:
- "reference": the option letters' logits at the first assistant position of the released prompt (GazeQwen's
  numbers; REFERENCE.md section 1);
- "generation": free greedy generation under the same prompt, the letter read from the text (training.baselines.
  extract_letter; the benchmark's own protocol);
- "option_text": the log-likelihood of each option's text as the answer (small models that answer in words).

Variants (training.baselines.VARIANTS): "no_gaze" (plain model: no scanpath reaches it), "visual_prompt" (gaze drawn
on the frames), "gaze_text" (the fixation list before the question), and the model's own resampler ("gazeqwen",
recorded as gazeqwen_<its gaze encoding>). Results go to a resumable per-item log (`items.jsonl`), then
`results.json` + `results.md` (training.results).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gazeqwen_edge.errors import ConfigError, GazeQwenError
from gazeqwen_edge.training.baselines import extract_letter, gaze_as_text
from gazeqwen_edge.training.data import ClipConfig, ItemEncoder
from gazeqwen_edge.training.results import ItemResult, ResultsLog, summarise, write_results
from gazeqwen_edge.training.tasks import QAItem
from gazeqwen_edge.training.trainer import item_prompt, predict

EVAL_PROTOCOLS = ("reference", "generation", "option_text")
EVAL_VARIANTS = ("gazeqwen", "no_gaze", "visual_prompt", "gaze_text", "gazeqwen_reference", "gazeqwen_spatial")
LOG_FILE = "items.jsonl"


def variant_label(gq, variant: str) -> str:
    """The variant's name in results: "gazeqwen" becomes gazeqwen_<the resampler's gaze encoding>. ConfigError when
    a gaze variant is asked of a model without a resampler, or gazeqwen_<enc> of a model with another encoding."""
    if variant not in EVAL_VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose from {', '.join(EVAL_VARIANTS)}")
    if variant.startswith("gazeqwen"):
        if gq.resampler is None:
            raise ConfigError(f"variant {variant} needs a model with a gaze resampler (a --checkpoint)")
        label = f"gazeqwen_{gq.resampler.config.gaze_encoding}"
        if variant != "gazeqwen" and variant != label:
            raise ConfigError(f"variant {variant} asked of a model whose resampler is {label}")
        return label
    return variant


def evaluate_items(
    gq,
    items: Sequence[QAItem],
    out_dir: Path,
    header: dict,
    *,
    variant: str = "gazeqwen",
    protocol: str = "reference",
    clip: ClipConfig | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 16,
    cache_dir: Path | None = None,
    model_key: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Evaluate `items`, resuming from `out_dir/items.jsonl` (items already there are not redone; a log written for
    another model/protocol/variant/QA file is refused), then write results.json / results.md. An item whose clip
    cannot be read gets an error record (it counts as wrong). Returns the summary (training.results.summarise)."""
    if protocol not in EVAL_PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {', '.join(EVAL_PROTOCOLS)}")
    label = variant_label(gq, variant)
    header = {**header, "variant": label, "protocol": protocol}
    if label.startswith("gazeqwen"):  # the label names the encoding only: the other gaze rules tell models apart too
        c = gq.resampler.config
        header["gaze_rules"] = (
            f"encoding {c.gaze_encoding}, step fixations {c.step_fixations}, gaze mark {'on' if c.gaze_mark else 'off'}"
        )
    encoder = ItemEncoder(gq, clip or ClipConfig(), cache_dir, model_key)
    progress = progress or (lambda done, total: None)
    use_gaze = label.startswith("gazeqwen")
    draw = label == "visual_prompt"
    out_dir = Path(out_dir)
    with ResultsLog(out_dir / LOG_FILE).open(header) as log:
        done = log.done_ids()
        todo = [it for it in items if it.item_id not in done]
        progress(len(items) - len(todo), len(items))
        gq.qwen.eval()
        bs = 1 if protocol == "generation" else batch_size
        for i in range(0, len(todo), bs):
            chunk = list(todo[i : i + bs])
            t0 = time.perf_counter()
            encs, ok = [], []
            for it in chunk:
                try:
                    encs.append(encoder.encode(it, draw_gaze=draw))
                    ok.append(it)
                except GazeQwenError as e:
                    log.append(ItemResult.from_item(it, None, error=str(e)))
            if ok:
                texts = [gaze_as_text(e.scanpath) for e in encs] if label == "gaze_text" else None
                if protocol == "generation":
                    text = _generate(gq, encs[0], ok[0], texts[0] if texts else None, use_gaze, max_new_tokens)
                    dt = time.perf_counter() - t0
                    log.append(
                        ItemResult.from_item(ok[0], extract_letter(text, ok[0].options), text=text, elapsed_s=dt)
                    )
                else:
                    proto = "letter" if protocol == "reference" else "option_text"
                    scores = predict(gq, encs, ok, proto, "reference", use_gaze, texts)
                    dt = (time.perf_counter() - t0) / len(ok)
                    for it, sc in zip(ok, scores, strict=True):
                        log.append(ItemResult.from_item(it, max(sc, key=sc.get), scores=sc, elapsed_s=dt))
            progress(len(items) - len(todo) + i + len(chunk), len(items))
        results = log.read()
    wanted = {it.item_id for it in items}
    results = [r for r in results if r.item_id in wanted]
    write_results(out_dir, header, results)
    return summarise(results)


def _generate(gq, enc, item: QAItem, gaze_text: str | None, use_gaze: bool, max_new_tokens: int) -> str:
    """Greedy answer text of one item (the generation protocol) through GazeQwen.decode."""
    import torch
    from transformers import DynamicCache

    from gazeqwen_edge.model.gazeqwen import Reply
    from gazeqwen_edge.training.forward import build_inputs, forward

    inputs = build_inputs(gq, [enc], [item_prompt(item, "reference", gaze_text)])
    cache = DynamicCache(config=gq.qwen.config)
    with torch.no_grad():
        out = forward(gq, [enc], inputs, use_gaze, logits_to_keep=1, cache=cache)
    reply = Reply()
    for _ in gq.decode(
        out.logits[:, -1], cache, int(inputs.position_ids.max()) + 1, time.perf_counter(), max_new_tokens, reply=reply
    ):
        pass
    return reply.text
