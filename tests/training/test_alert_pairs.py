"""Balanced gaze-triggered-alert items derived from object identification (training.tasks.alert_pairs)."""

from __future__ import annotations

from pathlib import Path

from gazeqwen_edge.runtime.watches import watch_question
from gazeqwen_edge.training.tasks import YES_NO, QAItem, alert_pairs

OPTS = ["A. red circle", "B. blue ring", "C. green star", "D. cyan cross"]


def oi(i: int, truth_letter: str, task: str = "present_object_identification_easy") -> QAItem:
    truth = OPTS["ABCD".index(truth_letter)][3:]
    return QAItem(f"v/{i}.1", Path("v.mp4"), Path("v.csv"), "Which object is the user currently gazing at?", OPTS,
                  truth_letter, task, 5.0 + i, (3.0 + i, 5.0 + i), 2.0, truth=truth)  # fmt: skip


def test_one_yes_about_the_gazed_object_and_one_no_about_another_option():
    items = [oi(0, "B"), oi(1, "D", "present_object_identification_hard"), oi(2, "A", "control_scene_object")]
    pairs = alert_pairs(items, seed=0)
    assert len(pairs) == 4  # the control item gives none
    for src, (yes, no) in zip(items[:2], [pairs[0:2], pairs[2:4]], strict=True):
        assert yes.answer == "A" and yes.truth == "Yes" and no.answer == "B" and no.truth == "No"
        assert yes.options == YES_NO == no.options
        assert yes.question == watch_question(src.truth)  # the runtime's watches ask exactly this
        other = no.meta["target_object"]
        assert other != src.truth and f"{'ABCD'[OPTS.index(next(o for o in OPTS if o[3:] == other))]}. {other}" in OPTS
        assert no.question == watch_question(other)
        for p in (yes, no):
            assert p.task_type == "proactive_gaze_triggered_alert" and p.test_point == 0
            assert (p.video, p.fixation_csv, p.time_s, p.window, p.sampling_fps) == (
                src.video, src.fixation_csv, src.time_s, src.window, src.sampling_fps)  # fmt: skip
            assert p.meta["derived_from"] == src.item_id
    assert len({p.item_id for p in pairs}) == 4


def test_the_other_object_is_seeded():
    items = [oi(i, "ABCD"[i % 4]) for i in range(12)]
    a, b = alert_pairs(items, seed=0), alert_pairs(items, seed=0)
    assert [p.question for p in a] == [p.question for p in b]
    c = alert_pairs(items, seed=5)
    assert [p.question for p in a] != [p.question for p in c]
