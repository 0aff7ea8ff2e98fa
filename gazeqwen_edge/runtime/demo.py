"""The built-in demo: a short synthetic session (a table scene, a wearer whose gaze moves between objects) replayed
through the streaming session with scripted questions whose ground truth comes from the scene generator."""

from __future__ import annotations

from gazeqwen_edge.runtime.questions import ScheduledQuestion

DEMO_QUESTION = "Which object am I looking at?"


def demo_questions(scene, n: int = 4, min_t_s: float = 2.0) -> list[ScheduledQuestion]:
    """Up to `n` multiple-choice questions about what the wearer is looking at, spread over the scene, each asked in
    the middle of a fixation on an object (after `min_t_s`, so some video has been seen), with the scene's objects as
    options (A, B, ... in the scene's order) and the fixated object as the truth (`meta["answer"]`, a letter, and
    `meta["truth"]`, its name)."""
    names = [o.name for o in scene.objects][:4]
    letters = [chr(ord("A") + i) for i in range(len(names))]
    options = [f"{k}. {v}" for k, v in zip(letters, names, strict=True)]
    start = scene.start_ns
    picks = [(s, e, name) for s, e, name in scene.looked_at if name in names and (s + e) / 2 - start >= min_t_s * 1e9]
    if not picks:
        return []
    step = max(1, len(picks) // n)
    out = []
    for s, e, name in picks[::step][:n]:
        t = ((s + e) / 2 - start) / 1e9
        meta = {"answer": letters[names.index(name)], "truth": name, "task_type": "present_object_identification"}
        out.append(ScheduledQuestion(round(t, 2), DEMO_QUESTION, options, meta))
    return out
