"""Proactive alerts: "tell me when I look at the stove" registers a watch; after every new video chunk and at every
new fixation each watch is scored yes / no on the video so far, and an alert fires when the answer stays yes long
enough.

    watches = Watches()
    w = watches.add("the stove")                      # or parse_command("Tell me when I look at the stove")
    fired = watches.update(w, p_yes=0.9, t_s=12.5)     # debounced: True once the yes has held for hold_s

A watch is scored after each chunk and at each new fixation (runtime.session.SessionConfig.watch_checks) with a
short scoring prefill, then the cache is cut back (`watch_score`). A model that answers with option letters is asked
the way it was trained on StreamGaze's proactive tasks (REFERENCE.md section 2; training/synthetic_benchmark.py):
"Monitor my gaze and alert me when I gaze on the <stove>." with the options "A. Yes" / "B. No"
(VideoStream.score_mc); its score is p(Yes) = softmax of the two option scores. A model that answers in words is
asked IDENTIFY_QUESTION, and its score is p(the target's name) / p(its own answer: the greedy reply, or NOTHING
where that is likelier), capped at 1. Debouncing: an armed watch fires when the score >= threshold has held for
`hold_s` seconds of video (the first check at or above the threshold starts the count, so hold 0 fires at once),
then stays quiet until the score < threshold has held for `rearm_s` seconds (re-armed).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import asdict, dataclass, field

from gazeqwen_edge.errors import check_text, control_character, json_line
from gazeqwen_edge.runtime.sinks import JsonlSink

# a proactive test point's options, as training/tasks.py YES_NO writes them (the runtime does not import training; a
# test checks the two agree)
YES_NO = ["A. Yes", "B. No"]
# What a model that answers in words (mc_protocol "option_text", e.g. the demo model) is asked instead of the Yes/No
# question: the synthetic benchmark's present object identification (watch_score compares the target's name with
# the model's own answer). The tiny demo model names the gazed object (94 % of held-out test questions) but never
# learned the Yes/No comparison of GTA: its p(Yes) told alerting from silent test points apart no better than chance
# (AUC 0.54 on validation scenes; the closing notes of #12). Asked while the wearer looks at no object, a model
# trained only on StreamGaze's present questions names some object anyway (they are all asked inside a fixation on
# one), and a watch on that object fires; the demo model is also trained on the benchmark's CTL-G questions (the
# answer "nothing" then), so its own answer, not the target, is the likely one there.
IDENTIFY_QUESTION = "Which object is the user currently gazing at?"
# The answer to IDENTIFY_QUESTION while the wearer looks at no object (training/tasks.py NOTHING, the synthetic
# benchmark's CTL-G; a test checks the two agree). Greedy decoding misses it where its first word loses to a colour
# ("white" + "circle" beat "nothing" token by token while "nothing" is the likelier reply), so watch_score takes it
# as the model's own answer where it is likelier than the greedy one. On the CLI's synthetic scenes (seeds 1-10,
# benchmarks/watch_scenes.py) the demo model's greedy reply at a check on a background fixation was never
# "nothing", though "nothing" was likelier at 11 of the 16 such checks that fired a watch.
NOTHING = "nothing"

_ADD = re.compile(
    r"^\s*(?:please\s+)?(?:tell|alert|notify|warn|remind)\s+me\s+(?:when(?:ever)?|if|once)\s+"
    r"(?:i\s+(?:look|gaze|glance|am\s+looking)|i'm\s+looking)\s+(?:at|on|towards?)(?:\s+(?P<target>.*?))?[\s.!?]*$",
    re.IGNORECASE,
)
_REMOVE = re.compile(
    r"^\s*(?:please\s+)?(?:stop|quit|cancel)\s+(?:watching|monitoring|alerting\s+me\s+about|watching\s+for)"
    r"(?:\s+(?P<target>.*?))?[\s.!?]*$",
    re.IGNORECASE,
)
MAX_TARGET_CHARS = 80
# How long (s of video) a watch's yes must hold before it alerts, by default. Chosen on the synthetic benchmark's
# validation split with the demo model (`eval-alerts`): with checks once per chunk (1 s), hold 0 put 137 first
# alerts within 1.5 s of the first gaze at the target (11 before it), hold 1 s put 16 there (1 before); with checks
# at every fixation too (DEFAULT_WATCH_CHECKS), holds of 0.1 / 0.3 s at the best threshold for each put 158 / 124
# there against 207 at hold 0 (benchmarks/alert_threshold.py --hold): a fixation lasts a few hundred ms and the next
# one's check says no, so a hold waits for a second look. Held-out test split: README "Alerts".
DEFAULT_HOLD_S = 0.0
# When a session checks its watches (runtime.session.SessionConfig.watch_checks): "chunk", after each chunk is
# prefilled; "fixation", as soon as it learns of a new fixation (the detector's once it has lasted its minimum
# duration, 105 ms after it began; a source's when it arrives), on the video brought up to then as for a question;
# "both". Checked once a chunk, a glance that begins and ends between two chunks is never checked (the synthetic
# scenes' fixations last 200-400 ms): on the CLI's scenes (benchmarks/watch_scenes.py, seeds 1-10), 7 of the 9 late
# or missed first alerts had no check on the target within 1.5 s of its first fixation. Chosen on the benchmark's
# validation split (eval-alerts, 286 watches, each mode at its best threshold, the criterion below): chunk 176 on
# time, 16 early, 3 false (0.15); fixation 190, 25, 2 (0.2); both 207, 30, 3 (0.2). Held-out figures: README
# "Alerts".
WATCH_CHECKS = ("chunk", "fixation", "both")
DEFAULT_WATCH_CHECKS = "both"
# The score at which a watch says yes, by the score watch_score gives. p(Yes) of the proactive question (the 7B's
# StreamGaze protocol): YES_THRESHOLD, even odds. The identify score of a model that answers in words (p(target) /
# p(its own answer)): IDENTIFY_THRESHOLD, the target at least a fifth as likely as what the model would say, chosen
# with DEFAULT_WATCH_CHECKS on the synthetic benchmark's validation split with the demo model
# (benchmarks/alert_threshold.py over its `eval-alerts` run: the most first alerts on time less the early and false
# ones; 0.2 there: 207 on time, 30 early, 3 false; 0.15: 209, 35, 4; 0.35: 186, 22, 2). With checks once a chunk it
# was 0.15 (176, 16, 3), and 0.35 while the model's own answer was its greedy reply alone (169, 16, 3).
YES_THRESHOLD = 0.5
IDENTIFY_THRESHOLD = 0.2


def default_threshold(gq) -> float:
    """The watch threshold for model `gq` (a GazeQwen): IDENTIFY_THRESHOLD for one that answers in words (mc_protocol
    "option_text": watch_score's identify score), else YES_THRESHOLD (p(Yes))."""
    return IDENTIFY_THRESHOLD if getattr(gq, "mc_protocol", None) == "option_text" else YES_THRESHOLD


def parse_command(text: str) -> tuple[str, str] | None:
    """("add", target) for "tell me when I look at X", ("remove", target) for "stop watching X", else None. The
    target keeps its words ("the stove"), unchecked, and may be empty ("tell me when I look at"): Watches.add refuses
    one that is no short plain description (check_target), so such a command is refused, not asked as a question."""
    for kind, pattern in (("add", _ADD), ("remove", _REMOVE)):
        m = pattern.match(text)
        if m:
            return kind, (m["target"] or "").strip()
    return None


def check_target(target: str, what: str = "the watch") -> str:
    """A watch's target, stripped of spaces (runs of them inside taken as one) and of a sentence's closing ".", "!" or
    "?" ("the stove." is "the stove": the target is put inside the question's <...>): valid text (errors.check_text)
    of 1..MAX_TARGET_CHARS characters without a control character (errors.control_character, line breaks and tabs
    too: a line break, an escape
    sequence or a bidirectional override would reach the terminal and alerts.jsonl with every alert) that names
    something (a letter or a digit and more than an article: "?", "..." or "the" is no object). One rule for
    every way a watch arrives (--watch, typed, spoken, a questions file). ValueError naming `what`."""
    check_text(target, what)
    control = control_character(target, line_breaks=False)
    if control is not None:
        raise ValueError(f"{what} holds a control character ({ascii(control)})")
    t = " ".join(target.split()).rstrip(".!?").strip()  # "blue  star" is the blue star: one space between words
    shown = target if len(target) <= 40 else target[:40] + "..."
    if not target.strip() or len(t) > MAX_TARGET_CHARS:
        raise ValueError(
            f"{what} needs a short description (1..{MAX_TARGET_CHARS} characters), got {shown!r} ({len(target)})"
        )
    if not any(c.isalnum() for c in t) or _ARTICLE.fullmatch(t):
        raise ValueError(f"{what} names no object, got {shown!r}")
    return t


_ARTICLE = re.compile(r"(?:the|a|an|my)", re.IGNORECASE)


def _object(target: str) -> str:
    """ "the red cup" -> "red cup" (the benchmark names objects without an article)."""
    return re.sub(r"^(?:the|a|an|my)\s+", "", target.strip(), flags=re.IGNORECASE)


def unknown_to_scene_models(gq, target: str) -> bool:
    """Whether `target` is a name model `gq` cannot have learnt: True for a model that answers in words
    (mc_protocol "option_text": the tiny models this package trains on the synthetic gaze benchmark, the demo model
    among them, whose only object names are a colour and a shape, device.synthetic COLOURS x SHAPES) when `target`
    is not such a name ("the stove", "my phone"); False for any other model (the 7B knows the words)."""
    if getattr(gq, "mc_protocol", None) != "option_text":
        return False
    from gazeqwen_edge.device.synthetic import COLOURS, SHAPES

    words = _object(target).lower().split()
    return not (len(words) == 2 and words[0] in COLOURS and words[1] in SHAPES)


# What a session and the CLI tell the wearer about a watch `unknown_to_scene_models` finds
SCENE_VOCABULARY_NOTE = (
    "this model knows only the synthetic scenes' objects, a colour and a shape (e.g. the blue star), so it may never "
    "see {target}"
)


def watch_question(target: str) -> str:
    """The proactive question a watch is scored with (the synthetic benchmark's GTA wording)."""
    return f"Monitor my gaze and alert me when I gaze on the <{_object(target)}>."


@dataclass
class Watch:
    """One watch: id, target (as said: "the stove"), the question it is scored with, threshold (p(Yes)), hold_s and
    rearm_s (seconds of video), and its state: armed, when the current yes / no run started (s), alerts fired, and
    the last score."""

    id: int
    target: str
    question: str
    threshold: float = 0.5
    hold_s: float = DEFAULT_HOLD_S
    rearm_s: float = 3.0
    armed: bool = True
    run_since_s: float | None = None
    fired: int = 0
    last_score: float | None = None


@dataclass
class Alert:
    """One line of `alerts.jsonl`: the watch (id, target), `t` / `t_ns` of the chunk that fired it (its last model
    frame: seconds from the session's first record, unix ns on the device clock) and its p(Yes)."""

    watch_id: int
    watch: str
    t: float
    t_ns: int
    score: float
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json_line(asdict(self))  # strict JSON: a score that is not finite is null


def watch_score(stream, w: Watch, prompt: str = "reference") -> float:
    """A watch's score in [0, 1] on the video so far (runtime.stream.VideoStream; the cache is cut back after). For a
    model that answers in words: how close the target is to its own answer to IDENTIFY_QUESTION, p(target's words)
    / p(its own answer) capped at 1 (1 when it would name the target; a ratio, so the many names it could say do not
    make every probability small), its own answer the greedy reply or NOTHING, whichever is likelier. Otherwise
    p(Yes) of the proactive question with Yes / No (p_yes)."""
    if stream.gq.mc_protocol == "option_text":
        # in lower case, as the model names objects ("Green Star" from a user is the green star it knows)
        name = _object(w.target).lower()
        lp, lp_own = stream.answer_logprobs(IDENTIFY_QUESTION, name, alternatives=(NOTHING,))
        return math.exp(min(0.0, lp - lp_own))
    return p_yes(stream.score_mc(w.question, YES_NO, prompt))


def p_yes(scores: dict[str, float]) -> float:
    """p(Yes) from {"A": yes score, "B": no score}: softmax of letter logits, or of option-text log-likelihoods."""
    a, b = scores["A"], scores["B"]
    m = max(a, b)
    ea, eb = math.exp(a - m), math.exp(b - m)
    return ea / (ea + eb)


class Watches:
    """The session's watches (thread-safe: typed and spoken commands add them while the model worker scores them)."""

    def __init__(self, threshold: float = YES_THRESHOLD, hold_s: float = DEFAULT_HOLD_S, rearm_s: float = 3.0):
        if not (0 < threshold < 1) or hold_s < 0 or rearm_s < 0:
            from gazeqwen_edge.errors import ConfigError

            raise ConfigError("a watch needs 0 < threshold < 1 and non-negative hold and re-arm times")
        self.threshold, self.hold_s, self.rearm_s = threshold, hold_s, rearm_s
        self._lock = threading.Lock()
        self._watches: dict[int, Watch] = {}
        self._next = 0
        self._rr = 0  # round-robin start for budgeted checks

    def add(self, target: str) -> Watch:
        """Watch `target` (an existing watch of the same target is kept, not doubled). ValueError for a target that
        check_target refuses (not valid text, a control character, empty or too long)."""
        target = check_target(target)
        with self._lock:
            for w in self._watches.values():
                if _object(w.target).lower() == _object(target).lower():
                    return w
            self._next += 1
            w = Watch(self._next, target, watch_question(target), self.threshold, self.hold_s, self.rearm_s)
            self._watches[w.id] = w
            return w

    def remove(self, target: str) -> Watch | None:
        """Stop watching `target`; the removed Watch, or None when there was none."""
        with self._lock:
            for i, w in list(self._watches.items()):
                if _object(w.target).lower() == _object(target).lower():
                    return self._watches.pop(i)
        return None

    def active(self) -> list[Watch]:
        """The watches in round-robin order (each call starts one further on, so a budget that checks only the first
        few of them still reaches every watch in turn)."""
        with self._lock:
            ws = list(self._watches.values())
            if not ws:
                return []
            k = self._rr % len(ws)
            self._rr += 1
            return ws[k:] + ws[:k]

    def __len__(self) -> int:
        with self._lock:
            return len(self._watches)

    def update(self, w: Watch, score: float, t_s: float) -> bool:
        """Debounce one score of watch `w` at video time `t_s` (s); True when the watch fires now."""
        w.last_score = score
        # one rule for both states: the answer that would change the state (yes while armed, no while fired) must
        # hold for the state's time (hold_s to fire, rearm_s to re-arm); any other answer restarts the count
        changing = (score >= w.threshold) == w.armed
        if not changing:
            w.run_since_s = None
            return False
        if w.run_since_s is None:
            w.run_since_s = t_s
        if t_s - w.run_since_s < (w.hold_s if w.armed else w.rearm_s):
            return False
        w.armed, w.run_since_s = not w.armed, None
        if w.armed:  # re-armed
            return False
        w.fired += 1
        return True


class AlertsJsonl(JsonlSink):
    """A sink that appends one Alert per line to `alerts.jsonl` (JsonlSink: flushed at once, created at the first
    alert)."""

    def alert(self, alert: Alert) -> None:
        self._append(alert)
