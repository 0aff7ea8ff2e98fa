"""The profiler's parts against independent references: tegrastats lines, presets, bytes per decoded token against a
real KV cache and the model's state dict, the question path arithmetic, report checks and compare."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.profiling import report as rp
from gazeqwen_edge.profiling.bandwidth import (
    _quant_state_bytes,
    decode_bytes,
    kv_bytes_per_position,
    llm_weight_bytes,
    utilisation,
)
from gazeqwen_edge.profiling.presets import PRESETS, detect_preset, get_preset, probe_host_bandwidth
from gazeqwen_edge.profiling.tegrastats import parse_line, summarise

ORIN_NANO = (
    "11-30-2026 10:00:00 RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%@1510,5%@1510,off,off] "
    "EMC_FREQ 3%@2133 GR3D_FREQ 45%@[624] VIC_FREQ 115 APE 200 CPU@45.5C SOC2@43.2C GPU@44.25C "
    "VDD_IN 5120mW/4980mW VDD_CPU_GPU_CV 1200mW/1100mW VDD_SOC 1400mW/1390mW"
)
AGX = (
    "RAM 12000/62000MB (lfb 100x4MB) CPU [80%@2201,off] GR3D_FREQ 99%@[1300,1290] EMC_FREQ 60%@3199 "
    "VDD_GPU_SOC 22000mW/18000mW VDD_CPU_CV 4000mW/3900mW tj@61.5C"
)


def test_tegrastats_lines_of_two_modules():
    a = parse_line(ORIN_NANO)
    assert a["ram_mb"] == (2448, 7620)
    assert a["gpu_load_pct"] == 45 and a["gpu_mhz"] == 624
    assert a["emc_load_pct"] == 3 and a["emc_mhz"] == 2133
    assert a["power_mw"] == {"VDD_IN": 5120, "VDD_CPU_GPU_CV": 1200, "VDD_SOC": 1400}  # now, not the average
    assert a["temp_c"]["GPU"] == 44.25 and a["temp_c"]["CPU"] == 45.5
    b = parse_line(AGX)
    assert b["gpu_mhz"] == 1295  # the two GPCs' clocks averaged
    assert b["power_mw"]["VDD_GPU_SOC"] == 22000 and b["temp_c"] == {"tj": 61.5}
    assert parse_line("tegrastats: unrelated text") == {}
    s = summarise([a, b, {}])
    assert s["samples"] == 2 and s["gpu_load_pct"] == {"mean": 72.0, "max": 99.0}
    assert s["power_mw"]["VDD_IN"] == {"mean": 5120.0, "max": 5120.0}  # only the line that has it
    assert summarise([]) is None


def test_presets():
    assert get_preset("AGX-Orin").bandwidth_gbs == 204.8
    assert get_preset("rtx-4090").bandwidth_gbs == 1008 and PRESETS["h200"].bandwidth_gbs == 4800
    with pytest.raises(ConfigError, match="unknown preset") as e:
        get_preset("orin-agx-64")
    assert "agx-orin" in e.value.hint
    assert detect_preset("cpu").name == "cpu"
    with pytest.raises(ConfigError):
        probe_host_bandwidth(4)
    assert 0.1 < probe_host_bandwidth(32, repeats=2) < 10_000  # GB/s of any machine


def test_weight_bytes_against_the_state_dict(stream_gq):
    """Every decoder layer, the final norm and the head in full, one embedding row, nothing of the vision tower."""
    qwen = stream_gq.qwen
    sd = qwen.state_dict()
    want = 0
    for k, v in sd.items():
        if k.startswith("model.language_model.") and "embed_tokens" not in k:
            want += v.numel() * v.element_size()
    head = qwen.lm_head.weight
    emb = qwen.model.language_model.embed_tokens.weight
    tied = head.data_ptr() == emb.data_ptr()
    want += head.numel() * head.element_size() + emb.shape[1] * emb.element_size() * (0 if tied else 1)
    assert llm_weight_bytes(qwen) == want
    assert llm_weight_bytes(qwen) < sum(v.numel() * v.element_size() for v in sd.values())  # vision tower left out


def test_kv_bytes_against_a_real_cache(stream_gq):
    from transformers import DynamicCache

    qwen = stream_gq.qwen
    cache = DynamicCache(config=qwen.config)
    n = 13
    with torch.no_grad():
        qwen(input_ids=torch.arange(5, 5 + n)[None], cache=cache, use_cache=True, logits_to_keep=1)
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert kv_bytes_per_position(qwen) * n == held
    db = decode_bytes(qwen, 100.0)
    assert db.total == db.weights + 100 * db.kv_per_position


def test_quant_state_bytes_counts_the_block_scales():
    nested = SimpleNamespace(absmax=torch.zeros(4, dtype=torch.float32), code=torch.zeros(256, dtype=torch.float32))
    w = SimpleNamespace(quant_state=SimpleNamespace(absmax=torch.zeros(64, dtype=torch.uint8), state2=nested))
    assert _quant_state_bytes(w) == 64 + 16 + 1024
    assert _quant_state_bytes(torch.zeros(3)) == 0


def test_utilisation():
    u = utilisation(4.5e9, 0.1, 204.8)  # a 7B at 4 bit, 10 tokens/s on AGX Orin
    assert u["achieved_gbs"] == pytest.approx(45.0) and u["utilisation"] == pytest.approx(45 / 204.8)
    with pytest.raises(ValueError):
        utilisation(1.0, 0.0, 1.0)


def _record(i, ttft, queued, queue_stages, stages, **kw):
    return {
        "id": i,
        "t": float(i),
        "question": "q",
        "ttft_ms": ttft,
        "queued_ms": queued,
        "queue_stages_ms": queue_stages,
        "stages_ms": stages,
        "n_tokens": 3,
        "error": None,
        **kw,
    }


def test_question_path_adds_the_stages_before_the_first_token():
    recs = [
        # waited 30 ms: 20 of them on a chunk prefill, 5 on the previous question's option scoring (its own time
        # outside its continuations: spent_between counts each instant once), 5 handing over; then 2 + 10 ms
        _record(
            1,
            43.0,
            30.0,
            {"prefill_chunk": 20.0, "score_options": 5.0},
            {"question_prompt": 2.0, "prefill_question": 10.0, "ttft_from_model_start": 13.0, "decode": 50.0},
        ),
        _record(2, 13.0, 1.0, {}, {"question_prompt": 2.0, "prefill_question": 10.0, "decode": 40.0}),
        _record(3, None, None, {}, {}, error="no video"),
    ]
    rows = rp.question_rows(recs)
    assert [r["id"] for r in rows] == [1, 2]  # the failed question is not on any path
    assert rows[0]["path_ms"] == {
        "waiting: prefill_chunk": 20.0,
        "waiting: score_options": 5.0,
        "waiting: other": 5.0,
        "question_prompt": 2.0,
        "prefill_question": 10.0,
    }
    assert rows[0]["decode_ms"] == 50.0
    path = rp.question_path(rows)
    assert path["stages_ms"]["waiting: prefill_chunk"] == 10.0  # a mean over all questions (0 where absent)
    assert path["timed_ms"] == pytest.approx((42 + 13) / 2) and path["end_to_end_ms"] == (43 + 13) / 2
    assert path["adds_up"]
    rows[1]["ttft_ms"] = 40.0  # 27 ms nobody timed
    assert not rp.question_path(rows)["adds_up"]
    assert rp.question_path([]) is None


def test_the_path_reads_in_the_order_a_question_goes_through_it():
    """Waiting stages first (the rest of the wait last among them), then the question's own from its arrival to its
    first token; before, both tables were sorted by name ("waiting: other" first, first_token before
    prefill_question)."""
    own = {"first_token": 1.0, "prefill_question": 10.0, "resampler": 3.0, "question_intake": 0.5, "gaze_settle": 110.0}
    rows = rp.question_rows([_record(1, 160.0, 40.0, {"vjepa": 5.0, "prefill_chunk": 20.0}, own)])
    want = [
        "waiting: vjepa",
        "waiting: prefill_chunk",
        "waiting: other",
        "gaze_settle",
        "question_intake",
        "resampler",  # the gaze refresh's, after the intake (before, in STAGES order: first of its own)
        "prefill_question",
        "first_token",
    ]
    assert list(rows[0]["path_ms"]) == want
    assert list(rp.question_path(rows)["stages_ms"]) == want


def test_a_question_view_or_gaze_refresh_is_not_counted_twice_on_the_path():
    """gaze_refresh and question_view enclose the resampler / encoders / chunk prefill they run (timed too)."""
    stages = {"question_view": 30.0, "qwen_vision": 12.0, "vjepa": 8.0, "prefill_chunk": 9.0, "prefill_question": 5.0}
    (row,) = rp.question_rows([_record(1, 35.0, 0.0, {}, stages)])
    assert sum(row["path_ms"].values()) == pytest.approx(34.0) and "question_view" not in row["path_ms"]
    (row,) = rp.question_rows([_record(1, 20.0, 0.0, {}, {"gaze_refresh": 14.0, "prefill_chunk": 13.0})])
    assert "gaze_refresh" not in row["path_ms"] and row["path_ms"]["prefill_chunk"] == 13.0


def _doc(**kw):
    d = {
        "format": rp.FORMAT,
        "version": rp.VERSION,
        "settings": {"injection": "fused", "fps": 2.0},
        "stages": {"decode": {"mean": 10.0}},
        "questions_summary": {"ttft_ms": {"mean": 40.0, "p95": 60.0}, "queued_ms": None},
        "bandwidth": {"tokens_per_s": 100.0, "utilisation": 0.5},
        "memory": {"peak_rss_mib": 900.0},
        "session": {"chunks_skipped": 0},
    }
    for k, v in kw.items():
        d[k] = v
    return d


def test_compare_two_reports():
    a = _doc()
    b = _doc(settings={"injection": "hooks", "fps": 2.0}, stages={"decode": {"mean": 12.0}})
    b["questions_summary"] = {"ttft_ms": {"mean": 50.0, "p95": 66.0}}
    rows = {r["figure"]: r for r in rp.compare(a, b)}
    assert rows["decode mean (ms)"]["ratio"] == pytest.approx(1.2)
    assert rows["ttft mean (ms)"]["a"] == 40.0 and rows["ttft mean (ms)"]["b"] == 50.0
    assert rows["chunks skipped"]["ratio"] is None  # 0 / 0
    assert "queued mean (ms)" not in rows  # neither has it
    assert rp.settings_diff(a, b) == {"injection": ("fused", "hooks")}


def test_reports_are_checked_when_read(tmp_path):
    p = tmp_path / "profile.json"
    rp.write_report(_doc(memory={"peak_rss_mib": float("nan")}), p)
    assert json.loads(p.read_text())["memory"]["peak_rss_mib"] is None  # strict JSON
    assert rp.load_report(tmp_path)["version"] == rp.VERSION  # a directory means its profile.json
    p.write_text(json.dumps(_doc(version=rp.VERSION + 1)))
    with pytest.raises(InputError, match="version"):
        rp.load_report(p)
    p.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a gazeqwen-edge profile"):
        rp.load_report(p)
    p.write_text("{not json")
    with pytest.raises(InputError, match="JSON"):
        rp.load_report(p)
    with pytest.raises(InputError, match="does not exist"):
        rp.load_report(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()  # before: "does not exist" for a directory that does, without a profile
    with pytest.raises(InputError, match="holds no profile.json"):
        rp.load_report(tmp_path / "empty")


def test_stage_table_keeps_every_call_count():
    from gazeqwen_edge.timing import StageTimer

    t = StageTimer(window=4)
    for ms in (1, 2, 3, 4, 100):
        t.add("decode", ms / 1e3)
    t.add("my_stage", 0.001)
    table = rp.stage_table(t)
    assert table["decode"]["count"] == 5 and table["decode"]["max"] == pytest.approx(100.0)
    assert table["decode"]["mean"] == pytest.approx(np.mean([2, 3, 4, 100]))  # the window's recent calls
    assert table["decode"]["total"] == pytest.approx(110.0)  # every call, like the count (throughput = count / total)
    assert table["my_stage"]["group"] == "other"


def test_spent_between_counts_only_the_overlap():
    from gazeqwen_edge.timing import StageTimer

    t = StageTimer()
    t.add("vjepa", 2.0, span=(10.0, 12.0))  # in flight when the wait began at 11
    t.add("prefill_chunk", 1.0, span=(12.0, 13.0))
    t.add("decode", 1.0, span=(20.0, 21.0))  # after it
    t.add("fixation_detection", 0.5)  # no span: never counted as a wait
    assert t.spent_between(11.0, 14.0) == {"vjepa": 1.0, "prefill_chunk": 1.0}
    with t.stage("qwen_vision"):
        pass
    assert "qwen_vision" in t.spent_between(0.0, 1e12)


def test_spent_between_counts_each_instant_once_for_the_innermost_stage():
    """Nested calls (score_options around score_continuation, question_view around its prefill) and calls of two
    threads at once: every instant of the wait is counted once, so the stages never add up to more than the wait
    (the profile's "waiting: other" is the rest of the wait, never negative)."""
    from gazeqwen_edge.timing import StageTimer

    t = StageTimer()
    t.add("score_continuation", 1.0, span=(1.0, 2.0))  # a nested call ends, and is added, first
    t.add("score_continuation", 1.0, span=(2.5, 3.5))
    t.add("score_options", 3.0, span=(0.5, 3.5))
    t.add("decode", 0.5, span=(3.5, 4.0))
    t.add("vad", 2.0, span=(3.0, 5.0))  # another thread's call overlapping the model's
    got = t.spent_between(0.0, 10.0)
    # 3.0-3.5: vad started last of the three in flight; 3.5-4.0: decode did
    assert got == pytest.approx({"score_options": 1.0, "score_continuation": 1.5, "vad": 1.5, "decode": 0.5})
    assert sum(got.values()) == pytest.approx(5.0 - 0.5)  # the union of the calls: 0.5 to 5.0
    assert t.spent_between(1.5, 2.5) == pytest.approx({"score_continuation": 0.5, "score_options": 0.5})
