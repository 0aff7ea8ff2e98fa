"""The synthetic gaze benchmark: StreamGaze's file formats, disjoint splits, determinism, and every task's ground truth
checked against the scene generator independently of the code that wrote it (the scenes are rebuilt here from their
seeds, and the answers recomputed from `looked_at`, `object_at`, `visible_intervals` and the gaze samples)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device._io import iter_video_frames, probe_video
from gazeqwen_edge.device.synthetic import COLOURS, SHAPES, SyntheticScene
from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.training import synthetic_benchmark as sb
from gazeqwen_edge.training.tasks import ALL_TASKS, NOTHING, clip_window, is_proactive
from tests.cli.helpers import cli

STREAMGAZE_COLUMNS = [  # REFERENCE.md section 2, and the header of shared/fixtures/streamgaze_sample/*.csv
    "start_time",
    "end_time",
    "center_x",
    "center_y",
    "duration",
    "start_time_seconds",
    "end_time_seconds",
    "fixation_id",
    "duration_seconds",
]
MC_KEYS = {"question", "time_stamp", "answer", "options", "task_type"}
PROACTIVE_KEYS = {"question", "time_stamp", "first_appearance", "target_object", "test_info", "task_type"}
TINY = dict(n_videos=3, seed=7, duration_s=8.0, width=160, height=120, fps=5)
SMALL = dict(n_videos=6, seed=1, duration_s=20.0, width=160, height=120, fps=5)  # every task occurs


def secs(mmss: str) -> int:
    m, s = mmss.split(":")
    return int(m) * 60 + int(s)


def build(tmp_path_factory, name: str, **kw) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp(name) / "bench"
    return out, sb.build_synthetic_benchmark(out, **kw)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build(tmp_path_factory, "tiny", **TINY)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build(tmp_path_factory, "small", **SMALL)


class Bench:
    """A built benchmark read back: its questions and, per video, the scene rebuilt from the manifest."""

    def __init__(self, out: Path, manifest: dict):
        self.out, self.manifest = out, manifest
        p = manifest["params"]
        self.scenes: dict[str, SyntheticScene] = {}
        for s in manifest["scenes"]:
            scene = SyntheticScene(
                seed=s["seed"],
                duration_s=p["duration_s"],
                width=p["width"],
                height=p["height"],
                fps=p["fps"],
                n_objects=len(s["objects"]),
                object_scale=p["object_scale"],
            )
            assert [o.name for o in scene.objects] == s["objects"]
            self.scenes[f"synth_{s['seed']}.mp4"] = scene
        self.questions = []  # (split, video, question dict)
        for split in ("train", "val", "test"):
            for e in json.loads((out / f"{split}.json").read_text()):
                self.questions += [(split, e["video_path"], q) for q in e["questions"]]

    def of(self, task_type: str):
        return [(self.scenes[v], q) for _, v, q in self.questions if q["task_type"] == task_type]


@pytest.fixture(scope="module")
def bench(small) -> Bench:
    return Bench(*small)


def answer_text(q: dict) -> str:
    opt = q["options"]["ABCD".index(q["answer"])]
    assert opt.startswith(q["answer"] + ". ")
    return opt[3:]


def option_texts(q: dict) -> list[str]:
    return [o[3:] for o in q["options"]]


def ns(scene: SyntheticScene, t: float) -> int:
    return scene.start_ns + int(round(t * 1e9))


def looked(scene: SyntheticScene) -> list[tuple[float, float, str]]:
    return [((a - scene.start_ns) / 1e9, (b - scene.start_ns) / 1e9, n) for a, b, n in scene.looked_at]


def true_gaze(scene: SyntheticScene, t: float) -> tuple[float, float]:
    ts, x, y = scene.gaze_arrays()
    i = int(np.argmin(np.abs(ts - ns(scene, t))))
    return float(x[i]), float(y[i])


def visible(scene: SyntheticScene, name: str, t: float) -> bool:
    """Visible in the frame shown at t (the last frame at or before it), from visible_intervals."""
    k = int(np.searchsorted(scene.frame_ts_ns, ns(scene, t), side="right")) - 1
    f = int(scene.frame_ts_ns[k])
    return any(a <= f <= b for a, b in scene.visible_intervals()[name])


def merged_visits(scene: SyntheticScene, t: float) -> list[str]:
    out = []
    for _, e, n in looked(scene):
        if e <= t and (not out or out[-1] != n):
            out.append(n)
    return out


# ------------------------------------------------------------------------------------------------ files and format
def test_layout_and_qa_json_format(tiny):
    out, manifest = tiny
    assert sorted(p.name for p in out.iterdir()) == ["fixations", "manifest.json", "test.json", "train.json",
                                                     "val.json", "videos"]  # fmt: skip
    n = 0
    for split in ("train", "val", "test"):
        data = json.loads((out / f"{split}.json").read_text())
        assert isinstance(data, list) and data
        for e in data:
            assert set(e) == {"video_path", "response_time", "questions"}
            assert re.fullmatch(r"synth_\d+\.mp4", e["video_path"]) and (out / "videos" / e["video_path"]).is_file()
            assert re.fullmatch(r"\[\d\d:\d\d - \d\d:\d\d\]", e["response_time"])
            for q in e["questions"]:
                n += 1
                assert q["task_type"] in ALL_TASKS
                assert re.fullmatch(r"\d\d:\d\d", q["time_stamp"])
                t_q = secs(q["time_stamp"])
                assert 0 <= t_q <= TINY["duration_s"]
                if is_proactive(q["task_type"]):
                    assert set(q) == PROACTIVE_KEYS
                    assert re.fullmatch(r"\d\d:\d\d", q["first_appearance"])
                    types = set()
                    for tp in q["test_info"]:
                        assert set(tp) == {"realtime", "type", "input_video_clip"} and tp["type"] in (0, 1)
                        rt = secs(tp["realtime"])
                        assert t_q < rt < TINY["duration_s"] and tp["input_video_clip"] == [max(0, rt - 60), rt]
                        types.add(tp["type"])
                    assert types == {0, 1}  # a mix of alerting and silent test points
                    assert e["response_time"] == f"[{q['time_stamp']} - {q['test_info'][-1]['realtime']}]"
                else:
                    assert MC_KEYS <= set(q) <= MC_KEYS | {"target_object"}
                    assert [o[:3] for o in q["options"]] == ["A. ", "B. ", "C. ", "D. "]
                    assert len(set(option_texts(q))) == 4 and q["answer"] in "ABCD"
                    w0, w1 = clip_window(q["task_type"], t_q)
                    assert e["response_time"] == f"[{sb.mmss(w0)} - {sb.mmss(w1)}]"
    assert n == sum(sum(c.values()) for c in manifest["questions"].values())


def test_fixation_csvs_have_streamgaze_columns_and_the_scene_fixations(tiny):
    out, manifest = tiny
    p = manifest["params"]
    for s in manifest["scenes"]:
        path = out / "fixations" / f"synth_{s['seed']}_fixation_filtered.csv"
        assert path == out / s["fixations"]
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == STREAMGAZE_COLUMNS
        body = [dict(zip(rows[0], map(float, r), strict=True)) for r in rows[1:]]
        scene = SyntheticScene(
            s["seed"],
            p["duration_s"],
            p["width"],
            p["height"],
            p["fps"],
            n_objects=len(s["objects"]),
            object_scale=p["object_scale"],
        )
        last = (scene.frame_ts_ns[-1] - scene.start_ns) / 1e9
        fix = [f for f in scene.fixations if (f.end_ns - scene.start_ns) / 1e9 <= last]  # those within the video
        assert len(body) == len(fix) > 5 and len(fix) >= len(scene.fixations) - 2
        for i, (r, f) in enumerate(zip(body, fix, strict=True)):
            assert r["fixation_id"] == i
            assert (
                r["start_time"]
                == r["start_time_seconds"]
                == pytest.approx((f.start_ns - scene.start_ns) / 1e9, abs=1e-9)
            )
            assert r["end_time"] == r["end_time_seconds"] == pytest.approx((f.end_ns - scene.start_ns) / 1e9, abs=1e-9)
            assert r["duration"] == r["duration_seconds"] == pytest.approx(r["end_time"] - r["start_time"], abs=1e-9)
            assert r["center_x"] == pytest.approx(f.x / p["width"], abs=1e-5)
            assert r["center_y"] == pytest.approx(f.y / p["height"], abs=1e-5)


def test_the_streamgaze_reader_takes_a_video_with_its_csv(tiny):
    from gazeqwen_edge.device.records import Notice
    from gazeqwen_edge.device.streamgaze import StreamGazeSource

    out, manifest = tiny
    p = manifest["params"]
    s = manifest["scenes"][0]
    scene = SyntheticScene(
        s["seed"],
        p["duration_s"],
        p["width"],
        p["height"],
        p["fps"],
        n_objects=len(s["objects"]),
        object_scale=p["object_scale"],
    )
    src = StreamGazeSource(out / s["video"], fixations=out / s["fixations"])
    assert src.scene_size == (p["width"], p["height"])
    got = src.fixations
    assert list(src.records({Notice})) == []  # nothing dropped or doubted
    assert 5 < len(got) <= len(scene.fixations)
    for a, b in zip(got, scene.fixations[: len(got)], strict=True):
        assert abs(a.x - b.x) < 1e-3 and abs(a.y - b.y) < 1e-3
        assert abs((a.start_ns - src.start_ns) - (b.start_ns - scene.start_ns)) < 10


def test_videos_decode_with_the_scene_frames(tiny):
    out, manifest = tiny
    p = manifest["params"]
    for s in manifest["scenes"]:
        info = probe_video(out / s["video"])
        assert (info.n_frames, info.width, info.height) == (int(p["duration_s"] * p["fps"]), p["width"], p["height"])
        assert info.fps == p["fps"]
    s = manifest["scenes"][0]
    scene = SyntheticScene(
        s["seed"],
        p["duration_s"],
        p["width"],
        p["height"],
        p["fps"],
        n_objects=len(s["objects"]),
        object_scale=p["object_scale"],
    )
    frames = list(iter_video_frames(out / s["video"]))
    for k in (0, len(frames) // 2, len(frames) - 1):  # the right frame at the right index (lossy: compare roughly)
        want = scene.render(int(scene.frame_ts_ns[k])).astype(float)
        assert np.abs(frames[k].astype(float) - want).mean() < 6
        other = scene.render(int(scene.frame_ts_ns[(k + len(frames) // 2) % len(frames)])).astype(float)
        assert np.abs(frames[k].astype(float) - want).mean() < np.abs(frames[k].astype(float) - other).mean()


def test_splits_are_disjoint_by_scene_and_follow_the_manifest(small):
    out, manifest = small
    seeds = {name: set(v["scene_seeds"]) for name, v in manifest["splits"].items()}
    assert [len(seeds[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert not (seeds["train"] & seeds["val"] or seeds["train"] & seeds["test"] or seeds["val"] & seeds["test"])
    assert {s["seed"] for s in manifest["scenes"]} == seeds["train"] | seeds["val"] | seeds["test"]
    for name in seeds:
        videos = {e["video_path"] for e in json.loads((out / f"{name}.json").read_text())}
        assert videos == {f"synth_{s}.mp4" for s in seeds[name]}
    assert sb.split_sizes(30) == (20, 5, 5) and sb.split_sizes(3) == (1, 1, 1)


def test_same_arguments_give_identical_files_another_seed_other_scenes(tiny, tmp_path_factory):
    out, manifest = tiny
    again, manifest2 = build(tmp_path_factory, "again", **TINY)
    assert manifest2 == manifest
    texts = ["train.json", "val.json", "test.json", "manifest.json"] + [s["fixations"] for s in manifest["scenes"]]
    for name in texts:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    other = sb.scene_seeds(TINY["seed"] + 1, TINY["n_videos"])
    assert set(sum(other.values(), [])) != {s["seed"] for s in manifest["scenes"]}


def test_every_task_occurs_and_the_manifest_counts_the_files(bench):
    m = bench.manifest
    for task in ALL_TASKS:
        assert sum(m["questions"][s][task] for s in ("train", "val", "test")) > 0, task
        assert len(bench.of(task)) == sum(m["questions"][s][task] for s in ("train", "val", "test"))
    assert m["params"] == {**{k: v for k, v in SMALL.items()}, "n_objects": [4, 6], "per_task": 3, "object_scale": 2.5}
    assert m["version"] and all({"task", "reason", "scenes"} == set(s) for s in m["skipped"])
    per_scene = {(s["scene"], s["task"]) for s in m["skipped_scenes"]}
    for _, video, q in bench.questions:  # a skipped (scene, task) has no question
        assert (int(video[6:-4]), q["task_type"]) not in per_scene


def test_correct_letters_are_spread_over_a_to_d(bench):
    letters = [q["answer"] for _, _, q in bench.questions if "answer" in q]
    counts = {c: letters.count(c) for c in "ABCD"}
    assert all(0.12 < n / len(letters) < 0.38 for n in counts.values()), counts


# ------------------------------------------------------------------------------------------------ ground truth
@pytest.mark.parametrize("task", ["present_object_identification_easy", "present_object_identification_hard"])
def test_object_identification_answer_is_the_object_under_the_gaze(bench, task):
    items = bench.of(task)
    assert items
    for scene, q in items:
        t = secs(q["time_stamp"])
        truth = answer_text(q)
        assert truth == q["target_object"]
        assert scene.object_at(*true_gaze(scene, t), ns(scene, t)) == truth
        covering = [(a, b) for a, b, n in looked(scene) if n == truth and a <= t <= b]
        assert len(covering) == 1
        a, b = covering[0]
        assert t >= a + 0.1 and t >= (a + b) / 2  # not in its first 100 ms, and its midpoint is in the clip
        others = [o for o in option_texts(q) if o != truth]
        assert all(o in {x.name for x in scene.objects} for o in others)
        if task.endswith("hard"):  # distractors: what is on screen near the gaze, so the frame alone does not help
            boxes = scene.object_boxes(ns(scene, t))
            assert sum(boxes[o][4] for o in others) >= 2


def test_attribute_answer_is_the_gazed_objects_colour_or_shape(bench):
    kinds = set()
    for scene, q in bench.of("present_object_attribute_recognition"):
        t = secs(q["time_stamp"])
        obj = next(o for o in scene.objects if o.name == scene.object_at(*true_gaze(scene, t), ns(scene, t)))
        kind = "colour" if "color" in q["question"] else "shape"
        kinds.add(kind)
        vocab = COLOURS if kind == "colour" else SHAPES
        assert answer_text(q) == getattr(obj, kind) and all(o in vocab for o in option_texts(q))
    assert kinds == {"colour", "shape"}


def test_future_action_answer_is_the_next_other_object_looked_at(bench):
    for scene, q in bench.of("present_future_action_prediction"):
        t = secs(q["time_stamp"])
        current = scene.object_at(*true_gaze(scene, t), ns(scene, t))
        nxt = next(n for a, _, n in looked(scene) if a > t and n != current)
        assert answer_text(q) == nxt and current not in option_texts(q)


def test_scene_recall_truth_was_looked_at_and_distractors_were_not(bench):
    for scene, q in bench.of("past_scene_recall"):
        t = secs(q["time_stamp"])
        truth = answer_text(q)
        assert any(n == truth and b <= t for _, b, n in looked(scene))
        assert all(not (n in option_texts(q) and n != truth and a <= t) for a, _, n in looked(scene))


def test_non_fixated_truth_was_visible_and_never_looked_at(bench):
    items = bench.of("past_non_fixated_object_identification")
    assert items
    for scene, q in items:
        t = secs(q["time_stamp"])
        truth = answer_text(q)
        assert not any(n == truth and a <= t for a, _, n in looked(scene))
        assert any(ns(scene, 0) <= a <= ns(scene, t) for a, _ in scene.visible_intervals()[truth])
        for other in option_texts(q):  # every other option is wrong: looked at, or never in the scene
            if other != truth:
                assert any(n == other and b <= t for _, b, n in looked(scene)) or other not in scene.visible_intervals()


def test_object_transition_truth_followed_every_visit(bench):
    for scene, q in bench.of("past_object_transition_prediction"):
        t = secs(q["time_stamp"])
        x = re.fullmatch(r"After looking at the (.+), which object did the user look at next\?", q["question"])[1]
        v = merged_visits(scene, t)
        followers = {b for a, b in zip(v, v[1:], strict=False) if a == x}
        assert followers == {answer_text(q)}


def test_gaze_sequence_truth_is_the_last_three_objects_in_order(bench):
    for scene, q in bench.of("past_gaze_sequence_matching"):
        v = merged_visits(scene, secs(q["time_stamp"]))
        assert answer_text(q) == " -> ".join(v[-3:])
        assert all(sorted(o.split(" -> ")) == sorted(v[-3:]) for o in option_texts(q))


def test_gaze_triggered_alert_types_follow_looked_at(bench):
    both = set()
    for scene, q in bench.of("proactive_gaze_triggered_alert"):
        x = q["target_object"]
        assert f"<{x}>" in q["question"]
        for tp in q["test_info"]:
            rt = secs(tp["realtime"])
            on = any(n == x and a <= rt <= b for a, b, n in looked(scene))
            assert tp["type"] == int(on), (x, tp)
            if on:  # alerting points are answerable: the gaze is on the object then
                assert scene.object_at(*true_gaze(scene, rt), ns(scene, rt)) == x
            both.add(tp["type"])
    assert both == {0, 1}


def test_watch_truth_is_the_first_fixation_on_each_object_and_the_objects_never_fixated(bench):
    """eval-alerts measures a watch's delay from the first fixation on its target and expects a watch on an object
    never fixated to stay silent: both from the generator, checked here against the scene's own `looked_at` and
    `visible_intervals` (and StreamGaze's first_appearance is that first fixation floored)."""
    truth = sb.benchmark_watch_truth(bench.out / "test.json")
    n_never = 0
    for video, scene in bench.scenes.items():
        wt = truth(Path(video))
        last_frame = int(scene.frame_ts_ns[-1])
        seen = [(a, n) for a, b, n in scene.looked_at if b <= last_frame]  # the CSV's: ended by the last frame
        for name in (o.name for o in scene.objects):
            starts = [a for a, n in seen if n == name]
            if starts:
                assert wt.first_fixation_s[name] == pytest.approx((min(starts) - scene.start_ns) / 1e9, abs=1e-9)
                assert name not in wt.never_fixated
            else:
                assert name not in wt.first_fixation_s
                on_screen = (
                    sum(
                        int(np.count_nonzero((scene.frame_ts_ns >= a) & (scene.frame_ts_ns <= b)))
                        for a, b in scene.visible_intervals()[name]
                    )
                    / scene.fps
                )
                assert (name in wt.never_fixated) == (on_screen >= sb.MIN_VISIBLE_S), (name, on_screen)
                n_never += name in wt.never_fixated
    for scene, q in bench.of("proactive_gaze_triggered_alert"):
        video = next(v for v, s in bench.scenes.items() if s is scene)
        first = truth(Path(video)).first_fixation_s[q["target_object"]]
        assert q["first_appearance"] == sb.mmss(math.floor(first))
    assert n_never >= 1, "the small benchmark has an object on screen that is never looked at"
    assert truth(Path("synth_1.mp4")) is None  # not in the manifest


def test_watch_truth_from_a_manifest_of_other_parameters_is_refused(bench, tmp_path):
    """A manifest.json edited (or from another generator version) rebuilds other scenes: their truth would be wrong
    while looking right, so it is refused, naming the video."""
    manifest = json.loads((bench.out / "manifest.json").read_text())
    k = len(manifest["scenes"][0]["objects"])
    manifest["params"]["n_objects"] = [k + 1, k + 1] if k < 8 else [4, 4]  # the first scene gets another count
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "test.json").write_text("[]")
    truth = sb.benchmark_watch_truth(tmp_path / "test.json")
    video = Path(manifest["scenes"][0]["video"]).name
    with pytest.raises(InputError, match=f"does not describe {video}") as e:
        truth(Path(video))
    assert "--truth first-appearance" in e.value.hint


def test_watch_truth_needs_this_generators_manifest(tmp_path):
    (tmp_path / "qa.json").write_text("[]")
    assert sb.benchmark_watch_truth(tmp_path / "qa.json") is None  # StreamGaze's own files: no manifest
    (tmp_path / "manifest.json").write_text(json.dumps({"generator": "someone else"}))
    assert sb.benchmark_watch_truth(tmp_path / "qa.json") is None
    (tmp_path / "manifest.json").write_text(json.dumps({"generator": sb.GENERATOR, "params": {}}))
    with pytest.raises(InputError, match="not a readable synthetic benchmark manifest"):
        sb.benchmark_watch_truth(tmp_path / "qa.json")


def test_appearance_alert_types_follow_visibility(bench):
    for scene, q in bench.of("proactive_object_appearance_alert"):
        x = q["target_object"]
        first = min(a for a, _ in scene.visible_intervals()[x])
        assert q["first_appearance"] == sb.mmss(math.floor((first - scene.start_ns) / 1e9))
        for tp in q["test_info"]:
            assert tp["type"] == int(visible(scene, x, secs(tp["realtime"]))), (x, tp)


def test_control_questions_need_no_gaze(bench):
    for scene, q in bench.of("control_scene_object"):
        names = {o.name for o in scene.objects}
        truth = answer_text(q)
        assert truth in names and not (set(option_texts(q)) - {truth}) & names
    for scene, q in bench.of("control_object_attribute"):
        shape = re.fullmatch(r"What color is the (\w+)\?", q["question"])[1]
        obj = next(o for o in scene.objects if o.shape == shape)
        assert answer_text(q) == obj.colour and visible(scene, obj.name, secs(q["time_stamp"]))


def test_background_gaze_questions_are_asked_while_the_wearer_looks_at_no_object(bench):
    """CTL-G: inside a fixation on the background (at least 100 ms in, past its midpoint), the true gaze and the
    fixation's centre on no object; the answer is "nothing", the other options objects of the scene."""
    items = bench.of("control_background_gaze")
    assert items
    for scene, q in items:
        t = secs(q["time_stamp"])
        assert answer_text(q) == NOTHING and "target_object" not in q
        assert q["question"] == "Which object is the user currently gazing at?"
        assert scene.object_at(*true_gaze(scene, t), ns(scene, t)) is None
        covering = [
            (f, name)
            for f, name in zip(scene.true_fixations, scene.fixation_targets, strict=True)
            if f.start_ns <= ns(scene, t) <= f.end_ns
        ]
        assert len(covering) == 1
        f, name = covering[0]
        a, b = (f.start_ns - scene.start_ns) / 1e9, (f.end_ns - scene.start_ns) / 1e9
        assert name is None and t >= a + 0.1 and t >= (a + b) / 2
        assert scene.object_at(f.x, f.y, ns(scene, t)) is None
        others = [o for o in option_texts(q) if o != NOTHING]
        assert len(others) == 3 and set(others) <= {x.name for x in scene.objects}


# ------------------------------------------------------------------------------------------------ refusals and CLI
def test_bad_parameters_are_refused(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="not an empty directory"):
        sb.build_synthetic_benchmark(tmp_path / "full", **TINY)
    for bad in (dict(n_videos=2), dict(fps=0), dict(n_objects=(3, 5)), dict(duration_s=4.0), dict(width=16)):
        with pytest.raises(ConfigError):
            sb.build_synthetic_benchmark(tmp_path / "new", **{**TINY, **bad})
    assert not (tmp_path / "new").exists()


def test_cli_writes_the_set_and_refuses_a_non_empty_out(capsys, tmp_path):
    out = tmp_path / "bench"
    args = ["dataset", "synthetic", out, "--videos", "3", "--duration", "8", "--size", "64x48", "--fps", "2"]
    rc, stdout, err = cli(capsys, *args, "--seed", "3")
    assert rc == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["seed"] == 3 and manifest["params"]["width"] == 64
    assert len(list((out / "videos").glob("synth_*.mp4"))) == 3
    assert "OI-E" in stdout and "present_object_identification_easy" in stdout and "wrote" in stdout
    rc, stdout, err = cli(capsys, *args)  # (seed 0 by default)
    assert rc == 2 and err.count("error:") == 1 and "built with other options (seed 3 there, 0 now)" in err, err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    rc, stdout, err = cli(capsys, "dataset", "synthetic", tmp_path / "other", "--videos", "3")
    assert rc == 2 and err.count("error:") == 1 and "not empty and holds no earlier run" in err, err
    rc, _, err = cli(capsys, "dataset", "synthetic", tmp_path / "b2", "--videos", "2")
    assert rc == 2 and "--videos" in err and not (tmp_path / "b2").exists()
    rc, stdout, _ = cli(capsys, "dataset", "synthetic", "--help")
    assert rc == 0 and "--videos" in stdout and "MM:SS" in stdout


def test_a_build_the_disk_stopped_leaves_no_cut_video_and_a_rerun_finishes_it(tiny, tmp_path, monkeypatch):
    """Before: a full disk left a cut-off mp4 under its real name, and the rerun was refused as 'not empty'. Videos
    are written as .part and renamed when whole; the rerun (same options) keeps them and writes the rest, giving the
    files a build without the fault gives."""
    import errno

    from gazeqwen_edge.device import _io

    out = tmp_path / "bench"
    written = []
    real_write = _io.Mp4Writer.write

    def fills_in_the_second_video(self, rgb):
        if self.path not in written:
            written.append(self.path)
        if len(written) == 2 and self.n == 3:
            # a process killed here (not only one that gets an error) must leave no cut video under the real name
            assert not Path(str(self.path).removesuffix(".part")).exists()
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, rgb)

    monkeypatch.setattr(_io.Mp4Writer, "write", fills_in_the_second_video)
    with pytest.raises(OSError) as e:
        sb.build_synthetic_benchmark(out, **TINY)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.setattr(_io.Mp4Writer, "write", real_write)
    assert [p.name for p in (out / "videos").iterdir()] == [written[0].name.removesuffix(".part")]  # no cut one
    assert (out / sb.BUILDING_FILE).exists() and not (out / "manifest.json").exists()
    first = (out / "videos").iterdir().__next__()
    first_stat = first.stat()

    with pytest.raises(InputError, match=r"unfinished benchmark built with other options \(seed 7 there, 8 now\)"):
        sb.build_synthetic_benchmark(out, **{**TINY, "seed": 8})
    manifest = sb.build_synthetic_benchmark(out, **TINY)  # the rerun finishes it
    reference, ref_manifest = tiny
    assert manifest == ref_manifest and not (out / sb.BUILDING_FILE).exists()
    texts = ["train.json", "val.json", "test.json", "manifest.json"] + [s["fixations"] for s in manifest["scenes"]]
    for name in texts + [s["video"] for s in manifest["scenes"]][1:]:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert first.stat().st_ino == first_stat.st_ino and first.stat().st_mtime_ns == first_stat.st_mtime_ns  # kept
    assert not list(out.rglob("*.part")) and not list(out.rglob("*.tmp"))


def test_cli_defaults_are_the_generators():
    from gazeqwen_edge.cli import dataset as d

    assert (d.DEFAULT_VIDEOS, d.MAX_VIDEOS) == (sb.DEFAULT_VIDEOS, sb.MAX_VIDEOS)
    assert (d.DEFAULT_DURATION_S, d.MIN_DURATION_S, d.MAX_DURATION_S) == (
        sb.DEFAULT_DURATION_S,
        sb.MIN_DURATION_S,
        sb.MAX_DURATION_S,
    )
    assert d.DEFAULT_SIZE == "{}x{}".format(*sb.DEFAULT_SIZE)
    assert (d.DEFAULT_FPS, d.MAX_FPS, d.DEFAULT_PER_TASK) == (sb.DEFAULT_FPS, sb.MAX_FPS, sb.QUESTIONS_PER_TASK)
    assert d.DEFAULT_OBJECT_SCALE == sb.DEFAULT_OBJECT_SCALE
