"""The streaming session at the real model's shapes, on a GPU, with random weights: what a wearer's RTX machine or a
Jetson pays per stage for Qwen2.5-VL-7B + V-JEPA 2.1 ViT-B + the reference-size gaze resampler, measured before the
weights are at hand.

Latency does not depend on the weight values, only on the shapes, the dtype and the number of tokens, so a model built
from the published configs (export/plan.py: QWEN25_VL_7B_CONFIG, VJEPA21_VITB; ResamplerConfig's defaults are the
reference's sizes) with random weights times the same kernels as the trained one. Two things differ and are held
fixed instead: the tokenizer is the tiny one trained in code (the text is a few dozen tokens either way; the video,
which dominates, is the same number of tokens), and a random LLM's answers stop at an arbitrary token, so decode is
reported per token.

One run, side by side on one machine:
- the session at real time (a 1600 x 1200, 30 fps synthetic scene at Neon's scene camera size, 200 Hz gaze; an open
  question every `--every` s) with the question view on, then off: per-stage mean / p95, time to first token from
  the question's arrival, decode per token, chunks skipped, peak GPU memory (profiling/run.py's report, one
  profile.json each);
- watch checks ("tell me when I look at X", runtime/watches.py) in lockstep with 1, 4 and 16 watches: the cost of one
  check, checks made and skipped per chunk against the budget (SessionConfig.watch_budget of the chunk's duration);
- with `--nf4` (bitsandbytes): the same real-time session with the decoder's Linear layers in NF4 (double quant,
  blocksize 64, vision tower and lm_head kept: export/quantize.py's choice), quantised in memory (the bundle stores
  the same format pre-quantised).

    python benchmarks/shapes_7b.py --device cuda --out DIR [--nf4] [--duration 20] [--small]

`--small` shrinks every model (2 LLM layers, a 2-block tower) so the script itself can be checked on a CPU in a minute;
its figures mean nothing. Writes DIR/summary.json ("sessions": the headline figures per session; "session_docs":
each session's whole record, every stage's mean / p50 / p95 / max under its "stages"; "watches": the watch rows);
prints one table. Sessions are not recorded (no PyAV needed): profile a recorded or live session with
`gazeqwen-edge profile` once the weights are at hand.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # benchmarks/export.py's timing loop, and this checkout's package

import torch  # noqa: E402

FRAME_HW = (1200, 1600)  # Neon's scene camera (REFERENCE.md section 4)
WATCH_COUNTS = (1, 4, 16)
WATCH_TARGETS = ("the red cup", "the blue box", "the green ball", "the yellow book", "the stove", "the door")


def model_configs(small: bool) -> tuple[dict, dict, dict]:
    """(Qwen2.5-VL config dict, VJEPA2Config keywords, ResamplerConfig keywords) at the 7B's shapes, or shrunk."""
    from gazeqwen_edge.export.plan import QWEN25_VL_7B_CONFIG, VJEPA21_VITB

    qwen = copy.deepcopy(QWEN25_VL_7B_CONFIG)
    vjepa = dict(VJEPA21_VITB)
    resampler = {}
    if small:
        qwen.update(
            hidden_size=256,
            intermediate_size=512,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=1024,
            rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]},
        )
        qwen["vision_config"].update(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=256, fullatt_block_indexes=[1]
        )
        vjepa.update(hidden_size=96, num_hidden_layers=2, num_attention_heads=2, crop_size=128)
        resampler = {
            "d_vjepa": 96,
            "d_llm": 256,
            "n_llm_layers": 2,
            "injected_layers": (0, 1),
            "d_latent": 64,
            "n_latents": 8,
        }
    return qwen, vjepa, resampler


def build(device: str, dtype: torch.dtype, small: bool = False, seed: int = 0, timer=None):
    """A GazeQwen at the 7B's shapes with random weights (N(0, 0.02) linears, transformers' own init), on `device` in
    `dtype`, the gaze resampler in the stream regime with the spatial encoding (what the runtime streams) and its
    zero-initialised output projections filled with N(0, 0.02) so the residuals are not zeros. The tiny tokenizer's
    special-token ids replace the published ones (the token count of the video is unchanged)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, VJEPA2Config, VJEPA2Model

    from gazeqwen_edge.model.config import ResamplerConfig
    from gazeqwen_edge.model.gazeqwen import GazeQwen
    from gazeqwen_edge.model.resampler import GazeResampler
    from gazeqwen_edge.model.tiny import special_token_ids, tiny_tokenizer
    from gazeqwen_edge.model.video_encoder import TransformersVJEPA2Encoder

    qcfg, vcfg, rkw = model_configs(small)
    tok = tiny_tokenizer()
    qcfg.update(special_token_ids(tok))
    qcfg.pop("vision_token_id", None)
    qcfg.pop("torch_dtype", None)  # the dtype is chosen here (transformers would build bf16 parts into an fp32 model)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # parameters are made in dtype on device: no fp32 copy of 8 B parameters
    try:
        with torch.device(device):
            qwen = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**qcfg)).eval()
            vjepa = VJEPA2Model(VJEPA2Config(**vcfg)).eval()
            resampler = GazeResampler(ResamplerConfig(regime="stream", gaze_encoding="spatial", **rkw)).eval()
    finally:
        torch.set_default_dtype(default)
    with torch.no_grad():
        for p in resampler.proj_outs:
            p.weight.normal_(0.0, 0.02)
    kwargs = {"timer": timer} if timer is not None else {}
    return GazeQwen(qwen, tok, TransformersVJEPA2Encoder(vjepa), resampler, injection="fused", **kwargs)


def to_nf4(gq) -> int:
    """Replace every nn.Linear of the LLM's decoder layers by a bitsandbytes NF4 Linear4bit (double quant, blocksize
    64, compute in the weights' dtype), quantised on the model's device; the vision tower and lm_head stay as they are
    (export/quantize.py: SKIP_MODULES). Returns the number of layers replaced."""
    import bitsandbytes as bnb

    layers = gq.qwen.model.language_model.layers
    n = 0
    for layer in layers:
        for name, mod in list(layer.named_modules()):
            if type(mod) is not torch.nn.Linear:
                continue
            parent = layer.get_submodule(name.rsplit(".", 1)[0]) if "." in name else layer
            q = bnb.nn.Linear4bit(
                mod.in_features,
                mod.out_features,
                bias=mod.bias is not None,
                compute_dtype=mod.weight.dtype,
                compress_statistics=True,
                quant_type="nf4",
                device="meta",
            )
            q.weight = bnb.nn.Params4bit(
                mod.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4", blocksize=64
            )
            if mod.bias is not None:
                q.bias = torch.nn.Parameter(mod.bias.data, requires_grad=False)
            setattr(parent, name.rsplit(".", 1)[-1], q.to(mod.weight.device))
            n += 1
    if str(gq.device).startswith("cuda"):
        torch.cuda.empty_cache()
    return n


def fresh_timer(gq):
    """A new StageTimer like the model's (CUDA events on a GPU), so each session's stages are its own."""
    from gazeqwen_edge.timing import StageTimer

    return StageTimer(cuda_sync=gq.timer.cuda_sync)


def _notices_sink():
    """A session sink (runtime/sinks.py) that keeps the session's notices (kind, message): why chunks or questions
    failed."""
    from gazeqwen_edge.runtime.sinks import Sink

    class Notices(Sink):
        def __init__(self):
            self.notices: list[tuple[str, str]] = []

        def notice(self, kind: str, message: str, t_s=None) -> None:
            self.notices.append((kind, message))

    return Notices()


def run_session(gq, scene_seed: int, duration: float, questions, config, speed, setup=None) -> dict:
    """One session of a 1600 x 1200 synthetic scene through runtime/replay.py, not recorded (the figures are the
    model's; recording needs PyAV, which a bare GPU machine lacks), with a fresh stage timer. Returns {stages (
    profiling/report.py stage_table), ttft_ms (stats), stats (SessionStats fields), gpu_peak_mib, notices}.
    Raises RuntimeError with the first notice when no chunk was prefilled (every figure would be NaN)."""
    from dataclasses import asdict

    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.profiling.report import stage_table, stats_ms
    from gazeqwen_edge.runtime.replay import replay

    scene = SyntheticScene(seed=scene_seed, duration_s=duration, width=FRAME_HW[1], height=FRAME_HW[0])
    gq.timer = fresh_timer(gq)
    cuda = str(gq.device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    notes = _notices_sink()
    res = replay(scene, gq, config, None, questions, speed, sinks=[notes], setup=setup)
    if not res.stats.chunks_prefilled:
        raise RuntimeError(f"no chunk was prefilled: {notes.notices[0] if notes.notices else 'no notice'}")
    return {
        "stages": stage_table(gq.timer),
        "ttft_ms": stats_ms([r.ttft_ms for r in res.records]),
        "stats": {k: v for k, v in asdict(res.stats).items() if isinstance(v, int | float)},
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "notices": sorted({f"{k}: {m}" for k, m in notes.notices}),
        "wall_s": res.wall_s,
    }


def session(gq, scene_seed: int, duration: float, every: float, question_view: bool, speed) -> dict:
    """A session with an open question every `every` s (profiling/run.py's scripted questions), 16 tokens each."""
    from gazeqwen_edge.profiling.run import scripted_questions
    from gazeqwen_edge.runtime.session import SessionConfig

    cfg = SessionConfig(max_new_tokens=16, window_s=60.0, question_view=question_view)
    return run_session(gq, scene_seed, duration, scripted_questions(duration, every), cfg, speed)


def watch_costs(gq, duration: float) -> list[dict]:
    """Lockstep sessions with 1, 4, 16 watches and no questions: per count, the mean / p95 ms of one watch check,
    checks made and skipped, and chunks prefilled."""
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.watches import Watches

    rows = []
    for n in WATCH_COUNTS:
        targets = [f"{WATCH_TARGETS[i % len(WATCH_TARGETS)]} {i}" for i in range(n)]

        def setup(s, targets=targets):
            s.watches = Watches(hold_s=1.0)
            for t in targets:
                s.watches.add(t)

        doc = run_session(gq, 1, duration, [], SessionConfig(max_new_tokens=4, window_s=60.0), None, setup)
        st = doc["stages"].get("watch_check", {})
        rows.append(
            {
                "watches": n,
                "check_mean_ms": st.get("mean"),
                "check_p95_ms": st.get("p95"),
                "checks": doc["stats"].get("watch_checks"),
                "skipped": doc["stats"].get("watch_checks_skipped"),
                "chunks": doc["stats"].get("chunks_prefilled"),
            }
        )
    return rows


def bare_decoder(gq, steps: int, rounds: int = 3, decode_tokens: int = 16) -> dict:
    """The LLM alone, outside any session (benchmarks/export.py time_variant: one prefill of 24 text tokens + `steps`
    steps of 1600 x 1200 video tokens embedded as text ids, the first token, then `decode_tokens` cached greedy
    steps), without and with the gaze residuals injected by the model's own fused injector. Returns {video_tokens,
    ttft_ms / decode_ms: {"no gaze", "gaze"} medians over `rounds` after a warm-up round}: the floor the session's
    figures are compared with."""
    import statistics

    from export import time_variant

    from gazeqwen_edge.model.preprocessing import smart_resize

    f = gq.patch_size * gq.merge
    h, w = smart_resize(FRAME_HW[0], FRAME_HW[1], f, gq.min_pixels, gq.max_pixels)
    n_video = steps * (h // f) * (w // f)
    vid = gq.video_token_id
    text = [i for i in range(1, 40) if i not in gq.tokenizer.all_special_ids and i != vid][:24]
    ids = torch.tensor([text[:4] + [vid] * n_video + text[4:]], device=gq.device)
    hidden = gq.qwen.config.text_config.hidden_size
    layers = gq.resampler.config.n_modules
    residuals = torch.randn(layers, 1, n_video, hidden, device=gq.device, dtype=gq.qwen.dtype) * 0.01
    times = {"no gaze": [], "gaze": []}
    for r in range(rounds + 1):
        for name in times:
            inj = gq.injector if name == "gaze" else None
            t = time_variant(gq.qwen, ids, vid, inj, residuals, decode_tokens)
            if r:
                times[name].append(t)
    return {
        "video_tokens": n_video,
        "ttft_ms": {k: 1e3 * statistics.median(t[0] for t in v) for k, v in times.items()},
        "decode_ms": {k: 1e3 * statistics.median(t[1] for t in v) for k, v in times.items()},
    }


def headline(doc: dict) -> dict:
    """The figures of one session the table shows (ms unless named otherwise)."""
    st = doc["stages"]

    def mean(k):
        return st[k]["mean"] if k in st else math.nan

    ttft = doc["ttft_ms"] or {}
    return {
        "qwen_vision": mean("qwen_vision"),
        "vjepa": mean("vjepa"),
        "resampler": mean("resampler"),
        "prefill_chunk": mean("prefill_chunk"),
        "question_view": mean("question_view"),
        "ttft_mean": ttft.get("mean", math.nan),
        "ttft_p95": ttft.get("p95", math.nan),
        "decode_per_token": mean("decode"),
        "chunks_skipped": doc["stats"]["chunks_skipped"],
        "chunks_prefilled": doc["stats"]["chunks_prefilled"],
        "gpu_peak_gib": (doc["gpu_peak_mib"] or math.nan) / 1024,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, required=True, help="report directory (created)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of scene per session")
    p.add_argument("--every", type=float, default=3.0, help="an open question every this many seconds")
    p.add_argument("--nf4", action="store_true", help="also the session with the decoder in NF4 (bitsandbytes)")
    p.add_argument("--small", action="store_true", help="shrunk models: checks the script, measures nothing")
    p.add_argument("--no-watches", action="store_true")
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "error: --device cuda but torch sees no CUDA device (hint: --device cpu --small checks the script)",
            file=sys.stderr,
        )
        return 3
    from gazeqwen_edge.timing import StageTimer

    a.out.mkdir(parents=True, exist_ok=True)
    dtype = torch.bfloat16 if a.device.startswith("cuda") else torch.float32
    t0 = time.perf_counter()
    gq = build(a.device, dtype, small=a.small, timer=StageTimer(cuda_sync=a.device.startswith("cuda")))
    built_s = time.perf_counter() - t0
    n_llm = sum(p.numel() for p in gq.qwen.parameters())
    summary = {
        "device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "dtype": str(dtype),
        "small": a.small,
        "qwen_parameters": n_llm,
        "build_s": built_s,
        "frame_hw": FRAME_HW,
        "sessions": {},
    }
    print(
        f"built {n_llm / 1e9:.2f} B-parameter Qwen2.5-VL + V-JEPA + resampler on {a.device} in {built_s:.1f} s",
        flush=True,
    )

    def save():
        (a.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))

    dt = "bf16" if dtype == torch.bfloat16 else "fp32"
    doc = session(gq, 99, min(a.duration, 6.0), a.every, True, None)  # warm-up (kernels, allocator), in lockstep
    summary["sessions"][f"{dt}, lockstep warm-up"] = headline(doc)
    summary["bare"] = bare_decoder(gq, steps=int(a.duration))
    print("bare decoder", json.dumps(summary["bare"]), flush=True)
    save()
    for label, view in ((f"{dt}, question view", True), (f"{dt}, no question view", False)):
        doc = session(gq, 0, a.duration, a.every, view, 1.0)
        summary["sessions"][label] = headline(doc)
        summary.setdefault("session_docs", {})[label] = doc
        print(label, json.dumps(summary["sessions"][label]), flush=True)
        save()
    if not a.no_watches:
        summary["watches"] = watch_costs(gq, min(a.duration, 10.0))
        print("watches", json.dumps(summary["watches"]), flush=True)
        save()
    if a.nf4:
        summary["nf4_linears"] = to_nf4(gq)
        session(gq, 99, min(a.duration, 6.0), a.every, True, None)
        summary["bare_nf4"] = bare_decoder(gq, steps=int(a.duration))
        print("bare decoder NF4", json.dumps(summary["bare_nf4"]), flush=True)
        doc = session(gq, 0, a.duration, a.every, True, 1.0)
        summary["sessions"]["NF4, question view"] = headline(doc)
        summary["session_docs"]["NF4, question view"] = doc
        print("NF4", json.dumps(summary["sessions"]["NF4, question view"]), flush=True)
        save()
    print_table(summary)
    return 0


def print_table(summary: dict) -> None:
    """The sessions side by side (ms), then the watch costs."""
    cols = list(summary["sessions"])
    keys = list(next(iter(summary["sessions"].values()))) if cols else []
    print(
        f"\n{summary['device']}, torch {summary['torch']}, {summary['qwen_parameters'] / 1e9:.2f} B Qwen parameters"
        f"{' (SMALL: not the 7B)' if summary['small'] else ''}; frames {summary['frame_hw'][1]}x{summary['frame_hw'][0]}"
    )
    print(f"{'figure (ms unless named)':<26}" + "".join(f"{c:>26}" for c in cols))
    for k in keys:
        print(f"{k:<26}" + "".join(f"{summary['sessions'][c][k]:>26.4g}" for c in cols))
    for key in ("bare", "bare_nf4"):
        b = summary.get(key)
        if b:
            print(
                f"{key}: LLM alone, {b['video_tokens']} video tokens: TTFT "
                + ", ".join(f"{k} {v:.1f} ms" for k, v in b["ttft_ms"].items())
                + "; decode/token "
                + ", ".join(f"{k} {v:.2f} ms" for k, v in b["decode_ms"].items())
            )
    for w in summary.get("watches", []):
        print(
            f"{w['watches']:>2} watches: one check {w['check_mean_ms']} ms mean (p95 {w['check_p95_ms']}), "
            f"{w['checks']} checks, {w['skipped']} skipped, {w['chunks']} chunks"
        )


if __name__ == "__main__":
    sys.exit(main())
