"""The StreamGaze task types, their clip windows and the items every loader produces (REFERENCE.md sections 1, 2).

One `QAItem` is one scored decision: a multiple-choice question at a time in a video, or one test point of a proactive
question (a Yes/No item). The StreamGaze loader and the synthetic benchmark both produce them; the evaluator and the
trainer read nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gazeqwen_edge.model.preprocessing import default_sampling_fps

# task_type -> (short name, when it asks about). Order as in REFERENCE.md section 2 (the tables' column order).
TASKS: dict[str, tuple[str, str]] = {
    "past_scene_recall": ("SR", "past"),
    "past_object_transition_prediction": ("OTP", "past"),
    "past_gaze_sequence_matching": ("GSM", "past"),
    "past_non_fixated_object_identification": ("NFI", "past"),
    "present_object_identification_easy": ("OI-E", "present"),
    "present_object_identification_hard": ("OI-H", "present"),
    "present_object_attribute_recognition": ("OAR", "present"),
    "present_future_action_prediction": ("FAP", "present"),
    "proactive_gaze_triggered_alert": ("GTA", "proactive"),
    "proactive_object_appearance_alert": ("OAA", "proactive"),
}
# Questions that are not StreamGaze's, reported on their own, never in the benchmark's overall. CTL-O and CTL-A are
# answerable from the video alone, mixed into gaze training so the resampler does not override them (REFERENCE.md
# section 6: a resampler trained on gaze questions alone spoiled other questions). CTL-G asks what the wearer is
# gazing at while they look at no object (the answer "nothing"): StreamGaze asks its present questions only inside a
# fixation on an object, so a model trained on them names some object whatever the gaze is on, and a watch asking
# it fires on a background fixation (README "Alerts").
CONTROL_TASKS: dict[str, tuple[str, str]] = {
    "control_scene_object": ("CTL-O", "control"),
    "control_object_attribute": ("CTL-A", "control"),
    "control_background_gaze": ("CTL-G", "control"),
}
NOTHING = "nothing"  # CTL-G's answer: the wearer gazes at no object
ALL_TASKS: dict[str, tuple[str, str]] = {**TASKS, **CONTROL_TASKS}
PRESENT_WINDOW_S = 60.0  # present tasks (future-action prediction included) see the last 60 s (REFERENCE.md section 1)
YES_NO = ["A. Yes", "B. No"]  # a proactive test point's options; type 1 (the alert should fire) -> "A"


def task_short(task_type: str) -> str:
    """'present_object_identification_easy' -> 'OI-E'; unknown types are returned unchanged."""
    return ALL_TASKS.get(task_type, (task_type, ""))[0]


def is_proactive(task_type: str) -> bool:
    return ALL_TASKS.get(task_type, ("", ""))[1] == "proactive"


def is_control(task_type: str) -> bool:
    """A control task (CONTROL_TASKS): reported on its own, not part of the benchmark's overall."""
    return task_type in CONTROL_TASKS


def clip_window(task_type: str, t_q_s: float) -> tuple[float, float]:
    """The (start_s, end_s) of video a question at `t_q_s` (video seconds) sees: past tasks [0, t_q], present tasks
    and future-action prediction [t_q - 60 s, t_q] clipped at 0 (REFERENCE.md section 1); control tasks like present
    ones. Proactive test points carry their own clip (`input_video_clip`). Raises KeyError for an unknown task type."""
    kind = ALL_TASKS[task_type][1]
    if kind == "past":
        return (0.0, t_q_s)
    return (max(0.0, t_q_s - PRESENT_WINDOW_S), t_q_s)


def clip_sampling_fps(window: tuple[float, float]) -> float:
    """The reference's sampling fps for a clip of that length (<= 30 s: 1, <= 60 s: 0.5, <= 300 s: 0.2, else 0.1)."""
    return default_sampling_fps(window[1] - window[0])


@dataclass
class QAItem:
    """One scored decision.

    item_id: stable and unique in its set ("<video stem>/<item>.<question>[/p<test point>]"); video: the video file;
    fixation_csv: its StreamGaze fixation CSV (None: no gaze); question, options (["A. box", ...]) and answer (the
    correct letter); task_type (TASKS); time_s: when it is asked (video seconds); window: (start_s, end_s) of video
    it sees; sampling_fps: the rate its clip is sampled at (the reference rule by window length unless the source says
    otherwise); task_type is a key of ALL_TASKS; test_point: index of a proactive question's test point (None otherwise), whose answer is "A" (Yes)
    when the alert should fire; truth: the correct option's text (for likelihood / free-text scoring); meta: anything
    else the source knows (ground truth of the synthetic generator, the question's index in the file).
    """

    item_id: str
    video: Path
    fixation_csv: Path | None
    question: str
    options: list[str]
    answer: str
    task_type: str
    time_s: float
    window: tuple[float, float]
    sampling_fps: float
    test_point: int | None = None
    truth: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return task_short(self.task_type)

    @property
    def alert_expected(self) -> bool | None:
        """For a proactive test point: should the alert fire (answer "A" = Yes)? None for other items."""
        return None if self.test_point is None else self.answer == "A"


GTA_QUESTION = "Monitor my gaze and alert me when I gaze on the <{}>."  # StreamGaze's GTA wording (and the watches')
IDENTIFICATION_TASKS = ("present_object_identification_easy", "present_object_identification_hard")


def alert_pairs(items: list[QAItem], seed: int = 0) -> list[QAItem]:
    """Gaze-triggered-alert test points derived from present object-identification items, two per item: at the
    item's time the wearer gazes at its answer Y, so "alert me when I gaze on the <Y>" is a Yes and the same about
    another of its options Z (not looked at then) is a No, on the item's own clip and scanpath. StreamGaze's GTA
    questions have few alerting points (the wearer looks at the target briefly) and a model trained on them learns
    to say No; these pairs are balanced and teach the comparison the watches of the runtime need. Z is drawn with
    `np.random.default_rng([seed, item index])`. Item ids: "<item id>/alert-yes", "<item id>/alert-no"."""
    import numpy as np

    out = []
    for i, it in enumerate(items):
        if it.task_type not in IDENTIFICATION_TASKS or not it.truth:
            continue
        others = [o[2:].strip() for o in it.options if o[2:].strip() != it.truth]
        if not others:
            continue
        other = others[int(np.random.default_rng([seed, i]).integers(len(others)))]
        for target, answer, tag in ((it.truth, "A", "yes"), (other, "B", "no")):
            out.append(
                QAItem(
                    item_id=f"{it.item_id}/alert-{tag}",
                    video=it.video,
                    fixation_csv=it.fixation_csv,
                    question=GTA_QUESTION.format(target),
                    options=list(YES_NO),
                    answer=answer,
                    task_type="proactive_gaze_triggered_alert",
                    time_s=it.time_s,
                    window=it.window,
                    sampling_fps=it.sampling_fps,
                    test_point=0,
                    truth=YES_NO["AB".index(answer)][2:].strip(),
                    meta={"derived_from": it.item_id, "target_object": target},
                )
            )
    return out


@dataclass
class Problem:
    """An item that cannot be used: where it is (file, item number / question number) and why; `video`: the file name
    of the video it is about ("" when not known), so that a split by video keeps its problems too."""

    where: str
    reason: str
    video: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ItemSet:
    """The items of a QA file and the problems of those that could not be used (counted, never silently dropped)."""

    items: list[QAItem]
    problems: list[Problem] = field(default_factory=list)

    @property
    def n_questions(self) -> int:
        return len(self.items) + len(self.problems)
