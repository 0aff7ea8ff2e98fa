"""The evaluation's model-free parts of the gaze baselines: how gaze reaches a model that has no resampler, and how a
generated answer is read back as an option letter.

- `draw_gaze_prompt`: StreamGaze's visual-prompt baseline (REFERENCE.md section 2): frames carry a green gaze dot and a
  red circle of the ~15 degree field of view around it.
- `gaze_as_text` / `prepend_gaze_text`: the fixation list written into the question (the "gaze_text" variant).
- `extract_letter`: the generation protocol's answer extraction (leading letter, "The answer is C", "Answer: D", or the
  text of exactly one option).
- `VARIANTS`: the model variants the evaluation compares.

Scanpaths are (N, 4) arrays of rows [x, y, mid_t, dur] (gaze_encoding.py): x, y normalised to [0, 1] of the scene
frame, mid_t and dur in seconds from the clip start; a fixation is active at t if mid_t - dur/2 <= t <= mid_t + dur/2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.gaze_encoding import check_scanpath
from gazeqwen_edge.model.gazeqwen import option_letters

# The model variants of the evaluation: name -> what the model is given.
VARIANTS: dict[str, str] = {
    "no_gaze": "plain model, no scanpath: the video and the question only",
    "visual_prompt": "frames drawn with draw_gaze_prompt (green gaze dot, red field-of-view circle); no scanpath to the model",
    "gaze_text": "the fixation list (gaze_as_text) prepended to the question; no scanpath to the model",
    "gazeqwen_reference": "gaze resampler with the reference encoding (one DETR sine/cosine gaze code per step)",
    "gazeqwen_spatial": "gaze resampler with our spatial encoding (per-token offset code + Gaussian attention bias)",
}

NEON_SCENE_HFOV_DEG = 103.0  # Pupil Labs Neon scene camera, horizontal field of view (1600 x 1200 px)
GAZE_FOV_DEG = 15.0  # the visual-prompt baseline's circle: the ~15 degree field of view (REFERENCE.md section 2)
GREEN = (0, 255, 0)  # RGB
RED = (255, 0, 0)  # RGB
_SHIFT = 4  # cv2 fixed-point fractional bits: sub-pixel centre and radius


def _active_index(start: np.ndarray, end: np.ndarray, t: float) -> int | None:
    """Row of the fixation active at t (the latest started; on equal starts the later row), None if none is."""
    idx = np.nonzero((start <= t) & (t <= end))[0]
    if len(idx) == 0:
        return None
    best = idx[start[idx] == start[idx].max()]
    return int(best[-1])


def draw_gaze_prompt(
    frames: np.ndarray,
    frame_times_s: Sequence[float],
    scanpath,
    hfov_deg: float = NEON_SCENE_HFOV_DEG,
    fov_deg: float = GAZE_FOV_DEG,
) -> np.ndarray:
    """StreamGaze's visual prompt: a copy of `frames` with, on each frame, the active fixation drawn as a filled green
    dot and a red circle outline around it.

    frames: (T, H, W, 3) uint8 RGB, never modified. frame_times_s: T times in seconds on the scanpath's clock (from the
    clip start). scanpath: (N, 4) rows [x, y, mid_t, dur] (check_scanpath), or None / empty (nothing drawn). The
    fixation drawn on a frame is the one active at its time; several active -> the latest started; none -> the frame
    is left as it is. The circle's radius is the field of view's angular radius converted with the camera's pixels per
    degree: (fov_deg / 2) * (W / hfov_deg) px. hfov_deg defaults to Neon's scene camera (103 deg horizontal);
    StreamGaze's source cameras (EGTEA Gaze+, EgoExoLearn, HoloAssist) differ, so pass theirs. The dot's radius
    (min(H, W) / 100, at least 2 px) and the line width (min(H, W) / 200, at least 1 px) scale with the frame.
    Colours are exact (no anti-aliasing). Returns the drawn copy, (T, H, W, 3) uint8.
    Raises InputError for frames of another shape or dtype, a time count that differs from T, a malformed scanpath
    or a non-positive angle.
    """
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
        raise InputError(None, f"frames must be a (T, H, W, 3) uint8 RGB array, got shape {f.shape} dtype {f.dtype}")
    times = np.asarray(frame_times_s, dtype=np.float64).reshape(-1)
    if len(times) != len(f):
        raise InputError(None, f"{len(f)} frames but {len(times)} frame times")
    if not (hfov_deg > 0 and fov_deg > 0):
        raise InputError(None, f"hfov_deg and fov_deg must be positive, got {hfov_deg} and {fov_deg}")
    sp = check_scanpath(scanpath)
    out = np.array(f, copy=True, order="C")
    if len(sp) == 0:
        return out
    _, h, w, _ = out.shape
    start, end = sp[:, 2] - sp[:, 3] / 2, sp[:, 2] + sp[:, 3] / 2
    scale = 1 << _SHIFT
    radius = (fov_deg / 2.0) * (w / hfov_deg)
    dot = max(2.0, min(h, w) / 100.0)
    thickness = max(1, round(min(h, w) / 200.0))
    for i, t in enumerate(times):
        j = _active_index(start, end, float(t))
        if j is None:
            continue
        # normalised [0, 1] spans the frame's edges; pixel centres sit at (i + 0.5) / W
        cx, cy = sp[j, 0] * w - 0.5, sp[j, 1] * h - 0.5
        centre = (round(cx * scale), round(cy * scale))
        cv2.circle(out[i], centre, round(radius * scale), RED, thickness, cv2.LINE_8, _SHIFT)
        cv2.circle(out[i], centre, round(dot * scale), GREEN, cv2.FILLED, cv2.LINE_8, _SHIFT)
    return out


def _fmt(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s  # no "-0.00"


def gaze_as_text(scanpath, max_fixations: int = 20, decimals: int = 2) -> str:
    """The fixations as one line for the prompt, e.g. "Gaze fixations (x, y in 0-1 of the frame; seconds from the clip
    start): (0.42, 0.61) 1.20-1.50 s; (0.10, 0.33) 1.62-2.00 s". Each fixation: its point and its span
    mid_t -/+ dur/2. Only the last `max_fixations` (by start time) are listed, oldest first; when some are left out the
    parenthesis says "the last K of N". Empty scanpath -> "No gaze fixations.". Deterministic (fixed decimals, no
    "-0.00"). Raises InputError for a malformed scanpath, max_fixations < 1 or decimals < 0."""
    if max_fixations < 1 or decimals < 0:
        raise InputError(None, f"max_fixations must be >= 1 and decimals >= 0, got {max_fixations} and {decimals}")
    sp = check_scanpath(scanpath)
    if len(sp) == 0:
        return "No gaze fixations."
    start = sp[:, 2] - sp[:, 3] / 2
    order = np.argsort(start, kind="stable")
    kept = order[-max_fixations:]
    note = f"; the last {len(kept)} of {len(sp)}" if len(kept) < len(sp) else ""
    parts = [
        f"({_fmt(sp[j, 0], decimals)}, {_fmt(sp[j, 1], decimals)}) "
        f"{_fmt(start[j], decimals)}-{_fmt(sp[j, 2] + sp[j, 3] / 2, decimals)} s"
        for j in kept
    ]
    return f"Gaze fixations (x, y in 0-1 of the frame; seconds from the clip start{note}): " + "; ".join(parts)


def prepend_gaze_text(question: str, scanpath, max_fixations: int = 20, decimals: int = 2) -> str:
    """The "gaze_text" variant's question: gaze_as_text(...) on its own line, then the question."""
    return f"{gaze_as_text(scanpath, max_fixations, decimals)}\n{question}"


_OPTION_PREFIX = re.compile(r"\s*[A-Z][.):]\s*")  # "A. " / "B) " / "C: " before an option's text
# the whole reply is a letter: "B", "b", "(B)", "B.", "b)", "**B**"
_ONLY_LETTER = re.compile(r"^[\s*(\[]*([A-Za-z])[\s*)\].:]*$")
# a leading letter followed by punctuation: "B. blue square", "(B) blue", "B) blue", "b. blue", "B: blue", "B, the"
_LEADING = re.compile(r"^[\s*]*(?:\(([A-Za-z])\)|([A-Za-z])[.):,])")
# a leading capital letter on its own line: "B\nbecause ..."
_LEADING_LINE = re.compile(r"^[\s*]*([A-Z])[ \t*]*\n")
# "The answer is C", "answer: (D)", "The best option is: B", "correct choice is C."
_STATED = re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)\s*:?\s*\**\(?([A-Za-z])\b(?!['’])(\)?)(?=(.?))", re.I)


def _option_texts(options: Sequence[str]) -> list[str]:
    """Each option's text without its leading letter, lower-cased, stripped of surrounding punctuation."""
    out = []
    for o in options:
        m = _OPTION_PREFIX.match(o)
        text = o[m.end() :] if m else o
        out.append(text.strip().strip(".,;:!?\"'").strip().lower())
    return out


def _stated_letters(text: str) -> list[str]:
    """Letters named by "answer is X" / "Answer: X" / "option is X". A lower-case letter counts only when it cannot
    be the article "a" ("the answer is a red cup"): in parentheses or followed by punctuation or the end."""
    found = []
    for m in _STATED.finditer(text):
        letter, closed, after = m.group(1), m.group(2), m.group(3)
        if letter.isupper() or closed or after in ("", ".", ")", ",", ";", "\n"):
            found.append(letter.upper())
    return found


def _matched_options(text: str, texts: list[str], letters: list[str]) -> set[str]:
    """Letters whose option text occurs in `text` as whole words (case-insensitive). An occurrence inside a longer
    option's occurrence does not count ("blue" inside "blue square"), so the longest match wins."""
    low = text.lower()
    spans: dict[str, list[tuple[int, int]]] = {}
    for letter, t in zip(letters, texts, strict=True):
        if not t:
            continue
        pat = re.compile(r"(?<!\w)" + re.escape(t) + r"(?!\w)")
        spans[letter] = [(m.start(), m.end()) for m in pat.finditer(low)]
    hits = set()
    for letter, ss in spans.items():
        for s, e in ss:
            covered = any(
                (s2 <= s and e <= e2 and (e2 - s2) > (e - s))
                for other, ss2 in spans.items()
                if other != letter
                for s2, e2 in ss2
            )
            if not covered:
                hits.add(letter)
                break
    return hits


def extract_letter(text: str, options: Sequence[str]) -> str | None:
    """The option letter a generated answer chooses, or None (the generation protocol's answer extraction).

    Explicit forms first: the reply is a letter ("B", "(B)", "b."), starts with one followed by punctuation ("B. blue",
    "B) blue", "(B) blue", "b. blue") or on its own line, or states it ("The answer is C", "Answer: D", "The best option
    is: B"). If explicit forms name exactly one valid letter it is returned; several different ones -> None. With no
    explicit letter, the text of exactly one option in the reply (whole words, case-insensitive; when one option's
    text contains another's, the longest match wins) gives its letter; none or several -> None. Valid letters are
    option_letters(options); a named letter that is not one of them is ignored. Raises InputError for options with
    repeated letters."""
    letters = option_letters(options)
    valid = set(letters)
    t = (text or "").strip()
    if not t:
        return None
    explicit: list[str] = []
    m = _ONLY_LETTER.match(t)
    if m:
        explicit.append(m.group(1).upper())
    else:
        m = _LEADING.match(t)
        if m:
            explicit.append((m.group(1) or m.group(2)).upper())
        m = _LEADING_LINE.match(t)
        if m:
            explicit.append(m.group(1))
        explicit += _stated_letters(t)
    named = {x for x in explicit if x in valid}
    if named:
        return named.pop() if len(named) == 1 else None
    hits = _matched_options(t, _option_texts(options), letters)
    return hits.pop() if len(hits) == 1 else None
