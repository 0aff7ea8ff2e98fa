"""The synthetic gaze benchmark: StreamGaze-format videos, fixation CSVs and QA files (REFERENCE.md section 2) whose
ground truth comes from the scene generator alone (`device.synthetic.SyntheticScene`), for training and testing the
gaze path where StreamGaze itself is not at hand.

Layout of OUT (`build_synthetic_benchmark`):
- `videos/synth_<scene seed>.mp4`: the scene rendered at its frame times (H.264, `device._io.Mp4Writer`);
- `fixations/synth_<scene seed>_fixation_filtered.csv`: every fixation of the wearer, StreamGaze's columns
  (`CSV_COLUMNS`; centres normalised to the frame, times in seconds from the video's first frame; start_time and
  end_time are plain seconds, as in StreamGaze's filtered CSVs);
- `train.json`, `val.json`, `test.json`: StreamGaze QA lists, one entry per question ({"video_path", "response_time",
  "questions": [one question]}); multiple-choice questions carry question, time_stamp, answer, options, task_type and
  target_object (the ground-truth object, where there is one); proactive questions carry question, time_stamp,
  first_appearance, target_object, test_info [{"realtime", "type", "input_video_clip"}] and task_type;
- `manifest.json`: the generator's parameters, the scenes of each split, question counts per split and task, and the
  (scene, task) pairs that were skipped with the reason.

Times: every question time and test point is a whole second, so `time_stamp` and `realtime` are StreamGaze's exact
"MM:SS" (no sub-second format is needed). Splits are disjoint sets of scene seeds drawn from `seed`; the same arguments
give byte-identical JSON and CSV files (the videos too with this PyAV/x264, which is not promised across encoders).

How a question stays answerable from what the model is given (the clip window of `tasks.clip_window`, and the
fixations of the CSV as the reference clips them: those whose midpoint lies in the window):
- "currently gazing" questions (OI-E, OI-H, OAR, FAP, and GTA's alerting test points) are asked inside a fixation on
  the object, at least `MIN_INTO_FIXATION_S` into it and not before its midpoint (so the reference's scanpath, clipped
  by midpoints, holds that fixation), at a time when both the wearer's gaze sample and the fixation's centre fall on
  the object (`SyntheticScene.object_at`);
- past questions count an object as "looked at" once a fixation on it has ended by the question time, and as "never
  looked at" only when no fixation on it has started by then (a fixation in progress makes it neither, and it is
  kept out of the options); sequence questions are not asked while a fixation on another object is in progress;
- "not looking" test points keep `STABLE_MARGIN_S` from any fixation on the object, and appearance test points keep
  the object visible (or hidden) in every frame within that margin.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gazeqwen_edge.device.streamgaze import FILTERED_SUFFIX  # the file GazeQwen's loader reads
from gazeqwen_edge.device.synthetic import BENCHMARK_OBJECT_SCALE
from gazeqwen_edge.errors import ConfigError, InputError, write_bytes_atomic, write_error
from gazeqwen_edge.training.tasks import (
    ALL_TASKS,
    GTA_QUESTION,
    NOTHING,
    PRESENT_WINDOW_S,
    clip_window,
    is_proactive,
)

SPLITS = ("train", "val", "test")
SPLIT_RATIO = (4, 1, 1)  # train : val : test, by scene
SCENE_SEED_RANGE = 1_000_000  # scene seeds are drawn from 0 .. this - 1 (short file names)
DEFAULT_VIDEOS = 30  # 20 train / 5 val / 5 test scenes of 20 s: a set the tiny model trains on a 2-core CPU in minutes
DEFAULT_DURATION_S = 20.0
DEFAULT_SIZE = (320, 240)
DEFAULT_FPS = 10
DEFAULT_OBJECTS = (4, 6)  # objects per scene, drawn uniformly from this inclusive range per scene
QUESTIONS_PER_TASK = 3  # per scene and task, at times spread over the video (fewer when fewer times qualify)
MIN_DURATION_S = 8.0  # shorter scenes hold too few fixations for the past tasks
MAX_DURATION_S = 600.0
MAX_VIDEOS = 10_000
MAX_FPS = 60

FIRST_QUESTION_S = 2  # the earliest question time / test point, s
MIN_INTO_FIXATION_S = 0.1  # a "currently gazing" question is asked at least this far into the fixation
STABLE_MARGIN_S = 0.3  # test points keep this far from a change (fixation on the object, object appearing)
MIN_VISIBLE_S = 1.0  # an object "was visible" in a clip when it is on screen for at least this long in it
NEXT_FIXATION_MAX_S = 1.5  # future-action prediction: the next object fixation starts within this after t_q
TEST_POINTS_PER_TYPE = 3  # proactive questions: up to this many alerting (type 1) and silent (type 0) test points
LETTERS = "ABCD"
N_OPTIONS = len(LETTERS)
CSV_COLUMNS = (
    "start_time",
    "end_time",
    "center_x",
    "center_y",
    "duration",
    "start_time_seconds",
    "end_time_seconds",
    "fixation_id",
    "duration_seconds",
)


def mmss(t_s: float) -> str:
    """StreamGaze's "MM:SS" for a whole number of seconds (minutes unbounded). ValueError for a fractional time."""
    if t_s != int(t_s) or t_s < 0:
        raise ValueError(f"question times are whole non-negative seconds, got {t_s}")
    m, s = divmod(int(t_s), 60)
    return f"{m:02d}:{s:02d}"


def split_sizes(n_videos: int) -> tuple[int, int, int]:
    """Scenes per split (train, val, test) in the ratio `SPLIT_RATIO`, each at least 1. ConfigError for n < 3."""
    if n_videos < len(SPLITS):
        raise ConfigError(
            f"the synthetic benchmark needs at least {len(SPLITS)} videos (one per split), got {n_videos}"
        )
    total = sum(SPLIT_RATIO)
    n_val = max(1, round(n_videos * SPLIT_RATIO[1] / total))
    n_test = max(1, round(n_videos * SPLIT_RATIO[2] / total))
    return n_videos - n_val - n_test, n_val, n_test


def scene_seeds(seed: int, n_videos: int) -> dict[str, list[int]]:
    """The scene seeds of each split: `n_videos` distinct seeds drawn (without replacement) from
    `np.random.default_rng(seed)` in 0 .. SCENE_SEED_RANGE - 1, cut into train / val / test by `split_sizes`; each
    split's list is sorted. Disjoint by construction."""
    sizes = split_sizes(n_videos)
    drawn = np.random.default_rng(seed).choice(SCENE_SEED_RANGE, size=n_videos, replace=False).tolist()
    out, i = {}, 0
    for name, n in zip(SPLITS, sizes, strict=True):
        out[name] = sorted(int(s) for s in drawn[i : i + n])
        i += n
    return out


# the benchmark's object size (device.synthetic.BENCHMARK_OBJECT_SCALE: 2.5x the device layer's default, and why)
DEFAULT_OBJECT_SCALE = BENCHMARK_OBJECT_SCALE


def scene_n_objects(scene_seed: int, n_objects: tuple[int, int] = DEFAULT_OBJECTS) -> int:
    """How many objects the scene of `scene_seed` holds: drawn from [lo, hi] by a generator seeded with the scene."""
    lo, hi = n_objects
    return int(np.random.default_rng([scene_seed, 1]).integers(lo, hi + 1))


def make_scene(
    scene_seed: int,
    duration_s: float = DEFAULT_DURATION_S,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    fps: int = DEFAULT_FPS,
    n_objects: tuple[int, int] = DEFAULT_OBJECTS,
    object_scale: float = 1.0,
):
    """The `SyntheticScene` behind `synth_<scene_seed>.mp4` of a benchmark built with these parameters (the
    manifest's "params"): its ground truth (`looked_at`, `object_at`, `visible_intervals`) is the questions'."""
    from gazeqwen_edge.device.synthetic import SyntheticScene

    return SyntheticScene(
        seed=scene_seed,
        duration_s=duration_s,
        width=width,
        height=height,
        fps=fps,
        n_objects=scene_n_objects(scene_seed, n_objects),
        object_scale=object_scale,
    )


def video_stem(scene_seed: int) -> str:
    return f"synth_{scene_seed}"


# ------------------------------------------------------------------------------------------------ ground truth
class _Skip(Exception):
    """A task this scene cannot support; the message is the reason counted in the manifest."""


class SceneTruth:
    """What the generator knows about one scene, in video seconds (0 = the first frame): fixations with their target
    objects, visibility per frame, the gaze samples; and the predicates the question generators share."""

    def __init__(self, scene):
        self.scene = scene
        t0 = scene.start_ns
        self.t0_ns = t0
        # (start_s, end_s, x_px, y_px, target or None), time order (true fixations: no injected offset)
        self.fix = [
            ((f.start_ns - t0) / 1e9, (f.end_ns - t0) / 1e9, f.x, f.y, name)
            for f, name in zip(scene.true_fixations, scene.fixation_targets, strict=True)
        ]
        self._starts = [f[0] for f in self.fix]
        self.objects = {o.name: o for o in scene.objects}
        self.names = [o.name for o in scene.objects]
        fts = scene.frame_ts_ns
        self.frame_s = (fts - t0) / 1e9
        self.fps = scene.fps
        self.vis = {}  # name -> bool per frame
        for name, runs in scene.visible_intervals().items():
            v = np.zeros(len(fts), bool)
            for a, b in runs:
                v |= (fts >= a) & (fts <= b)
            self.vis[name] = v
        _, gx, gy = scene.gaze_arrays()
        self._gx = gx - scene.gaze_offset_px[0]
        self._gy = gy - scene.gaze_offset_px[1]
        self.last_s = float(self.frame_s[-1]) if len(self.frame_s) else 0.0
        # the CSV holds the fixations that end by the last frame (a video's CSV ends with it; the StreamGaze reader
        # drops later ones); questions stop STABLE_MARGIN_S before the first fixation left out, so none depends on it
        self.n_csv = sum(1 for f in self.fix if f[1] <= self.last_s + 1e-9)
        end = self.last_s if self.n_csv == len(self.fix) else self.fix[self.n_csv][0] - STABLE_MARGIN_S
        self.grid = list(range(FIRST_QUESTION_S, int(math.floor(end + 1e-9)) + 1))

    # -- time and place
    def ns(self, t_s: float) -> int:
        return self.t0_ns + int(round(t_s * 1e9))

    def gaze_at(self, t_s: float) -> tuple[float, float]:
        """The wearer's true gaze sample (px) at t_s (the sample nearest in time)."""
        i = min(len(self._gx) - 1, max(0, int(round(t_s * self.scene.gaze_hz))))
        return float(self._gx[i]), float(self._gy[i])

    def fixation_at(self, t_s: float) -> int | None:
        """Index of the fixation in progress at t_s (start <= t_s <= end), else None."""
        k = bisect.bisect_right(self._starts, t_s) - 1
        return k if k >= 0 and self.fix[k][1] >= t_s else None

    def gazed(self, t_s: float) -> tuple[int, str] | None:
        """(fixation index, object) when the wearer is, unambiguously, looking at an object at t_s: inside a
        fixation on it, at least MIN_INTO_FIXATION_S in and past its midpoint, with the gaze sample and the
        fixation's centre both on that object (`object_at`). Else None."""
        k = self.fixation_at(t_s)
        if k is None:
            return None
        s, e, x, y, target = self.fix[k]
        if target is None or t_s < max(s + MIN_INTO_FIXATION_S, (s + e) / 2):
            return None
        t_ns = self.ns(t_s)
        if self.scene.object_at(*self.gaze_at(t_s), t_ns) != target or self.scene.object_at(x, y, t_ns) != target:
            return None
        return k, target

    def on_background(self, t_s: float) -> bool:
        """Whether the wearer is, unambiguously, looking at no object at t_s: inside a background fixation, at least
        MIN_INTO_FIXATION_S in and past its midpoint (as `gazed`), with the gaze sample and the fixation's centre
        both on no object."""
        k = self.fixation_at(t_s)
        if k is None:
            return False
        s, e, x, y, target = self.fix[k]
        if target is not None or t_s < max(s + MIN_INTO_FIXATION_S, (s + e) / 2):
            return False
        t_ns = self.ns(t_s)
        return self.scene.object_at(*self.gaze_at(t_s), t_ns) is None and self.scene.object_at(x, y, t_ns) is None

    def frame_index(self, t_s: float) -> int:
        return int(np.clip(np.searchsorted(self.frame_s, t_s + 1e-9, side="right") - 1, 0, len(self.frame_s) - 1))

    def visible_at(self, name: str, t_s: float) -> bool:
        """Is `name` visible in the frame shown at t_s?"""
        return bool(self.vis[name][self.frame_index(t_s)])

    def visible_s(self, name: str, a: float, b: float) -> float:
        """Seconds of video in [a, b] in which `name` is visible (visible frames / fps)."""
        m = (self.frame_s >= a - 1e-9) & (self.frame_s <= b + 1e-9)
        return float(np.count_nonzero(self.vis[name] & m)) / self.fps

    def stably(self, name: str, t_s: float, visible: bool) -> bool:
        """Every frame within STABLE_MARGIN_S of t_s shows `name` (visible=True) or none does (False)."""
        m = (self.frame_s >= t_s - STABLE_MARGIN_S - 1e-9) & (self.frame_s <= t_s + STABLE_MARGIN_S + 1e-9)
        v = self.vis[name][m]
        return bool(v.all()) if visible else bool(not v.any())

    # -- history
    def started_by(self, t_s: float) -> set[str]:
        """Objects with a fixation that started at or before t_s (looked at, or being looked at)."""
        return {f[4] for f in self.fix if f[4] is not None and f[0] <= t_s}

    def completed_by(self, t_s: float) -> set[str]:
        """Objects with a fixation that ended at or before t_s."""
        return {f[4] for f in self.fix if f[4] is not None and f[1] <= t_s}

    def in_progress(self, t_s: float) -> str | None:
        """The object of a fixation in progress at t_s, None when none or on the background."""
        k = self.fixation_at(t_s)
        return None if k is None else self.fix[k][4]

    def visits(self, t_s: float) -> list[str]:
        """Objects looked at up to t_s in order, from fixations ended by t_s: background fixations are skipped and
        consecutive fixations on the same object merge into one visit (so neighbours always differ)."""
        out: list[str] = []
        for _s, e, _, _, target in self.fix:
            if e > t_s:
                break
            if target is not None and (not out or out[-1] != target):
                out.append(target)
        return out

    def nearest_visible(self, t_s: float, exclude: set[str]) -> list[str]:
        """Objects visible at t_s (not in `exclude`), nearest to the gaze point first."""
        gx, gy = self.gaze_at(t_s)
        boxes = self.scene.object_boxes(self.ns(t_s))
        cands = []
        for name, (x0, y0, x1, y1, vis) in boxes.items():
            if vis and name not in exclude:
                cands.append((math.hypot((x0 + x1) / 2 - gx, (y0 + y1) / 2 - gy), name))
        return [n for _, n in sorted(cands)]

    def other_names(self) -> list[str]:
        """Object names (colour shape) of synthetic.COLOURS x SHAPES that are not in this scene, sorted."""
        from gazeqwen_edge.device.synthetic import COLOURS, SHAPES

        return sorted(f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in self.objects)


# ------------------------------------------------------------------------------------------------ question helpers
def _spread(rng: np.random.Generator, cands: list, k: int) -> list:
    """Up to k of `cands` (in order) spread over them: one random pick from each of k contiguous chunks."""
    if len(cands) <= k:
        return list(cands)
    return [cands[int(c[rng.integers(len(c))])] for c in np.array_split(np.arange(len(cands)), k)]


def _pick(rng: np.random.Generator, tiers: list[list[str]], n: int, exclude: set[str], shuffle=True) -> list[str]:
    """n distinct options from `tiers` in order of preference (each tier shuffled unless `shuffle` is False),
    none in `exclude`."""
    out: list[str] = []
    for tier in tiers:
        tier = [x for x in dict.fromkeys(tier) if x not in exclude and x not in out]
        if shuffle:
            tier = [tier[int(i)] for i in rng.permutation(len(tier))]
        out += tier[: n - len(out)]
        if len(out) == n:
            break
    return out


def _mc(
    rng: np.random.Generator,
    task_type: str,
    t_q: int,
    question: str,
    truth: str,
    distractors: list[str],
    target: str | None,
) -> tuple[str, dict]:
    """A multiple-choice question: options in an order drawn from rng (the correct letter uniformly placed).
    Returns (response_time, question dict)."""
    opts = [truth, *distractors]
    if len(set(opts)) != len(opts) or len(opts) < 2:
        raise AssertionError(f"bad options for {task_type}: {opts}")
    order = rng.permutation(len(opts))
    q = {
        "question": question,
        "time_stamp": mmss(t_q),
        "answer": LETTERS[int(np.flatnonzero(order == 0)[0])],
        "options": [f"{LETTERS[i]}. {opts[j]}" for i, j in enumerate(order)],
        "task_type": task_type,
    }
    if target is not None:
        q["target_object"] = target
    w0, w1 = clip_window(task_type, t_q)
    return f"[{mmss(w0)} - {mmss(w1)}]", q


# ------------------------------------------------------------------------------------------------ the tasks
def _present_object_identification(tr: SceneTruth, rng, k: int, task_type: str, hard: bool) -> list:
    if len(tr.names) < N_OPTIONS:
        raise _Skip(f"fewer than {N_OPTIONS} objects")
    cands = [(t, g) for t in tr.grid if (g := tr.gazed(t)) is not None]
    if hard:  # the distractors are the objects visible then nearest the gaze: need at least two of them
        cands = [(t, g) for t, g in cands if len(tr.nearest_visible(t, {g[1]})) >= 2]
    if not cands:
        raise _Skip("no time inside a fixation on an object" + (" with 2+ other objects visible" if hard else ""))
    out = []
    for t, (_, name) in _spread(rng, cands, k):
        if hard:
            near = tr.nearest_visible(t, {name})
            rest = [n for n in tr.names if n not in near]
            distractors = _pick(rng, [near, rest], N_OPTIONS - 1, {name}, shuffle=False)
        else:
            distractors = _pick(rng, [tr.names], N_OPTIONS - 1, {name})
        out.append(_mc(rng, task_type, t, "Which object is the user currently gazing at?", name, distractors, name))
    return out


def q_object_identification_easy(tr: SceneTruth, rng, k: int) -> list:
    """OI-E: at a time the wearer looks at an object, which one; distractors: other objects of the scene."""
    return _present_object_identification(tr, rng, k, "present_object_identification_easy", hard=False)


def q_object_identification_hard(tr: SceneTruth, rng, k: int) -> list:
    """OI-H: as OI-E, the distractors being the objects visible then nearest the gaze point."""
    return _present_object_identification(tr, rng, k, "present_object_identification_hard", hard=True)


def q_object_attribute(tr: SceneTruth, rng, k: int) -> list:
    """OAR: the colour (even questions) or shape (odd) of the object looked at; distractors: the attributes of the
    other objects visible nearby first, then of the scene, then the rest of the vocabulary."""
    from gazeqwen_edge.device.synthetic import COLOURS, SHAPES

    cands = [(t, g) for t in tr.grid if (g := tr.gazed(t)) is not None]
    if not cands:
        raise _Skip("no time inside a fixation on an object")
    out = []
    for i, (t, (_, name)) in enumerate(_spread(rng, cands, k)):
        attr = "colour" if i % 2 == 0 else "shape"
        vocab = list(COLOURS) if attr == "colour" else list(SHAPES)
        near = [getattr(tr.objects[n], attr) for n in tr.nearest_visible(t, {name})]
        scene = [getattr(o, attr) for o in tr.objects.values()]
        truth = getattr(tr.objects[name], attr)
        distractors = _pick(rng, [near, scene, vocab], N_OPTIONS - 1, {truth})
        word = "color" if attr == "colour" else "shape"
        question = f"What {word} is the object the user is looking at?"
        out.append(_mc(rng, "present_object_attribute_recognition", t, question, truth, distractors, name))
    return out


def q_future_action(tr: SceneTruth, rng, k: int) -> list:
    """FAP: while the wearer looks at an object, which object comes next (the first fixation on another object after
    t_q, starting within NEXT_FIXATION_MAX_S); the current object is not an option; distractors visible first."""
    cands = []
    for t in tr.grid:
        g = tr.gazed(t)
        if g is None:
            continue
        cur = g[1]
        nxt = next((f for f in tr.fix[g[0] + 1 :] if f[4] is not None and f[4] != cur), None)
        if nxt is not None and nxt[0] - t <= NEXT_FIXATION_MAX_S:
            cands.append((t, cur, nxt[4]))
    if not cands:
        raise _Skip("no object fixation followed soon by one on another object")
    out = []
    for t, cur, truth in _spread(rng, cands, k):
        near = tr.nearest_visible(t, {cur, truth})
        distractors = _pick(rng, [near, tr.names, tr.other_names()], N_OPTIONS - 1, {cur, truth})
        out.append(
            _mc(rng, "present_future_action_prediction", t, "Which object will the user look at next?", truth,
                distractors, truth)
        )  # fmt: skip
    return out


def q_scene_recall(tr: SceneTruth, rng, k: int) -> list:
    """SR: one object looked at by t_q among objects not looked at by then (those visible in the clip first)."""
    cands = []
    for t in tr.grid:
        never = [n for n in tr.names if n not in tr.started_by(t)]
        if tr.completed_by(t) and never:
            cands.append(t)
    if not cands:
        raise _Skip("no time with an object looked at and one not looked at yet")
    out = []
    for t in _spread(rng, cands, k):
        looked = sorted(tr.completed_by(t))
        never = [n for n in tr.names if n not in tr.started_by(t)]
        seen = [n for n in never if tr.visible_s(n, 0, t) >= MIN_VISIBLE_S]
        truth = looked[int(rng.integers(len(looked)))]
        distractors = _pick(rng, [seen, never, tr.other_names()], N_OPTIONS - 1, {truth})
        out.append(
            _mc(rng, "past_scene_recall", t, "Which of these objects did the user look at?", truth, distractors,
                truth)
        )  # fmt: skip
    return out


def q_object_transition(tr: SceneTruth, rng, k: int) -> list:
    """OTP: after looking at X, which object came next (X chosen so that every visit of X by t_q was followed by a
    completed visit of the same object)."""
    cands = []
    for t in tr.grid:
        v = tr.visits(t)
        succ: dict[str, set[str]] = {}
        for a, b in itertools.pairwise(v):
            succ.setdefault(a, set()).add(b)
        ok = [x for x in succ if len(succ[x]) == 1 and v[-1] != x]
        if ok:
            cands.append((t, ok, succ))
    if not cands:
        raise _Skip("no object whose visits were all followed by the same object")
    out = []
    for t, ok, succ in _spread(rng, cands, k):
        x = ok[int(rng.integers(len(ok)))]
        truth = next(iter(succ[x]))
        looked = sorted(tr.completed_by(t))
        distractors = _pick(rng, [looked, tr.names, tr.other_names()], N_OPTIONS - 1, {x, truth})
        question = f"After looking at the {x}, which object did the user look at next?"
        out.append(_mc(rng, "past_object_transition_prediction", t, question, truth, distractors, truth))
    return out


def q_gaze_sequence(tr: SceneTruth, rng, k: int) -> list:
    """GSM: the order of the last three objects looked at by t_q (three distinct visits in a row; no fixation on
    another object in progress at t_q); distractors: other orders of the same three."""
    cands = []
    for t in tr.grid:
        v = tr.visits(t)
        cur = tr.in_progress(t)
        if len(v) >= 3 and v[-3] != v[-1] and (cur is None or cur == v[-1]):
            cands.append((t, tuple(v[-3:])))
    if not cands:
        raise _Skip("fewer than three distinct objects looked at in a row")
    out = []
    for t, seq in _spread(rng, cands, k):
        orders = [" -> ".join(p) for p in itertools.permutations(seq)]
        truth = " -> ".join(seq)
        distractors = _pick(rng, [orders], N_OPTIONS - 1, {truth})
        question = "In which order did the user look at these objects most recently?"
        out.append(_mc(rng, "past_gaze_sequence_matching", t, question, truth, distractors, None))
    return out


def q_non_fixated(tr: SceneTruth, rng, k: int) -> list:
    """NFI: the object visible (>= MIN_VISIBLE_S in [0, t_q]) but never looked at by t_q; distractors: objects
    looked at by then, filled with objects not in the scene."""
    cands = []
    for t in tr.grid:
        started = tr.started_by(t)
        truths = [n for n in tr.names if n not in started and tr.visible_s(n, 0, t) >= MIN_VISIBLE_S]
        if truths and tr.completed_by(t):
            cands.append((t, truths))
    if not cands:
        raise _Skip("no object visible and not looked at while others were")
    out = []
    for t, truths in _spread(rng, cands, k):
        truth = truths[int(rng.integers(len(truths)))]
        distractors = _pick(rng, [sorted(tr.completed_by(t)), tr.other_names()], N_OPTIONS - 1, {truth})
        question = "Which object was visible but never looked at by the user?"
        out.append(_mc(rng, "past_non_fixated_object_identification", t, question, truth, distractors, truth))
    return out


def _proactive(tr: SceneTruth, rng, task_type: str, question: str, x: str, on: list, off: list, first: float):
    points = sorted([(t, 1) for t in _spread(rng, on, TEST_POINTS_PER_TYPE)] +
                    [(t, 0) for t in _spread(rng, off, TEST_POINTS_PER_TYPE)])  # fmt: skip
    t0 = 0
    q = {
        "question": question,
        "time_stamp": mmss(t0),
        "first_appearance": mmss(math.floor(first)),
        "target_object": x,
        "test_info": [
            {"realtime": mmss(t), "type": typ, "input_video_clip": [int(max(0, t - PRESENT_WINDOW_S)), t]}
            for t, typ in points
        ],
        "task_type": task_type,
    }
    return f"[{mmss(t0)} - {mmss(points[-1][0])}]", q


def q_gaze_triggered_alert(tr: SceneTruth, rng, k: int) -> list:
    """GTA: "alert me when I gaze on X", asked at 00:00; test points where the wearer looks at X (type 1, as
    `SceneTruth.gazed`) and where no fixation on X is within STABLE_MARGIN_S (type 0)."""
    per_obj = []
    for x in tr.names:
        on = [t for t in tr.grid if (g := tr.gazed(t)) is not None and g[1] == x]
        near = [(f[0] - STABLE_MARGIN_S, f[1] + STABLE_MARGIN_S) for f in tr.fix if f[4] == x]
        off = [t for t in tr.grid if not any(a <= t <= b for a, b in near)]
        if on and off:
            per_obj.append((x, on, off, min(f[0] for f in tr.fix if f[4] == x)))
    if not per_obj:
        raise _Skip("no object both looked at and not looked at on whole seconds")
    out = []
    for x, on, off, first in [per_obj[int(i)] for i in sorted(rng.permutation(len(per_obj))[:k])]:
        question = GTA_QUESTION.format(x)
        out.append(_proactive(tr, rng, "proactive_gaze_triggered_alert", question, x, on, off, first))
    return out


def q_object_appearance_alert(tr: SceneTruth, rng, k: int) -> list:
    """OAA: "alert me when X appears", asked at 00:00; test points where X is on screen (type 1) and off screen
    (type 0), each held for STABLE_MARGIN_S either side."""
    per_obj = []
    for x in tr.names:
        on = [t for t in tr.grid if tr.stably(x, t, True)]
        off = [t for t in tr.grid if tr.stably(x, t, False)]
        if on and off:
            first = float(tr.frame_s[np.flatnonzero(tr.vis[x])[0]])
            per_obj.append((x, on, off, first))
    if not per_obj:
        raise _Skip("no object both on and off screen on whole seconds")
    out = []
    for x, on, off, first in [per_obj[int(i)] for i in sorted(rng.permutation(len(per_obj))[:k])]:
        question = f"Watch the scene and alert me when the <{x}> appears."
        out.append(_proactive(tr, rng, "proactive_object_appearance_alert", question, x, on, off, first))
    return out


def _window_visible(tr: SceneTruth, t: int) -> list[str]:
    w0, w1 = clip_window("control_scene_object", t)
    return [n for n in tr.names if tr.visible_s(n, w0, w1) >= MIN_VISIBLE_S]


def q_control_scene_object(tr: SceneTruth, rng, k: int) -> list:
    """CTL-O: which of these objects is in the scene (visible >= MIN_VISIBLE_S in the clip); distractors: names of
    objects not in the scene, those sharing a colour or a shape with a scene object first. No gaze needed."""
    cands = [(t, vis) for t in tr.grid if (vis := _window_visible(tr, t))]
    if not cands:
        raise _Skip("no object visible in a clip")
    others = tr.other_names()
    colours = {o.colour for o in tr.objects.values()}
    shapes = {o.shape for o in tr.objects.values()}
    similar = [n for n in others if n.split(" ")[0] in colours or n.split(" ")[1] in shapes]
    out = []
    for t, vis in _spread(rng, cands, k):
        truth = vis[int(rng.integers(len(vis)))]
        distractors = _pick(rng, [similar, others], N_OPTIONS - 1, {truth})
        out.append(
            _mc(rng, "control_scene_object", t, "Which of these objects is in the scene?", truth, distractors, truth)
        )
    return out


def q_control_object_attribute(tr: SceneTruth, rng, k: int) -> list:
    """CTL-A: "What color is the <shape>?" for an object visible at t_q and in the clip; distractors: the colours of
    the other scene objects first. No gaze needed (shapes are unique in a scene)."""
    from gazeqwen_edge.device.synthetic import COLOURS

    cands = [(t, v) for t in tr.grid if (v := [n for n in _window_visible(tr, t) if tr.visible_at(n, t)])]
    if not cands:
        raise _Skip("no object visible in a clip")
    out = []
    for t, vis in _spread(rng, cands, k):
        name = vis[int(rng.integers(len(vis)))]
        o = tr.objects[name]
        scene = [p.colour for p in tr.objects.values()]
        distractors = _pick(rng, [scene, list(COLOURS)], N_OPTIONS - 1, {o.colour})
        question = f"What color is the {o.shape}?"
        out.append(_mc(rng, "control_object_attribute", t, question, o.colour, distractors, name))
    return out


def q_control_background_gaze(tr: SceneTruth, rng, k: int) -> list:
    """CTL-G: "Which object is the user currently gazing at?" while the wearer looks at no object (`on_background`):
    the answer is NOTHING; the other options are the objects visible then nearest the gaze, then the scene's. Trains
    a model to say so rather than name an object (a watch asks it that question: runtime/watches.py)."""
    if len(tr.names) < N_OPTIONS - 1:
        raise _Skip(f"fewer than {N_OPTIONS - 1} objects")
    cands = [t for t in tr.grid if tr.on_background(t)]
    if not cands:
        raise _Skip("no time inside a fixation on the background")
    out = []
    for t in _spread(rng, cands, k):
        distractors = _pick(rng, [tr.nearest_visible(t, set()), tr.names], N_OPTIONS - 1, set(), shuffle=False)
        question = "Which object is the user currently gazing at?"
        out.append(_mc(rng, "control_background_gaze", t, question, NOTHING, distractors, None))
    return out


GENERATORS: dict[str, Callable[[SceneTruth, np.random.Generator, int], list]] = {
    "past_scene_recall": q_scene_recall,
    "past_object_transition_prediction": q_object_transition,
    "past_gaze_sequence_matching": q_gaze_sequence,
    "past_non_fixated_object_identification": q_non_fixated,
    "present_object_identification_easy": q_object_identification_easy,
    "present_object_identification_hard": q_object_identification_hard,
    "present_object_attribute_recognition": q_object_attribute,
    "present_future_action_prediction": q_future_action,
    "proactive_gaze_triggered_alert": q_gaze_triggered_alert,
    "proactive_object_appearance_alert": q_object_appearance_alert,
    "control_scene_object": q_control_scene_object,
    "control_object_attribute": q_control_object_attribute,
    "control_background_gaze": q_control_background_gaze,
}
assert list(GENERATORS) == list(ALL_TASKS), "one generator per task, in ALL_TASKS order"


def scene_questions(
    tr: SceneTruth, scene_seed: int, per_task: int = QUESTIONS_PER_TASK
) -> tuple[list[dict], list[tuple[str, str]]]:
    """The QA entries of one scene ({"video_path", "response_time", "questions": [q]}, tasks in ALL_TASKS order,
    each in time order) and the (task, reason) pairs of the tasks it could not support. Each task draws from its own
    generator seeded with (scene_seed, task index), so the questions of one task do not depend on the others."""
    entries: list[dict] = []
    skipped: list[tuple[str, str]] = []
    video = f"{video_stem(scene_seed)}.mp4"
    for i, (task, gen) in enumerate(GENERATORS.items()):
        rng = np.random.default_rng([scene_seed, 2, i])
        try:
            made = gen(tr, rng, per_task)
        except _Skip as e:
            skipped.append((task, str(e)))
            continue
        for response_time, q in made:
            entries.append({"video_path": video, "response_time": response_time, "questions": [q]})
    return entries, skipped


# ------------------------------------------------------------------------------------------------ watch truth
GENERATOR = "gazeqwen_edge.training.synthetic_benchmark"  # manifest.json's "generator" of the benchmarks built here


class WatchTruth:
    """What a watch on an object of one synthetic scene should do, from the generator (video seconds, 0 = the first
    frame; only the fixations of the video's CSV, those that end by its last frame):

    - `first_fixation_s[name]`: start of the first fixation on each object looked at. StreamGaze's
      `first_appearance` is this floored to a whole second, up to 1 s earlier: an alert 0.2 s after it can still come
      before the wearer looked;
    - `never_fixated`: the objects on screen for at least MIN_VISIBLE_S of the video that no fixation lands on (scene
      order): a watch on one of them must never fire;
    - `fixations`: [(start_s, end_s, object name or None for the background)], time order: what each check looked at
      (`runtime.alerts_eval.gaze_at_check`)."""

    def __init__(
        self,
        first_fixation_s: dict[str, float],
        never_fixated: list[str],
        fixations: list[tuple[float, float, str | None]] | None = None,
    ):
        self.first_fixation_s = first_fixation_s
        self.never_fixated = never_fixated
        self.fixations = list(fixations or [])

    @classmethod
    def of(cls, tr: SceneTruth) -> WatchTruth:
        first: dict[str, float] = {}
        for start, _, _, _, name in tr.fix[: tr.n_csv]:
            if name is not None and name not in first:
                first[name] = start
        never = [n for n in tr.names if n not in first and tr.visible_s(n, 0.0, tr.last_s) >= MIN_VISIBLE_S]
        return cls(first, never, [(a, b, name) for a, b, _, _, name in tr.fix[: tr.n_csv]])


def benchmark_watch_truth(qa_file: str | Path) -> Callable[[Path], WatchTruth | None] | None:
    """For a QA file of a synthetic benchmark (manifest.json from this generator beside it): a function from a video
    of it (`synth_<scene seed>.mp4`) to its WatchTruth, rebuilt from the manifest's parameters (None for a video the
    manifest does not list). None when there is no such manifest (StreamGaze's own files, whose truth is only
    `first_appearance`). InputError when the manifest is there but unreadable, and (from the function) when the scene
    rebuilt from it is not the one the manifest lists for that video (other parameters or another generator
    version: its truth would be another scene's)."""
    path = Path(qa_file).parent / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR:
            return None
        p = manifest["params"]
        seeds = {Path(s["video"]).stem: (int(s["seed"]), list(s["objects"])) for s in manifest["scenes"]}
        args = (float(p["duration_s"]), int(p["width"]), int(p["height"]), int(p["fps"]), tuple(p["n_objects"]))
        scale = float(p.get("object_scale", 1.0))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(
            path,
            f"is not a readable synthetic benchmark manifest ({type(e).__name__}: {e})",
            hint="eval-alerts --truth first-appearance measures from the QA file's first_appearance instead",
        ) from e

    def truth(video: Path) -> WatchTruth | None:
        entry = seeds.get(Path(video).stem)
        if entry is None:
            return None
        seed, objects = entry
        tr = SceneTruth(make_scene(seed, *args, object_scale=scale))
        if tr.names != objects:
            raise InputError(
                path,
                f"does not describe {Path(video).name}: the scene its parameters make holds {', '.join(tr.names)}, "
                f"it lists {', '.join(map(str, objects))} (other parameters, or another generator version)",
                hint="eval-alerts --truth first-appearance measures from the QA file's first_appearance instead",
            )
        return WatchTruth.of(tr)

    return truth


# ------------------------------------------------------------------------------------------------ files
def fixation_csv_text(tr: SceneTruth) -> str:
    """StreamGaze's filtered fixation CSV of a scene (its fixations that end by the last frame, background ones
    included): times in seconds
    from the first frame (start_time/end_time too, as StreamGaze writes them), centres normalised by the frame size;
    values rounded to ns / 1e-6 of the frame so the text is stable."""
    scene = tr.scene
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i, f in enumerate(scene.fixations[: tr.n_csv]):  # as the stream reports them (no offset is injected here)
        s = round((f.start_ns - tr.t0_ns) / 1e9, 9)
        e = round((f.end_ns - tr.t0_ns) / 1e9, 9)
        d = round(e - s, 9)
        cx, cy = round(f.x / scene.width, 6), round(f.y / scene.height, 6)
        w.writerow([s, e, cx, cy, d, s, e, i, d])
    return buf.getvalue()


def write_video(scene, path: Path) -> int:
    """Render every frame of `scene` at its frame time into an H.264 mp4 (`device._io.Mp4Writer`); returns the
    number of frames written. Written as `path` + ".part" and renamed when complete, so a `path` that exists is a
    whole video (what a resumed build skips) and a failed write (a full disk: its OSError is raised) leaves no cut
    one under the real name."""
    from gazeqwen_edge.device._io import Mp4Writer

    part = path.with_name(path.name + ".part")
    writer = Mp4Writer(part, scene.width, scene.height, fps=scene.fps)
    try:
        try:
            for t_ns in scene.frame_ts_ns.tolist():
                writer.write(scene.render(t_ns))
        finally:
            writer.close()
        part.replace(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return writer.n


def _write_text(path: Path, text: str) -> None:
    """`text` as UTF-8 at `path`, whole or not at all (errors.write_bytes_atomic): a rerun never meets a cut file."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _dump_json(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def build_synthetic_benchmark(
    out_dir: str | Path,
    n_videos: int = DEFAULT_VIDEOS,
    seed: int = 0,
    duration_s: float = DEFAULT_DURATION_S,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    fps: int = DEFAULT_FPS,
    n_objects: tuple[int, int] = DEFAULT_OBJECTS,
    per_task: int = QUESTIONS_PER_TASK,
    progress: Callable[[int, int], None] | None = None,
    object_scale: float = DEFAULT_OBJECT_SCALE,
) -> dict:
    """Write the synthetic benchmark into `out_dir` (see the module docstring for the layout) and return the
    manifest (also written as manifest.json).

    Args:
        out_dir: a new or empty directory, or one an earlier build with the same parameters wrote (finished, or
            stopped by a full disk or Ctrl-C: its whole videos are kept, the rest is written again). InputError when
            it is a file or holds anything else; DeviceError / InputError (errors.write_error) when it cannot be
            created. A write the disk refuses later raises its OSError (the CLI: one error line, exit 3).
        n_videos: scenes in all, split train/val/test 4:1:1 (at least 1 each, so >= 3).
        seed: draws the scene seeds (`scene_seeds`); the scenes and their questions follow from those.
        duration_s: length of each scene, s (MIN_DURATION_S .. MAX_DURATION_S).
        width, height, fps: frame size (px, >= 32) and whole frame rate (1 .. MAX_FPS) of the videos.
        n_objects: (lo, hi) objects per scene, 4 <= lo <= hi <= 8 (4 options need 4 objects for OI-E).
        per_task: questions per scene and task (at most; fewer when fewer times qualify).
        object_scale: object size factor of the scenes (SyntheticScene; DEFAULT_OBJECT_SCALE: objects about as large
            as a 224-px model frame's merged video token, so a tiny model can tell them apart).
        progress: called as progress(videos_done, n_videos) after each video.
    Raises ConfigError for a parameter out of range.
    """
    from gazeqwen_edge import __version__
    from gazeqwen_edge.device.synthetic import COLOURS, SHAPES

    out = Path(out_dir)
    lo, hi = (int(n_objects[0]), int(n_objects[1]))
    max_objects = min(len(COLOURS), len(SHAPES))
    if not N_OPTIONS <= lo <= hi <= max_objects:
        raise ConfigError(f"objects per scene must satisfy {N_OPTIONS} <= lo <= hi <= {max_objects}, got ({lo}, {hi})")
    if not (isinstance(fps, int) and 1 <= fps <= MAX_FPS):
        raise ConfigError(f"fps must be a whole number from 1 to {MAX_FPS}, got {fps}")
    if not (math.isfinite(duration_s) and MIN_DURATION_S <= duration_s <= MAX_DURATION_S):
        raise ConfigError(f"duration must be {MIN_DURATION_S:g} to {MAX_DURATION_S:g} s, got {duration_s}")
    if not len(SPLITS) <= n_videos <= MAX_VIDEOS:
        raise ConfigError(
            f"videos must be from {len(SPLITS)} to {MAX_VIDEOS} (one scene per split at least), got {n_videos}"
        )
    if width < 32 or height < 32 or per_task < 1:
        raise ConfigError(f"frame sides must be >= 32 px and per_task >= 1, got {width}x{height}, {per_task}")
    splits = scene_seeds(seed, n_videos)
    params = {
        "n_videos": n_videos,
        "seed": seed,
        "duration_s": float(duration_s),
        "width": width,
        "height": height,
        "fps": fps,
        "n_objects": [lo, hi],
        "per_task": per_task,
        "object_scale": float(object_scale),
    }
    _check_resumable(out, params)
    try:
        (out / "videos").mkdir(parents=True, exist_ok=True)
        (out / "fixations").mkdir(exist_ok=True)
    except OSError as e:
        raise write_error(out, "the benchmark directory", e) from None
    _write_text(out / BUILDING_FILE, _dump_json({"params": params, "note": BUILDING_NOTE}))
    counts: dict[str, dict[str, int]] = {}
    items: dict[str, int] = {}
    skipped: list[dict] = []
    scenes: list[dict] = []
    done = 0
    for split in SPLITS:
        entries: list[dict] = []
        for s in splits[split]:
            scene = make_scene(s, duration_s, width, height, fps, (lo, hi), object_scale)
            tr = SceneTruth(scene)
            stem = video_stem(s)
            video = out / "videos" / f"{stem}.mp4"
            # a resumed build keeps the whole videos an earlier run wrote (same parameters: the same frames)
            n_frames = len(scene.frame_ts_ns) if video.is_file() else write_video(scene, video)
            _write_text(out / "fixations" / f"{stem}{FILTERED_SUFFIX}", fixation_csv_text(tr))
            made, skips = scene_questions(tr, s, per_task)
            entries += made
            skipped += [{"scene": s, "split": split, "task": t, "reason": r} for t, r in skips]
            scenes.append(
                {
                    "seed": s,
                    "split": split,
                    "video": f"videos/{stem}.mp4",
                    "fixations": f"fixations/{stem}{FILTERED_SUFFIX}",
                    "n_frames": n_frames,
                    "objects": [o.name for o in scene.objects],
                    "n_fixations": len(tr.fix),
                    "n_questions": len(made),
                }
            )
            done += 1
            if progress is not None:
                progress(done, n_videos)
        _write_text(out / f"{split}.json", _dump_json(entries))
        c = Counter(e["questions"][0]["task_type"] for e in entries)
        counts[split] = {t: c.get(t, 0) for t in ALL_TASKS}
        items[split] = sum(
            len(q.get("test_info", [])) if is_proactive(q["task_type"]) else 1 for e in entries for q in e["questions"]
        )
    skip_counts = Counter((d["task"], d["reason"]) for d in skipped)
    manifest = {
        "generator": GENERATOR,
        "version": __version__,
        "params": params,
        "time_format": "MM:SS, whole seconds (StreamGaze's)",
        "splits": {name: {"scene_seeds": splits[name], "file": f"{name}.json"} for name in SPLITS},
        "questions": counts,
        "items": items,
        "skipped": [{"task": t, "reason": r, "scenes": n} for (t, r), n in sorted(skip_counts.items())],
        "skipped_scenes": skipped,
        "scenes": scenes,
    }
    _write_text(out / "manifest.json", _dump_json(manifest))
    (out / BUILDING_FILE).unlink(missing_ok=True)
    return manifest


# Written first, removed once manifest.json is: a directory holding it is a build that stopped (a full disk, Ctrl-C),
# which a rerun with the same parameters finishes
BUILDING_FILE = "building.json"
BUILDING_NOTE = "an unfinished build: rerun `gazeqwen-edge dataset synthetic` with the same options to finish it"


def _check_resumable(out: Path, params: dict) -> None:
    """Refuse `out` unless it is new, empty, or a build of the same `params` (unfinished: BUILDING_FILE; finished:
    manifest.json), which this build then finishes or redoes, keeping its whole videos. InputError otherwise (a file,
    a directory of something else, a build with other parameters, naming the ones that differ)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(out, "exists and is not a directory", hint="give a new directory")
    if not any(out.iterdir()):
        return
    for name in (BUILDING_FILE, "manifest.json"):
        try:
            earlier = json.loads((out / name).read_text(encoding="utf-8"))["params"]
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(out / name, f"cannot be read ({e})", hint="give a new directory") from None
        if earlier == params:
            return
        diff = ", ".join(f"{k} {earlier.get(k)!r} there, {v!r} now" for k, v in params.items() if earlier.get(k) != v)
        if name == BUILDING_FILE:
            raise InputError(
                out,
                f"holds an unfinished benchmark built with other options ({diff})",
                hint="rerun with that build's options to finish it, or give a new directory",
            )
        raise InputError(out, f"holds a benchmark built with other options ({diff})", hint="give a new directory")
    raise InputError(out, "already exists and is not an empty directory", hint="give a new directory")
