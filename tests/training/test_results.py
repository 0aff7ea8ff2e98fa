import json
from pathlib import Path

import pytest

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.training.results import (
    ItemResult,
    ResultsLog,
    markdown_table,
    read_results,
    summarise,
    write_results,
)
from gazeqwen_edge.training.tasks import QAItem

SR, OIE, GTA, OAA = (
    "past_scene_recall",
    "present_object_identification_easy",
    "proactive_gaze_triggered_alert",
    "proactive_object_appearance_alert",
)
CTL = "control_scene_object"
HEADER = {"model": "Qwen/Qwen2.5-VL-7B-Instruct", "protocol": "scoring", "variant": "no_gaze", "qa_file": "/d/qa.json"}
_n = iter(range(10_000))


def r(task, answer, prediction, error=None, test_point=None, **kw) -> ItemResult:
    return ItemResult(
        item_id=f"v/{next(_n)}",
        task_type=task,
        answer=answer,
        prediction=prediction,
        correct=error is None and prediction == answer,
        test_point=test_point,
        error=error,
        **kw,
    )


def bench_set() -> list[ItemResult]:
    return [
        # SR: 3 of 4
        r(SR, "A", "A"),
        r(SR, "B", "B"),
        r(SR, "C", "C"),
        r(SR, "D", "A"),
        # OI-E: 1 of 2 (the second names the right letter but failed: wrong)
        r(OIE, "B", "B"),
        r(OIE, "C", "C", error="CUDA out of memory"),
        # control: perfect, never in the overall
        r(CTL, "A", "A"),
        r(CTL, "B", "B"),
    ]


def proactive_set() -> list[ItemResult]:
    return [
        # GTA: TP, FN, FN (None), FP, TN, TN-but-wrong (None)
        r(GTA, "A", "A", test_point=0),
        r(GTA, "A", "B", test_point=1),
        r(GTA, "A", None, test_point=2),
        r(GTA, "B", "A", test_point=3),
        r(GTA, "B", "B", test_point=4),
        r(GTA, "B", None, test_point=5),
        # OAA: TP, an error that said "A" (did not fire: TN, wrong), TP
        r(OAA, "A", "A", test_point=0),
        r(OAA, "B", "A", error="decode failed", test_point=1),
        r(OAA, "A", "A", test_point=2),
    ]


def test_overall_is_the_mean_of_task_accuracies_control_apart_errors_wrong():
    s = summarise(bench_set())
    assert s["tasks"][SR] == {"task": "SR", "n": 4, "correct": 3, "errors": 0, "accuracy": 75.0}
    assert s["tasks"][OIE] == {"task": "OI-E", "n": 2, "correct": 1, "errors": 1, "accuracy": 50.0}
    assert s["overall"] == {"accuracy": 62.5, "n_tasks": 2, "n": 6, "correct": 4}  # not 4/6 = 66.7
    assert CTL not in s["tasks"]
    assert s["control"]["tasks"][CTL]["accuracy"] == 100.0 and s["control"]["accuracy"] == 100.0
    assert s["n_items"] == 8 and s["errors"] == 1
    assert s["proactive"] == {"tasks": {}, "pooled": None}
    assert list(s["tasks"]) == [SR, OIE]  # TASKS order


def test_proactive_precision_recall_f1_by_hand():
    s = summarise(proactive_set())
    gta, oaa, pooled = s["proactive"]["tasks"][GTA], s["proactive"]["tasks"][OAA], s["proactive"]["pooled"]
    assert (gta["tp"], gta["fp"], gta["fn"], gta["tn"]) == (1, 1, 2, 2)
    assert gta["precision"] == pytest.approx(50.0)  # 1 / 2
    assert gta["recall"] == pytest.approx(100 / 3)  # 1 / 3
    assert gta["f1"] == pytest.approx(40.0)  # 2 / (2 + 1 + 2)
    assert (oaa["tp"], oaa["fp"], oaa["fn"], oaa["tn"]) == (2, 0, 0, 1)
    assert (oaa["precision"], oaa["recall"], oaa["f1"]) == (100.0, 100.0, 100.0)
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"], pooled["n"]) == (3, 1, 2, 3, 9)
    assert pooled["precision"] == pytest.approx(75.0)
    assert pooled["recall"] == pytest.approx(60.0)
    assert pooled["f1"] == pytest.approx(200 / 3)  # 6 / 9
    # accuracy over test points: GTA 2/6 (a None on a "No" point is wrong), OAA 2/3 (the error is wrong)
    assert s["tasks"][GTA]["correct"] == 2 and s["tasks"][GTA]["accuracy"] == pytest.approx(100 / 3)
    assert s["tasks"][OAA]["accuracy"] == pytest.approx(200 / 3)
    assert s["overall"]["accuracy"] == pytest.approx(50.0)


def test_undefined_rates_and_unknown_task():
    s = summarise([r(GTA, "A", "B", test_point=0), r(GTA, "A", None, test_point=1)])
    b = s["proactive"]["tasks"][GTA]
    assert b["precision"] is None and b["recall"] == 0.0 and b["f1"] == 0.0  # no alert fired
    s = summarise([r(GTA, "B", "B", test_point=0)])
    b = s["proactive"]["tasks"][GTA]
    assert b["precision"] is None and b["recall"] is None and b["f1"] is None  # nothing to find, nothing fired
    assert summarise([])["overall"]["accuracy"] is None
    with pytest.raises(InputError, match="unknown task_type"):
        summarise([r("made_up_task", "A", "A")])


def test_item_result_from_item_and_json_round_trip():
    item = QAItem(
        item_id="vid/3.0/p2",
        video=Path("/d/vid.mp4"),
        fixation_csv=None,
        question="Alert?",
        options=["A. Yes", "B. No"],
        answer="A",
        task_type=GTA,
        time_s=12.5,
        window=(2.5, 12.5),
        sampling_fps=1.0,
        test_point=2,
    )
    res = ItemResult.from_item(item, "A", scores={"A": 1.5, "B": -0.25})
    assert res.correct and res.video == "/d/vid.mp4" and res.test_point == 2 and res.time_s == 12.5
    assert not ItemResult.from_item(item, "A", error="boom").correct
    assert not ItemResult.from_item(item, None).correct
    back = ItemResult.from_json(json.loads(json.dumps(res.to_json())))
    assert back == res
    with pytest.raises(InputError, match="wrong type"):
        ItemResult.from_json({**res.to_json(), "correct": "yes"})
    with pytest.raises(InputError, match="missing"):
        ItemResult.from_json({"item_id": "x"})


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines()


def test_results_log_resumes_after_a_truncated_last_line(tmp_path):
    p = tmp_path / "run" / "items.jsonl"
    done = [r(SR, "A", "A"), r(SR, "B", "C"), r(OIE, "A", None, error="x")]
    with ResultsLog(p).open(HEADER) as log:
        for x in done:
            log.append(x)
    # a killed run: the fourth item's line cut off mid-write (longer than the line that replaces it)
    partial = json.dumps(r(SR, "D", "D", text="because " * 100).to_json())
    with open(p, "a") as fh:
        fh.write(partial[: len(partial) * 3 // 4])
    log = ResultsLog(p)
    assert log.done_ids(HEADER) == {x.item_id for x in done}
    assert log.read() == done
    redo = r(SR, "D", "D")
    with log.open(HEADER) as lg:
        lg.append(redo)
    lines = _lines(p)
    assert len(lines) == 5 and json.loads(lines[0]) == {"header": HEADER}
    assert [json.loads(x) for x in lines[1:]] == [x.to_json() for x in [*done, redo]]  # the stub is gone
    assert ResultsLog(p).read() == [*done, redo]


@pytest.mark.parametrize("when", ["header", "item", "close"])
def test_a_results_log_the_disk_refuses_names_itself_and_says_how_to_resume(tmp_path, monkeypatch, when):
    """Before: the header, an item line or the closing sync meeting a full disk raised a bare OSError (a buffered
    write names no file), which the CLI reported as 'cannot write an output file'."""
    import errno

    import gazeqwen_edge.training.results as results_module
    from gazeqwen_edge.errors import DeviceError

    real_sync = results_module.sync
    calls = []

    def full_at(fh):
        calls.append(fh)
        if {"header": 1, "item": 2, "close": 3}[when] == len(calls):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_sync(fh)

    monkeypatch.setattr(results_module, "sync", full_at)
    p = tmp_path / "items.jsonl"
    with pytest.raises(DeviceError, match=f"cannot write the results log \\({p}\\): No space left") as e:
        log = ResultsLog(p, sync_every=1).open(HEADER)
        log.append(r(SR, "A", "A"))
        log.close()
    assert "rerun the same command to resume" in e.value.hint


def test_results_log_refuses_another_run_and_garbage(tmp_path):
    p = tmp_path / "items.jsonl"
    with ResultsLog(p).open(HEADER) as log:
        log.append(r(SR, "A", "A"))
    for key, value in (("variant", "gaze_text"), ("model", "other"), ("protocol", "generation"), ("qa_file", "/x")):
        other = {**HEADER, key: value}
        with pytest.raises(InputError, match=f"another run.*{key}"):
            ResultsLog(p).open(other)
        with pytest.raises(InputError, match="another run"):
            ResultsLog(p).done_ids(other)
    assert len(_lines(p)) == 2  # a refused open leaves the log as it was
    # extra header keys (e.g. a timestamp) may differ
    ResultsLog(p).open({**HEADER, "created": "later"}).close()
    # a corrupt line that is not the last one (its newline was written): refused, not skipped
    p.write_text(_lines(p)[0] + "\n{broken\n" + json.dumps(r(SR, "A", "A").to_json()) + "\n")
    with pytest.raises(InputError, match=":2") as e:
        ResultsLog(p).done_ids()
    assert e.value.hint.startswith("delete line 2 (that item is done again")  # not the log with every item done
    p.write_text("{broken\n" + json.dumps(r(SR, "A", "A").to_json()) + "\n")
    with pytest.raises(InputError, match=":1") as e:
        ResultsLog(p).done_ids()
    assert e.value.hint.startswith("delete the log")  # its header: nothing to resume against
    q = tmp_path / "not_a_log.jsonl"
    q.write_text(json.dumps(r(SR, "A", "A").to_json()) + "\n")
    with pytest.raises(InputError, match="header"):
        ResultsLog(q).open(HEADER)
    with pytest.raises(InputError, match="qa_file"):
        ResultsLog(tmp_path / "new.jsonl").open({"model": "m", "protocol": "p", "variant": "v"})


def test_results_log_header_cut_off_starts_afresh(tmp_path):
    p = tmp_path / "items.jsonl"
    p.write_text('{"header": {"model"')  # killed while writing the header
    assert ResultsLog(p).done_ids(HEADER) == set()
    with ResultsLog(p, sync_every=4).open(HEADER) as log:
        log.append(r(SR, "A", "A"))
    assert len(_lines(p)) == 2 and json.loads(_lines(p)[0]) == {"header": HEADER}


def test_write_results_round_trip(tmp_path):
    items = bench_set() + proactive_set()
    jp, mp = write_results(tmp_path / "out", {**HEADER, "created": "2026-01-01T00:00:00+00:00"}, items)
    doc, back = read_results(jp)
    assert back == items
    assert doc["schema"] == 1 and doc["n_items"] == len(items)
    assert {k: doc[k] for k in HEADER} == HEADER and doc["created"] == "2026-01-01T00:00:00+00:00"
    assert doc["summary"] == summarise(items)
    md = mp.read_text()
    assert "# Results: no_gaze" in md and "| no_gaze" in md and "Overall" in md
    with pytest.raises(InputError, match="reserved"):
        write_results(tmp_path / "o2", {**HEADER, "summary": 1}, items)
    assert "created" in read_results(write_results(tmp_path / "o3", HEADER, items[:2])[0])[0]
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 2, "items": []}')
    with pytest.raises(InputError, match="schema"):
        read_results(bad)


def test_markdown_table():
    a = summarise(bench_set() + proactive_set())
    b = summarise([r(SR, "A", "A"), r(SR, "A", "B")])
    text = markdown_table({"no_gaze": a, "gazeqwen_spatial": b})
    lines = text.splitlines()
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[:4]]
    assert cells[0] == ["Variant", "SR", "OI-E", "GTA", "OAA", "Overall", "CTL-O"]
    assert cells[2] == ["no_gaze", "75.0", "50.0", "33.3", "66.7", "56.2", "100.0"]  # (75+50+33.3+66.7)/4
    assert cells[3] == ["gazeqwen_spatial", "50.0", "-", "-", "-", "50.0", "-"]
    assert len({len(ln) for ln in lines[:4]}) == 1  # padded: columns line up in a terminal
    i = lines.index("| Variant | Task   |   n | Precision | Recall |    F1 |")
    prf = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[i + 2 : i + 5]]
    assert prf == [
        ["no_gaze", "GTA", "6", "50.0", "33.3", "40.0"],
        ["no_gaze", "OAA", "3", "100.0", "100.0", "100.0"],
        ["no_gaze", "pooled", "9", "75.0", "60.0", "66.7"],
    ]
    assert "Precision" not in markdown_table({"x": b})


def test_a_log_resumes_only_on_the_same_clip_and_lists_it_readably(tmp_path):
    """The clip (frames and scanpath rule each item is scored on) is part of what a resumed log must agree on. Before:
    it was not compared, so `eval --clip reference` resumed a log written under the stream clip and mixed the two;
    and results.md listed it as a JSON list ('clip: ["stream", 8, 2.0, 2.0, "stream"]')."""
    from dataclasses import asdict

    from gazeqwen_edge.training.data import ClipConfig

    stream = {**HEADER, "clip": asdict(ClipConfig(policy="stream", stream_max_s=2.0, scanpath="stream"))}
    p = tmp_path / "items.jsonl"
    with ResultsLog(p).open(stream) as log:
        log.append(r(SR, "A", "A"))
    assert len(ResultsLog(p).read(stream)) == 1
    other = {**HEADER, "clip": asdict(ClipConfig(policy="stream", scanpath="stream"))}
    with pytest.raises(InputError) as refused:
        ResultsLog(p).open(other)
    # the field that differs, not two dicts
    assert "(clip stream_max_s: log has 2.0, this run 60.0)" in str(refused.value), refused.value
    # a log written before the clip was a field holds ClipConfig.key(): the same clip resumes, another is refused
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"header": {**HEADER, "clip": ClipConfig(**stream["clip"]).key()}}) + "\n")
    assert ResultsLog(old).read(stream) == []
    with pytest.raises(InputError, match="clip"):
        ResultsLog(old).read(other)
    write_results(tmp_path / "out", stream, [r(SR, "A", "A")])
    md = (tmp_path / "out" / "results.md").read_text()
    assert "- clip: policy stream, max_frames 8, stream_fps 2.0, stream_max_s 2.0, scanpath stream" in md, md
