"""The built-in demo: a short synthetic session (a table scene, a wearer whose gaze moves between objects) replayed
through the streaming session with scripted questions whose ground truth comes from the scene generator."""

from __future__ import annotations

from gazeqwen_edge.runtime.questions import ScheduledQuestion

# The synthetic benchmark's wording of present object identification (training/synthetic_benchmark.py), the question
# the demo model was trained on
DEMO_QUESTION = "Which object is the user currently gazing at?"


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


def demo_free_question(scene, text: str, min_t_s: float = 2.0) -> list[ScheduledQuestion]:
    """One open question (no options) asked in the middle of the last fixation on an object that ends at least 1 s
    before the scene does, answered in words; `meta["truth"]` is the object's name. [] when there is none."""
    start, end = scene.start_ns, scene.end_ns
    picks = [(s, e, n) for s, e, n in scene.looked_at if (s + e) / 2 - start >= min_t_s * 1e9 and e <= end - 1e9]
    if not picks:
        return []
    s, e, name = picks[-1]
    t = round(((s + e) / 2 - start) / 1e9, 2)
    return [ScheduledQuestion(t, text, None, {"truth": name, "task_type": "present_object_identification"})]
