"""The StreamGaze loader for training and evaluation: QA files as QAItems (every task type, proactive test points,
malformed questions named and counted), the two scanpath protocols, and splits by video. The StreamGaze-format sets
are generated here (tiny real videos + fixation CSVs with StreamGaze's columns); the real sample in
../shared/fixtures/streamgaze_sample is used where present."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device._io import Mp4Writer
from gazeqwen_edge.device.streamgaze import parse_mmss
from gazeqwen_edge.errors import InputError
from gazeqwen_edge.training import streamgaze as sg
from gazeqwen_edge.training.streamgaze import (
    item_scanpath,
    load_streamgaze,
    read_split_file,
    select_split,
    split_videos,
    video_names,
    write_split_file,
)
from gazeqwen_edge.training.tasks import TASKS, YES_NO, QAItem, clip_sampling_fps

HEADER = (
    "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,duration_seconds"
)
OPTS = ["A. box", "B. spices", "C. knife", "D. jar"]
SAMPLE_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "streamgaze_sample"


def _video(path: Path, seconds: float, fps: int) -> Path:
    """A 64x48 H.264 mp4 of `seconds` at `fps` (its end: seconds)."""
    w = Mp4Writer(path, 64, 48, fps)
    for k in range(int(round(seconds * fps))):
        w.write(np.full((48, 64, 3), k % 255, np.uint8))
    w.close()
    return path


def _csv(path: Path, rows: list[tuple[float, float, float, float]]) -> Path:
    """A StreamGaze fixation CSV of rows (start_s, end_s, x, y)."""
    lines = [HEADER] + [f"{s},{e},{x},{y},{e - s},{s},{e},{k},{e - s}" for k, (s, e, x, y) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _mc(task: str, ts: str, answer: str = "C", options=None, **extra) -> dict:
    return {
        "question": f"q {task}",
        "time_stamp": ts,
        "answer": answer,
        "options": OPTS if options is None else options,
        "task_type": task,
        **extra,
    }


def _proactive(task: str, points: list[dict], **extra) -> dict:
    return {"question": f"Tell me when {task}", "task_type": task, "test_info": points, **extra}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """videos/: vidA.mp4 (75 s at 2 fps), vidB.mp4 (10 s at 5 fps), broken.mp4 (not a video); fixations/: vidA's
    filtered AND dataset files, vidB's dataset file only (a copy of it also beside the video); qa.json: every task
    type on vidA, a malformed question of each kind on vidB, a missing and an unreadable video."""
    root = tmp_path_factory.mktemp("streamgaze")
    videos, fix = root / "videos", root / "fixations"
    videos.mkdir()
    fix.mkdir()
    _video(videos / "vidA.mp4", 75, 2)
    _video(videos / "vidB.mp4", 10, 5)
    (videos / "broken.mp4").write_bytes(b"this is not an mp4 file" * 10)
    _csv(fix / "vidA_fixation_filtered.csv", [(2.0, 3.0, 0.25, 0.5), (12.0, 14.0, 0.5, 0.5)])
    _csv(fix / "vidA_fixation_dataset.csv", [(1.0, 1.5, 0.9, 0.9), (2.0, 3.0, 0.25, 0.5), (12.0, 14.0, 0.5, 0.5)])
    _csv(fix / "vidB_fixation_dataset.csv", [(1.0, 2.0, 0.5, 0.5)])
    shutil.copy(fix / "vidB_fixation_dataset.csv", videos / "vidB_fixation_dataset.csv")
    _csv(fix / "broken_fixation_filtered.csv", [(1.0, 2.0, 0.5, 0.5)])
    qa = [
        {
            "video_path": "some/where/vidA.mp4",  # not under videos/: found by its file name
            "response_time": "[00:10 - 01:10]",
            "questions": [
                _mc("past_scene_recall", "01:05"),
                _mc("past_object_transition_prediction", "00:01:05"),  # HH:MM:SS
                _mc("past_gaze_sequence_matching", "00:20.5", answer="B"),  # MM:SS.s
                _mc("past_non_fixated_object_identification", "00:20", answer="A"),
                _mc("present_object_identification_easy", "01:10", target_object="knife"),
                _mc("present_object_identification_hard", "01:10", answer="D"),
                _mc("present_object_attribute_recognition", "00:30", answer="B", options=["box", "cup"]),
                _mc("present_future_action_prediction", "01:14"),
            ],
        },
        {
            "video_path": "vidA.mp4",
            "questions": [
                _proactive(
                    "proactive_gaze_triggered_alert",
                    [
                        {"realtime": "00:20", "type": 1, "input_video_clip": [0, 20]},
                        {"realtime": "00:40", "type": 0, "input_video_clip": ["00:05", "00:40"]},
                        {"realtime": "01:00", "type": 1, "input_video_clip": [30.5, 60]},
                    ],
                    target_object="knife",
                    first_appearance="00:12",
                ),
                _proactive(
                    "proactive_object_appearance_alert",
                    [{"realtime": "00:50", "type": 0, "input_video_clip": [20, 50]}],
                ),
            ],
        },
        {
            "video_path": "vidB.mp4",
            "questions": [
                _mc("present_object_identification_easy", "00:05"),  # the one usable question of vidB
                _mc("past_scene_recall", "0:7x"),  # malformed time stamp
                _mc("past_magic_trick", "00:05"),  # unknown task type
                _mc("past_scene_recall", "00:05", answer="E"),  # answer not among the options
                _mc("past_scene_recall", "00:30"),  # past the video's end (10 s)
                _proactive(  # a test point with a bad type: the other point is still an item
                    "proactive_object_appearance_alert",
                    [
                        {"realtime": "00:04", "type": 1, "input_video_clip": [0, 4]},
                        {"realtime": "00:06", "type": 2, "input_video_clip": [0, 6]},
                        {"realtime": "00:05", "type": 0, "input_video_clip": [0, 8]},  # clip ends after realtime
                    ],
                ),
                {"question": "Alert me", "task_type": "proactive_gaze_triggered_alert"},  # no test_info
                {**_mc("past_scene_recall", "00:05"), "question": "What was \ud800 seen?"},  # a lone surrogate
                {**_mc("past_scene_recall", "00:05"), "options": ["A. box", "B. \udcff", "C. cup", "D. jar"]},
            ],
        },
        {
            "video_path": "missing.mp4",
            "questions": [_mc("past_scene_recall", "00:05"), _mc("past_scene_recall", "00:06")],
        },
        {"video_path": "broken.mp4", "questions": [_mc("past_scene_recall", "00:05")]},
    ]
    (root / "qa.json").write_text(json.dumps(qa))
    return root


@pytest.fixture(scope="module")
def loaded(data):
    return load_streamgaze(data / "qa.json", data / "videos", data / "fixations")


def _by_id(itemset) -> dict[str, QAItem]:
    ids = [it.item_id for it in itemset.items]
    assert len(ids) == len(set(ids)), "item ids must be unique"
    return {it.item_id: it for it in itemset.items}


def test_every_task_type_becomes_items_with_their_windows(loaded, data):
    items = _by_id(loaded)
    assert {it.task_type for it in loaded.items} == set(TASKS)
    sr = items["vidA/1.1"]
    assert sr.video == data / "videos" / "vidA.mp4"  # video_path "some/where/vidA.mp4" found by its file name
    assert (sr.time_s, sr.window, sr.sampling_fps) == (65.0, (0.0, 65.0), 0.2)
    assert (sr.options, sr.answer, sr.truth) == (OPTS, "C", "knife")
    assert items["vidA/1.2"].time_s == 65.0  # HH:MM:SS
    gsm = items["vidA/1.3"]
    assert (gsm.time_s, gsm.window, gsm.truth, gsm.sampling_fps) == (20.5, (0.0, 20.5), "spices", 1.0)
    oie = items["vidA/1.5"]
    assert (oie.window, oie.sampling_fps) == ((10.0, 70.0), 0.5)  # present: the last 60 s
    assert oie.meta["target_object"] == "knife" and oie.meta["response_time"] == "[00:10 - 01:10]"
    assert oie.meta["item"] == 1 and oie.meta["question"] == 5
    oar = items["vidA/1.7"]  # options without letters are lettered; the truth is the text
    assert (oar.options, oar.answer, oar.truth) == (["A. box", "B. cup"], "B", "cup")
    assert items["vidA/1.8"].window == (14.0, 74.0)  # future-action prediction: like present tasks
    assert all(it.test_point is None for it in loaded.items if not it.task_type.startswith("proactive"))


def test_filtered_fixation_file_is_chosen_over_the_dataset_file(loaded, data):
    items = _by_id(loaded)
    a = items["vidA/1.1"]
    assert a.fixation_csv == data / "fixations" / "vidA_fixation_filtered.csv"
    assert a.meta["fixation_csvs_left_aside"] == ["vidA_fixation_dataset.csv"]
    assert items["vidB/3.1"].fixation_csv == data / "fixations" / "vidB_fixation_dataset.csv"  # the only one


def test_proactive_question_becomes_one_yes_no_item_per_test_point(loaded):
    items = _by_id(loaded)
    pts = [items[f"vidA/2.1/p{k}"] for k in (1, 2, 3)]
    assert [p.answer for p in pts] == ["A", "B", "A"]
    assert [p.alert_expected for p in pts] == [True, False, True]
    assert [p.test_point for p in pts] == [0, 1, 2]
    assert [p.time_s for p in pts] == [20.0, 40.0, 60.0]
    assert [p.window for p in pts] == [(0.0, 20.0), (5.0, 40.0), (30.5, 60.0)]  # numbers or MM:SS strings
    assert [p.sampling_fps for p in pts] == [clip_sampling_fps(p.window) for p in pts] == [1.0, 0.5, 1.0]
    assert all(p.options == YES_NO and p.task_type == "proactive_gaze_triggered_alert" for p in pts)
    assert [p.truth for p in pts] == ["Yes", "No", "Yes"]
    assert pts[0].meta["target_object"] == "knife" and pts[0].meta["first_appearance"] == "00:12"
    assert items["vidA/2.2/p1"].answer == "B" and items["vidB/3.6/p1"].answer == "A"


def test_malformed_questions_are_named_and_counted(loaded, data):
    reasons = {p.where: p.reason for p in loaded.problems}
    assert len(loaded.problems) == len(reasons) == 12, reasons
    assert reasons["qa.json vidB/3.2"] == "malformed time stamp '0:7x'"
    assert reasons["qa.json vidB/3.3"] == "unknown task type 'past_magic_trick'"
    assert "answer 'E' is not among the options' letters (A, B, C, D)" == reasons["qa.json vidB/3.4"]
    assert "past the end of the video" in reasons["qa.json vidB/3.5"] and "30 s" in reasons["qa.json vidB/3.5"]
    assert "test point type 2" in reasons["qa.json vidB/3.6/p2"]
    assert "input_video_clip [0, 8] s is not a span ending by its realtime 5 s" in reasons["qa.json vidB/3.6/p3"]
    assert "without test_info" in reasons["qa.json vidB/3.7"]
    assert reasons["qa.json vidB/3.8"].startswith("the question is not valid text: character 10 is '\\ud800'")
    assert reasons["qa.json vidB/3.9"].startswith("option 2 is not valid text")
    missing = str(data / "videos" / "missing.mp4")
    assert missing in reasons["qa.json missing/4.1"] and missing in reasons["qa.json missing/4.2"]
    assert reasons["qa.json missing/4.1"].startswith("video not found")
    assert (
        reasons["qa.json broken/5.1"].startswith("video cannot be read")
        and "broken.mp4" in reasons["qa.json broken/5.1"]
    )
    assert {p.video for p in loaded.problems} == {"vidB.mp4", "missing.mp4", "broken.mp4"}
    # 8 + 3 + 1 usable on vidA, 2 on vidB; nothing vanished
    assert len(loaded.items) == 14 and loaded.n_questions == 26


def test_fixations_beside_the_videos_without_a_fixations_dir(data):
    s = load_streamgaze(data / "qa.json", data / "videos")
    items = _by_id(s)
    assert items["vidB/3.1"].fixation_csv == data / "videos" / "vidB_fixation_dataset.csv"
    assert not any(it.video.name == "vidA.mp4" for it in s.items)
    no_csv = [p for p in s.problems if p.video == "vidA.mp4"]
    assert len(no_csv) == 10 and all(p.reason.startswith("no fixation CSV for vidA.mp4") for p in no_csv)


def test_each_video_is_probed_and_each_csv_read_once(data, monkeypatch):
    probed, read = [], []
    real_probe, real_read = sg.probe_video, sg.read_fixation_csv
    monkeypatch.setattr(sg, "probe_video", lambda p, *a, **k: probed.append(Path(p).name) or real_probe(p, *a, **k))
    monkeypatch.setattr(sg, "read_fixation_csv", lambda p: read.append(Path(p).name) or real_read(p))
    sg._fixations_cached.cache_clear()
    s = load_streamgaze(data / "qa.json", data / "videos", data / "fixations")
    assert sorted(probed) == ["broken.mp4", "vidA.mp4", "vidB.mp4"]
    for it in s.items:
        item_scanpath(it, "stream")
        item_scanpath(it, "reference")
    assert sorted(read) == ["vidA_fixation_filtered.csv", "vidB_fixation_dataset.csv"]


def test_time_stamps():
    assert parse_mmss("04:36") == 276.0 and parse_mmss("75:12") == 4512.0  # minutes may pass 59 without hours
    assert parse_mmss("00:07.5") == 7.5 and parse_mmss(" 01:02:03 ") == 3723.0
    for bad in ("4:7x", "01:60", "01:60:00", "276", "", "1:2:3:4", 276, None):
        with pytest.raises(ValueError, match="not a MM:SS time"):
            parse_mmss(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"video_path": "a.mp4", "questions": []}', "a JSON dict, not a list"),
        ("[{", "is not valid JSON"),
        (None, "file is missing"),
        ('[1, 2, "x"]', "a JSON list of int, str, not of objects"),  # before: "videos folder not found"
        ("[]", "is an empty list"),  # before: "videos folder not found"
    ],
)
def test_a_file_that_is_not_a_qa_list_is_refused(tmp_path, content, message):
    qa = tmp_path / "qa.json"
    if content is not None:
        qa.write_text(content)
    with pytest.raises(InputError, match=message) as e:
        load_streamgaze(qa, tmp_path / "no_videos_here")
    assert str(qa) in str(e.value)
    if content is not None:
        assert e.value.hint and "JSON list" in e.value.hint


def test_a_videos_or_fixations_path_that_is_a_file_is_named_as_one(tmp_path):
    qa = tmp_path / "qa.json"
    qa.write_text('[{"video_path": "a.mp4", "questions": []}]')
    with pytest.raises(InputError, match="is a file, not a videos folder"):
        load_streamgaze(qa, qa)
    with pytest.raises(InputError, match="is a file, not a fixations folder"):
        load_streamgaze(qa, tmp_path, qa)
    with pytest.raises(InputError, match="videos folder not found"):
        load_streamgaze(qa, tmp_path / "none")


def test_a_file_without_usable_items_is_returned_with_its_problems(tmp_path):
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps([{"video_path": "gone.mp4", "questions": [_mc("past_scene_recall", "00:01")]}]))
    s = load_streamgaze(qa, tmp_path)
    assert s.items == [] and len(s.problems) == 1 and "gone.mp4" in s.problems[0].reason


def test_a_fixation_csv_in_pixels_is_a_problem_of_its_questions(tmp_path, data):
    shutil.copy(data / "videos" / "vidB.mp4", tmp_path / "vidB.mp4")
    _csv(tmp_path / "vidB_fixation_filtered.csv", [(1.0, 2.0, 812.0, 400.0)])  # pixel coordinates
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps([{"video_path": "vidB.mp4", "questions": [_mc("past_scene_recall", "00:05")]}]))
    s = load_streamgaze(qa, tmp_path)
    assert s.items == [] and len(s.problems) == 1
    assert s.problems[0].reason.startswith("fixation CSV cannot be used") and "not normalised" in s.problems[0].reason


# ----------------------------------------------------------------------------------------------------- scanpaths
@pytest.fixture()
def straddling_csv(tmp_path) -> Path:
    """Fixations (start, end): (8, 11) begins before a window (10, 20), (12, 14) inside it, (19, 22) straddles its end
    (the question time) with its midpoint 20.5 after it, (23, 24) after it."""
    return _csv(
        tmp_path / "v_fixation_filtered.csv",
        [(8.0, 11.0, 0.1, 0.2), (12.0, 14.0, 0.3, 0.4), (19.0, 22.0, 0.5, 0.6), (23.0, 24.0, 0.7, 0.8)],
    )


def _item(csv: Path | None, window: tuple[float, float]) -> QAItem:
    return QAItem("v/1.1", Path("v.mp4"), csv, "q", OPTS, "A", "present_object_identification_easy", window[1],
                  window, 0.5)  # fmt: skip


def test_reference_protocol_keeps_fixations_whose_midpoint_is_in_the_window(straddling_csv):
    sp = item_scanpath(_item(straddling_csv, (10.0, 20.0)), "reference")
    assert sp.dtype == np.float32 and sp.shape == (1, 4)
    np.testing.assert_allclose(sp, [[0.3, 0.4, 3.0, 2.0]], rtol=1e-6)  # times from the window's start
    # a window ending at 21 holds the straddling fixation's midpoint: kept whole, beyond the window's end
    np.testing.assert_allclose(
        item_scanpath(_item(straddling_csv, (10.0, 21.0)), "reference"),
        [[0.3, 0.4, 3.0, 2.0], [0.5, 0.6, 10.5, 3.0]],
        rtol=1e-6,
    )


def test_stream_protocol_keeps_every_fixation_seen_cut_to_the_window(straddling_csv):
    sp = item_scanpath(_item(straddling_csv, (10.0, 20.0)), "stream")
    np.testing.assert_allclose(
        sp,
        [
            [0.1, 0.2, 0.5, 1.0],  # begun at 8: only 10..11 is in the window
            [0.3, 0.4, 3.0, 2.0],
            [0.5, 0.6, 9.5, 1.0],  # in progress at the question time: 19..20 seen so far
        ],
        rtol=1e-6,
    )
    assert item_scanpath(_item(straddling_csv, (11.0, 12.0)), "stream").shape == (0, 4)  # touching is not seeing
    assert item_scanpath(_item(None, (10.0, 20.0)), "stream").shape == (0, 4)
    with pytest.raises(ValueError, match="unknown scanpath protocol"):
        item_scanpath(_item(straddling_csv, (10.0, 20.0)), "live")


def test_real_sample_reference_scanpath_is_fixations_6_to_10(tmp_path):
    """The released code's scanpath for the real sample item (04:36, window 03:36-04:36) is fixations 6-10, none of
    them active at the look-up times 216/220/224/228 s (REFERENCE.md section 1); the stream protocol adds fixation 11,
    in progress at 276 s, cut there."""
    if not (SAMPLE_DIR / "sample_qa.json").is_file():
        pytest.skip(f"StreamGaze sample not found at {SAMPLE_DIR}")
    _video(tmp_path / "OP03-R01-PastaSalad.mp4", 280, 1)  # a stand-in of the real video (not redistributable)
    s = load_streamgaze(SAMPLE_DIR / "sample_qa.json", tmp_path, SAMPLE_DIR)
    assert s.problems == [] and len(s.items) == 1
    it = s.items[0]
    assert (it.item_id, it.task, it.window, it.answer, it.truth) == (
        "OP03-R01-PastaSalad/1.1", "OI-E", (216.0, 276.0), "C", "knife")  # fmt: skip
    assert it.fixation_csv.name == "OP03-R01-PastaSalad_fixation_filtered.csv"
    raw = np.genfromtxt(it.fixation_csv, delimiter=",", names=True)
    ref = item_scanpath(it, "reference")
    rows = raw[6:11]
    np.testing.assert_allclose(ref[:, 0], rows["center_x"], rtol=1e-6)
    np.testing.assert_allclose(
        ref[:, 2] + 216.0, (rows["start_time_seconds"] + rows["end_time_seconds"]) / 2, rtol=1e-6
    )
    np.testing.assert_allclose(ref[:, 3], rows["duration_seconds"], rtol=1e-5)
    for t in (216.0, 220.0, 224.0, 228.0):
        active = np.abs((t - 216.0) - ref[:, 2]) <= ref[:, 3] / 2
        assert not active.any(), t
    stream = item_scanpath(it, "stream")
    assert len(stream) == 6
    np.testing.assert_allclose(stream[:5], ref, rtol=1e-6)
    f11 = raw[11]
    np.testing.assert_allclose(stream[5, 3], 276.0 - f11["start_time_seconds"], rtol=1e-4)  # cut at the question
    np.testing.assert_allclose(stream[5, 2] + 216.0, (f11["start_time_seconds"] + 276.0) / 2, rtol=1e-6)


# -------------------------------------------------------------------------------------------------------- splits
NAMES = [f"v{k:02d}.mp4" for k in range(20)]


def test_split_is_deterministic_disjoint_and_complete():
    a = split_videos(NAMES, seed=0)
    assert a == split_videos(list(reversed(NAMES)) + NAMES[:3], seed=0)  # order and duplicates do not matter
    assert [len(a[k]) for k in ("train", "val", "test")] == [14, 3, 3]
    assert sorted(a["train"] + a["val"] + a["test"]) == NAMES
    assert all(a[k] == sorted(a[k]) for k in a)
    assert split_videos(NAMES, seed=1) != a
    assert split_videos([f"d/{n}" for n in NAMES], seed=0) == a  # split by file name


@pytest.mark.parametrize("n", [3, 4, 5, 7])
def test_every_split_gets_a_video_from_three_videos(n):
    s = split_videos(NAMES[:n])
    assert all(s[k] for k in ("train", "val", "test")) and sum(map(len, s.values())) == n


def test_split_fractions_are_checked():
    with pytest.raises(InputError, match="summing to 1"):
        split_videos(NAMES, fractions=(0.7, 0.2, 0.2))
    with pytest.raises(InputError, match="summing to 1"):
        split_videos(NAMES, fractions=(1.2, -0.1, -0.1))
    assert split_videos(NAMES, fractions=(1.0, 0.0, 0.0))["train"] == NAMES


def test_split_file_round_trip_and_the_released_format(tmp_path):
    s = split_videos(NAMES)
    write_split_file(tmp_path / "sub" / "split.json", s)
    assert read_split_file(tmp_path / "sub" / "split.json") == s
    assert json.loads((tmp_path / "sub" / "split.json").read_text()) == s
    # the released code's splits/gazelens_split.json: the same three lists of video file names
    (tmp_path / "gazelens_split.json").write_text(
        json.dumps(
            {
                "train": ["OP01-R01-PastaSalad.mp4"],
                "val": ["P04-R01-PastaSalad.mp4"],
                "test": ["OP03-R01-PastaSalad.mp4"],
            }
        )
    )
    assert read_split_file(tmp_path / "gazelens_split.json")["test"] == ["OP03-R01-PastaSalad.mp4"]
    (tmp_path / "bad.json").write_text(json.dumps({"train": ["a.mp4"], "val": ["a.mp4"], "test": []}))
    with pytest.raises(InputError, match="a.mp4 is in both"):
        read_split_file(tmp_path / "bad.json")
    (tmp_path / "nokey.json").write_text(json.dumps({"train": ["a.mp4"], "test": []}))
    with pytest.raises(InputError, match="split 'val' must be a list"):
        read_split_file(tmp_path / "nokey.json")
    with pytest.raises(InputError, match="is in both"):
        write_split_file(tmp_path / "w.json", {"train": ["a.mp4"], "val": [], "test": ["a.mp4"]})


def test_select_split_keeps_the_items_and_problems_of_its_videos(loaded):
    names = video_names(loaded)
    assert names == ["broken.mp4", "missing.mp4", "vidA.mp4", "vidB.mp4"]
    split = {"train": ["vidA.mp4", "missing.mp4"], "val": ["vidB.mp4"], "test": ["broken.mp4"]}
    train, val, test = (select_split(loaded, split, k) for k in ("train", "val", "test"))
    assert {it.video.name for it in train.items} == {"vidA.mp4"} and len(train.items) == 12
    assert len(train.problems) == 2 and {p.video for p in train.problems} == {"missing.mp4"}
    assert len(val.items) == 2 and len(val.problems) == 9
    assert test.items == [] and len(test.problems) == 1
    assert train.n_questions + val.n_questions + test.n_questions == loaded.n_questions
    with pytest.raises(InputError, match="unknown split"):
        select_split(loaded, split, "dev")
