"""The streaming session: a source's records in, answers out.

    with Session(open_source("synthetic:3"), gq, SessionConfig(), out_dir="out/s1", sinks=[TerminalSink(console)]):
        ...                                   # threads run; session.ask("What am I looking at?") from any thread
    session.wait()                            # until the source ends and every question is answered

Two threads per session (no global state: several sessions live in one process):
- ingest: drains the source (paced for a replay), writes every record to the session directory (the device layer's
  session format), runs the wearer offset + online fixation detector + scanpath builder on the device clock, samples
  scene frames at the model's fps, and hands every chunk of whole temporal steps to the model worker with the
  scanpath known at that moment and the frames its V-JEPA windows need. It never waits for the model (live): when
  chunks pile up beyond `max_pending_chunks` the oldest waiting one is skipped, counted and reported. A replay at
  full speed runs in `lockstep` instead (the ingest waits for the model, nothing is skipped, answers are
  reproducible).
- model worker: prefills chunks into the VideoStream (stream-regime checkpoints) or keeps the recent frames
  (reference-regime checkpoints, re-encoded per question), and answers questions. A live question waits at most
  for the chunk in flight: it goes ahead of the chunks still waiting.
Everything said is logged: `answers.jsonl` (one AnswerRecord per question) and events.csv (question / answer events).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gazeqwen_edge.device.records import AudioChunk, Event, Fixation, GazeSample, Notice, SceneFrame
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import ConfigError, GazeQwenError, InputError, check_creatable
from gazeqwen_edge.model.gazeqwen import GazeQwen, Reply, Video
from gazeqwen_edge.runtime.questions import (
    AnswerRecord,
    Question,
    ScheduledQuestion,
    check_options,
    check_question_text,
)
from gazeqwen_edge.runtime.sinks import JsonlAnswers, Sink
from gazeqwen_edge.runtime.stream import VideoStream
from gazeqwen_edge.runtime.watches import (
    DEFAULT_WATCH_CHECKS,
    SCENE_VOCABULARY_NOTE,
    WATCH_CHECKS,
    Alert,
    AlertsJsonl,
    Watches,
    default_threshold,
    parse_command,
    unknown_to_scene_models,
    watch_score,
)

FIXATION_SOURCES = ("auto", "detector", "source")
# Chunks a question may re-prefill with the gaze known at its time (VideoStream.refresh_gaze). A step's gaze span
# runs one step from its first frame, and a chunk is prefilled when its last frame arrives, half a step before its
# last span ends: the newest chunk lacks that half step's gaze, and so does the chunk before it (prefilled when its
# own last frame arrived). Older chunks keep the gaze they had when they were last prefilled.
REFRESH_CHUNKS = 2
# stages other threads time beside the model's work (the ingest thread per record, the voice input's recogniser):
# not model work, so not in timings.csv nor in a question's own stages
INGEST_STAGES = frozenset(
    {"fixation_detection", "device_to_buffer_gaze", "device_to_buffer_scene", "vad", "speech_recognition"}
)


@dataclass
class SessionConfig:
    """Settings of a streaming session.

    fps: model frames per second sampled from the scene camera (two make one temporal step); chunk_s: seconds of
    video per prefilled chunk (rounded to whole steps, at least one); window_s: seconds of video kept in the KV cache
    (a sliding window; None keeps all; it also bounds the frames a reference-regime model re-encodes per question);
    max_new_tokens: per generated answer; max_pending_chunks: chunks waiting for the model before the oldest is
    skipped (live); lockstep: the ingest waits for the model instead (replays); fixations: "detector" (our online
    detector on the gaze), "source" (the source's own fixations, e.g. StreamGaze, Neon recordings) or "auto" (the
    source's own for StreamGaze items, which carry no raw gaze, else the detector); prompt: the multiple-choice
    prompt (model.gazeqwen.MC_PROMPTS); context_fixations: how many recent fixations an answer record lists;
    first_video_wait_s: how long a live question asked before any video waits for the first chunk; reorder_window_s:
    how long a live source holds records to release them in time order across kinds (scene frames arrive after the
    gaze of the same moment: decoding). The live source's own default, 0.75 s, delayed every gaze sample by 0.75 s
    on its way to the session (`gazeqwen-edge profile --source simulator`, device_to_buffer_gaze); 0.25 s covers the
    decoding delay of scene frames (p95 41 ms at 640x480 through the simulator, benchmarks/neon_latency.py);
    watch_checks: when the watches are checked (runtime.watches.WATCH_CHECKS): "chunk", after each chunk is
    prefilled; "fixation", when the session learns of a new fixation (the detector's 105 ms after it began; a
    source's when it arrives), on the chunks prefilled so far brought up to then as for a question (a view ending at
    the newest model frame, else the gaze refreshed), so that a glance between two chunks is checked while it lasts
    (one before the first chunk is skipped); "both";
    watch_budget: the share of the model's time the watch checks may take (live): one check scores watches for at
    most that share of a chunk's video duration (of one temporal step's, at a fixation) and all checks together
    draw on an allowance that fills at that share of wall time (up to that share of a chunk); watches past the
    budget, every watch while chunks wait for the model or the allowance is spent, are skipped for that check
    (counted), and a fixation check still waiting when the next fixation comes is dropped for it, so many watches
    and many fixations degrade the alerts, never the video; gaze_refresh: a question (and, with watches, each chunk) first
    re-prefills the newest chunks whose gaze changed since they were prefilled (VideoStream.refresh_gaze, one or two
    chunk prefills; False: answer on the gaze the chunks were prefilled with: 57.7 % right instead of 61.5 % for
    the demo model on 104 demo questions); question_view: a question asked while the session holds a frame
    newer than the cache's last (the odd one of the next step) re-pairs the newest steps to end at it for that
    question (VideoStream.question_view), so the video ends at most one frame before the question, as training clips
    end at it; gaze_settle: a question's fixations are those up to its time as known once the gaze has run the
    fixation detector's settle time past it (`OnlineScanpath.settle_ns`, 105 ms; live, a typed question waits for
    that gaze, at most `settle_wait_s`), so a fixation begun just before the question is in them, as training's
    "stream" scanpaths hold it (False: the fixations known at the question's time; only the detector's fixations
    settle).
    A chunk is a whole number of temporal steps (2 / fps seconds each): chunk_s is rounded to the nearest (halves up),
    at least 1.
    """

    fps: float = 2.0
    chunk_s: float = 1.0
    window_s: float | None = 60.0
    max_new_tokens: int = 64
    max_pending_chunks: int = 2
    lockstep: bool = False
    fixations: str = "auto"
    prompt: str = "reference"
    context_fixations: int = 8
    first_video_wait_s: float = 10.0
    reorder_window_s: float = 0.25
    watch_budget: float = 0.5
    gaze_refresh: bool = True
    question_view: bool = True
    gaze_settle: bool = True
    settle_wait_s: float = 0.5
    watch_checks: str = DEFAULT_WATCH_CHECKS

    def __post_init__(self) -> None:
        for name in ("fps", "chunk_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(f"session {name} must be a positive number, got {v!r}")
        if self.window_s is not None and not (math.isfinite(self.window_s) and self.window_s > 0):
            raise ConfigError(f"session window must be a positive number of seconds, got {self.window_s!r}")
        if self.max_new_tokens < 1 or self.max_pending_chunks < 1:
            raise ConfigError("max_new_tokens and max_pending_chunks must be >= 1")
        if self.window_s is not None and self.window_s < 2 / self.fps:
            raise ConfigError(
                f"session window of {self.window_s:g} s holds no temporal step (2 / fps = {2 / self.fps:g} s)",
                hint="use a window of at least a few seconds, or 0 for no limit",
            )
        if not (math.isfinite(self.reorder_window_s) and 0 <= self.reorder_window_s <= 10):
            raise ConfigError(f"reorder window must be 0..10 s, got {self.reorder_window_s!r}")
        if not (math.isfinite(self.watch_budget) and 0 < self.watch_budget <= 10):
            raise ConfigError(f"watch budget must be a share of a chunk in (0, 10], got {self.watch_budget!r}")
        if not (math.isfinite(self.settle_wait_s) and 0 <= self.settle_wait_s <= 10):
            raise ConfigError(f"settle wait must be 0..10 s, got {self.settle_wait_s!r}")
        if self.fixations not in FIXATION_SOURCES:
            raise ConfigError(f"fixations must be one of {', '.join(FIXATION_SOURCES)}, got {self.fixations!r}")
        if self.watch_checks not in WATCH_CHECKS:
            raise ConfigError(f"watch checks must be one of {', '.join(WATCH_CHECKS)}, got {self.watch_checks!r}")

    @property
    def chunk_steps(self) -> int:
        return max(1, math.floor(self.chunk_s * self.fps / 2 + 0.5))  # (halves up: round() takes 2.5 to 2)

    @property
    def chunk_used_s(self) -> float:
        """The chunk as used, s of video: chunk_steps whole temporal steps of 2 / fps s."""
        return self.chunk_steps * 2 / self.fps


@dataclass
class SessionStats:
    """Counts of a session so far: records in by kind, model frames sampled, chunks prefilled / skipped, questions
    asked / answered / failed, the live source's own drop count when it reports one, watch checks made / skipped and
    alerts fired."""

    records: dict[str, int] = field(default_factory=dict)
    model_frames: int = 0
    chunks_prefilled: int = 0
    chunks_skipped: int = 0
    questions: int = 0
    answered: int = 0
    failed: int = 0
    source_dropped: int = 0
    watch_checks: int = 0
    watch_checks_skipped: int = 0
    alerts: int = 0


@dataclass
class _ChunkJob:
    first_step: int
    frames: np.ndarray  # (2k, H, W, 3) uint8
    times_s: np.ndarray  # (2k,) seconds from the origin
    scanpath: np.ndarray  # rows known when the chunk was complete
    window: list[tuple[int, np.ndarray]]  # model frames its V-JEPA windows need


@dataclass
class _WatchCheck:
    """The watches checked at a new fixation: t_ns when the session learnt of it (device clock), the scanpath rows
    known then, the newest model frame (index, rgb, t_s) for a view ending at it (None: none newer than the cache's)."""

    t_ns: int
    scanpath: np.ndarray
    tail: tuple[int, np.ndarray, float] | None


_END = object()


def _takes_window(source) -> bool:
    """Whether `source.records()` takes a reorder window (live Neon sources do)."""
    import inspect

    try:
        return "reorder_window_s" in inspect.signature(source.records).parameters
    except (TypeError, ValueError):
        return False


class Session:
    """A streaming session over one source and one GazeQwen. See the module docstring.

    source: any device Source (live or recorded); gq: the model; config: SessionConfig; out_dir: the session directory
    (None: nothing written); sinks: outputs (answers.jsonl is added when out_dir is set); wearer: a stored wearer
    offset (`calibrate offset`) applied to the gaze instead of the source's own; speed: replay pace (None: as fast as
    possible, 1: real time; live sources ignore it); scheduled: questions asked at times into the source; spec and
    label: the SOURCE spec and the command ("run", "replay", "demo") written into session.json. Before start(),
    `voice` (spoken questions: voice.listener.VoiceInput / LazyVoice), `audio_input` (a local microphone feeding
    `voice` instead of the source's audio: voice.mic.Microphone) and `watches` (runtime.watches.Watches: alerts into
    alerts.jsonl) may be set.
    Raises ConfigError / InputError for bad settings before any thread starts.
    """

    def __init__(
        self,
        source: Source,
        gq: GazeQwen,
        config: SessionConfig | None = None,
        out_dir: str | Path | None = None,
        sinks: Sequence[Sink] = (),
        wearer: str | None = None,
        speed: float | None = None,
        scheduled: Iterable[ScheduledQuestion] = (),
        spec: str = "",
        label: str = "run",
    ):
        from gazeqwen_edge.calibration.offset import resolve_offset

        self.source = source
        self.gq = gq
        self.config = config or SessionConfig()
        self.speed = speed
        self.stats = SessionStats()
        self.scheduled = deque(sorted(scheduled, key=lambda q: q.t_s))
        self.offset, self.offset_origin = resolve_offset(source, wearer)
        self.recorder = None
        self.sinks: list[Sink] = list(sinks)
        if out_dir is not None:
            from gazeqwen_edge.device.session import Recorder

            check_creatable(Path(out_dir))

            # the settings its answers depend on: the chunk as used (whole steps), window_s None = all the video
            settings = {**asdict(self.config), "chunk_s": self.config.chunk_used_s}
            meta = {"session": f"gazeqwen-edge {label}", "settings": settings, "speed": speed}
            self.recorder = Recorder.for_source(out_dir, source, spec=spec, metadata=meta)
            self.sinks.append(JsonlAnswers(Path(out_dir) / "answers.jsonl"))
            self.sinks.append(AlertsJsonl(Path(out_dir) / "alerts.jsonl"))
        self.out_dir = None if out_dir is None else Path(out_dir)
        self._bad_sinks: set[int] = set()
        self._cond = threading.Condition()
        self._work: deque = deque()
        self._n_pending_chunks = 0
        self._scan_lock = threading.Lock()
        self._stop = threading.Event()
        self._ingest_done = threading.Event()
        self._worker_done = threading.Event()
        self._error: BaseException | None = None
        self._next_id = 0
        self.origin_ns: int | None = source.start_ns
        self.now_ns: int | None = None
        self.scanpath = None  # built at the first record (needs the frame size)
        self._use_source_fixations = self.config.fixations == "source" or (
            self.config.fixations == "auto" and getattr(source, "name", "") == "streamgaze"
        )
        self._threads: list[threading.Thread] = []
        self.stream: VideoStream | None = None
        self._newest_frame: tuple[int, np.ndarray, float] | None = None  # the newest model frame (index, rgb, t_s)
        self._history: deque = deque()  # reference regime: (frame, t_s) of the window
        self._no_scene_video = False  # the source said it has none
        self._flush_requested = threading.Event()  # a live question: prefill the whole steps held for a chunk
        self._deferred: list[tuple[float, Question]] = []  # live questions waiting for the first video (deadline)
        # questions whose fixations settle once the gaze has run past their time (gaze_settle; under _scan_lock)
        self._unsettled: list[tuple[Question, threading.Event]] = []
        self._gaze_ended = False  # the ingest is over: no more gaze will come
        # spoken questions: an object with push(AudioChunk) and close() (voice.listener.VoiceInput), set before
        # start(); it calls voice_question / voice_notice / speech_started
        self.voice = None
        # a local microphone (voice.mic.Microphone: start(push) / stop()), set before start(): spoken questions come
        # from it instead of the source's audio; started with the ingest, stopped before the voice input closes
        self.audio_input = None
        # "tell me when I look at X" (typed, spoken, --watch); scored as config.watch_checks says, at the model's threshold
        self.watches = Watches(threshold=default_threshold(gq))
        self._watch_notice = False
        self._checked_fixation_ns: int | None = None  # the start of the newest fixation the watches were checked at
        # live: the seconds of model time the watch checks may still take (a bucket filled at watch_budget s per s,
        # up to watch_budget of a chunk; _watch_allowance), and when it was last filled (time.monotonic)
        self._watch_allowance_s = self.config.watch_budget * self.config.chunk_used_s
        self._watch_allowance_at: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Session:
        """Start the ingest and model worker threads."""
        if self._threads:
            return self
        self._threads = [
            threading.Thread(target=self._guard(self._ingest), name="session-ingest", daemon=True),
            threading.Thread(target=self._guard(self._worker), name="session-model", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the source has ended and every question is answered (True), or `timeout` s (False). Re-raises
        an error that stopped a session thread."""
        done = self._worker_done.wait(timeout)
        if self._error is not None:
            raise self._error
        return done

    def stop(self) -> None:
        """Stop reading the source, finish the answer in progress, close the session directory. Idempotent."""
        self._stop.set()
        with self._cond:
            self._work.append(_END)
            self._cond.notify_all()
        for t in self._threads:
            # the model thread finishes the answer in progress; a live source may hold the ingest thread until its
            # owner closes it (no data while the device is away), so that one is not waited for long
            t.join(timeout=30 if t.name == "session-model" else 2)
        self._close_outputs()

    def _close_outputs(self) -> None:
        try:
            if self.recorder is not None:
                if self._error is not None and not isinstance(self._error, KeyboardInterrupt):
                    # a thread stopped the session (an unreadable video mid-replay): what was recorded is kept,
                    # marked "failed" as the command fails, not "closed" like a session that ran to its end
                    self.recorder.abort(self._error)
                self.recorder.close()  # DeviceError when its disk refused a write: raised after the sinks close
        finally:
            for s in self.sinks:
                try:
                    s.close()
                except Exception:  # noqa: BLE001 - a sink must not break the shutdown
                    pass

    def _guard(self, fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - handed to wait()
                if not self._stop.is_set():  # after stop() the outputs are closing under the threads: not an error
                    self._error = e
                self._stop.set()
                with self._cond:
                    self._work.append(_END)
                    self._cond.notify_all()
            finally:
                if fn == self._worker:
                    self._worker_done.set()
                else:
                    self._ingest_done.set()

        return run

    # ------------------------------------------------------------------ sinks
    def _emit(self, method: str, *args) -> None:
        for i, s in enumerate(self.sinks):
            if i in self._bad_sinks:
                continue
            try:
                getattr(s, method)(*args)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - one broken sink must not stop the session
                # (SystemExit: rich ends a program whose stdout reader went away, `replay ... | head -1`; the
                # session goes on and records every answer, and the command exits when it next prints)
                self._bad_sinks.add(i)
                if method != "notice":
                    self.notice("sink_failed", f"{type(s).__name__} stopped: {type(e).__name__} {e}")

    def t_s(self, t_ns: int | None) -> float | None:
        """Seconds from the session's first record (its origin) of a device-clock time."""
        if t_ns is None or self.origin_ns is None:
            return None
        return (t_ns - self.origin_ns) / 1e9

    def notice(self, kind: str, message: str, t_ns: int | None = None) -> None:
        """Tell every sink (and the session log) about a status change."""
        self._emit("notice", kind, message, self.t_s(t_ns))
        if self.recorder is not None:
            self.recorder.write(Notice(t_ns if t_ns is not None else (self.now_ns or 0), kind, message))

    # ------------------------------------------------------------------ questions
    def ask(
        self,
        text: str,
        options: list[str] | None = None,
        t_ns: int | None = None,
        source: str = "typed",
        meta: dict | None = None,
    ) -> Question:
        """Ask a question (thread-safe). t_ns: when it was asked on the device clock (default: the latest record's
        time). A live question goes ahead of the chunks waiting for the model; in lockstep it waits its turn."""
        try:
            text = check_question_text(text)
            options = check_options(options)
        except ValueError as e:
            raise InputError(None, str(e)) from None
        with self._cond:
            self._next_id += 1
            q = Question(text, int(t_ns if t_ns is not None else self._device_now()), source, options)
            q.meta = dict(meta or {})
            q.id = self._next_id
            q.arrived_s = time.perf_counter()
            with self._scan_lock:
                q.meta["_rows"] = self._rows(q.t_ns)  # what is known at its time; final unless it settles later
                if self._settles():
                    q.meta["_gaze_ready"] = ready = threading.Event()
                    self._unsettled.append((q, ready))
                    self._settle_questions()
            tail = self._tail_at(q.t_ns)
            if tail is not None:
                q.meta["_tail"] = tail  # a frame newer than the cache's may end the video at the question
            if self.config.lockstep:
                self._work.append(q)
            else:  # after the questions already waiting, before any waiting chunk
                i = 0
                while i < len(self._work) and isinstance(self._work[i], Question):
                    i += 1
                self._work.insert(i, q)
            self.stats.questions += 1
            self._flush_requested.set()  # the ingest thread prefills the whole steps it holds, so the question sees them
            self._cond.notify_all()
        return q

    # ------------------------------------------------------------------ spoken questions
    def _push_voice(self, chunk: AudioChunk) -> None:
        try:
            self.voice.push(chunk)
        except Exception as e:  # noqa: BLE001 - a failing recogniser must not stop the video and the typed questions
            self.notice("voice_failed", f"spoken questions stopped ({type(e).__name__}: {e})", chunk.ts_ns)
            self.voice = None

    def voice_question(self, text: str, t_ns: int, meta: dict | None = None) -> None:
        """A spoken question (the transcript), asked at `t_ns`: when its speech started, on the device clock. One
        that cannot be asked (too long) becomes a notice."""
        try:
            self.ask(text, None, t_ns, source="voice", meta=meta)
        except InputError as e:
            self.notice("not_understood", f"a spoken question was not asked: {e.message}", t_ns)

    def voice_notice(self, kind: str, message: str, t_ns: int | None = None) -> None:
        """Something the voice input reports (speech not understood, recognition failed)."""
        self.notice(kind, message, t_ns)

    def speech_started(self, t_ns: int) -> None:
        """The wearer started speaking: sinks that are speaking stop (barge-in)."""
        self._emit("speech_started", self.t_s(t_ns))

    def _device_now(self) -> int:
        """Now on the device clock: the latest record's time, else the source's own clock (a live Neon's phone
        clock), else this machine's unix time."""
        if self.now_ns is not None:
            return self.now_ns
        now = getattr(self.source, "now_ns", None)
        return int(now()) if callable(now) else time.time_ns()

    # ------------------------------------------------------------------ ingest thread
    def _setup_scanpath(self, width: int, height: int) -> None:
        from gazeqwen_edge.calibration.camera import FrameTransform, GazeMapper
        from gazeqwen_edge.calibration.offset import camera_for
        from gazeqwen_edge.calibration.scanpath import OnlineScanpath, ScanpathBuilder

        mapper = GazeMapper(
            camera_for(self.source, (width, height)), FrameTransform.identity(width, height), self.offset
        )
        origin = self.origin_ns or 0
        if self._use_source_fixations:
            self.scanpath = ScanpathBuilder(mapper, origin_ns=origin, max_age_s=self._keep_s())
        else:
            self.scanpath = OnlineScanpath(mapper, origin_ns=origin, max_age_s=self._keep_s())

    def _keep_s(self) -> float:
        return (self.config.window_s or 600.0) + 30.0

    def _rows(self, t_ns: int) -> np.ndarray:
        """Scanpath rows known at t_ns (call with _scan_lock held)."""
        if self.scanpath is None:
            return np.zeros((0, 4), np.float32)
        if self._use_source_fixations:
            return self.scanpath.rows(t_ns)
        return self.scanpath.rows_at(t_ns)

    def _settles(self) -> bool:
        """Whether a question asked now has its fixations read again once the gaze has run past its time
        (gaze_settle; only the detector's: a source's own fixations are reported when they end). Call with _scan_lock
        held."""
        return (
            self.config.gaze_settle
            and self.scanpath is not None
            and not self._use_source_fixations
            and not self._gaze_ended
        )

    def _settle_questions(self, final: bool = False) -> None:
        """Give each waiting question the fixations up to its time as known now (OnlineScanpath.rows_until), once
        the gaze has run `settle_ns` past it (`final`: the gaze has ended; all of them). Call with _scan_lock held."""
        if not self._unsettled:
            return
        now = self.scanpath.now_ns
        keep = []
        for q, ready in self._unsettled:
            if not final and (now is None or q.t_ns + self.scanpath.settle_ns > now):
                keep.append((q, ready))
                continue
            q.meta["_rows"] = self.scanpath.rows_until(q.t_ns)
            ready.set()
        self._unsettled = keep

    def _prepare_view(self, q: Question) -> None:
        """The model worker, before a question waits for its gaze to settle: run its question view's encoders
        (VideoStream.prepare_view), which need no gaze, so the wait hides them (the demo profile: time to first token
        233 ms with the settle, the view's encoders after the wait). Only for a question that will wait and will
        be answered on a view; a failure here leaves the view to do it (and to report it)."""
        ready, tail = q.meta.get("_gaze_ready"), q.meta.get("_tail")
        if (
            ready is None
            or ready.is_set()
            or tail is None
            or not self.config.question_view
            or self.stream is None
            or self.gq.regime == "reference"
            or q.meta.get("_late")
            or (not q.options and parse_command(q.text) is not None)
        ):
            return
        try:
            q.meta["_view"] = self.stream.prepare_view(*tail)
        except Exception:  # noqa: BLE001 - the view itself tries again and reports what fails
            q.meta.pop("_view", None)

    def _wait_for_gaze(self, q: Question) -> None:
        """The model worker: wait until the question's fixations have settled (lockstep: the ingest gets there; live:
        at most settle_wait_s, then the question keeps the fixations known at its time)."""
        ready = q.meta.get("_gaze_ready")
        if ready is None:
            return
        if not ready.is_set():
            with self.gq.timer.stage("gaze_settle"):
                ready.wait(60.0 if self.config.lockstep else self.config.settle_wait_s)
        with self._scan_lock:  # (not settled: the gaze did not come, a stalled stream; what was known at its time)
            self._unsettled = [(x, e) for x, e in self._unsettled if x is not q]
            del q.meta["_gaze_ready"]

    def _records(self):
        src = self.source
        from gazeqwen_edge.device.pacing import paced

        live = src.end_ns is None and not hasattr(src, "gaze_arrays")
        it = (
            src.records(reorder_window_s=self.config.reorder_window_s) if live and _takes_window(src) else src.records()
        )
        return it if live else paced(it, speed=self.speed)

    def _ingest(self) -> None:
        cfg = self.config
        period_ns = int(round(1e9 / cfg.fps))
        next_frame_ns = None
        frame_index = 0
        n_keep = (self.gq.video_encoder.n_frames if self.gq.video_encoder is not None else 0) + 2 * cfg.chunk_steps
        self._pending: list[tuple[int, np.ndarray, float]] = []  # model frames not yet handed to the model
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=max(n_keep, 2))  # for the V-JEPA windows
        timer = self.gq.timer
        # a live source's clock (the phone's, as its records are stamped): now - a record's time stamp is how long
        # the record took from the device's sensor to this session's buffers (network, decoding, the client's queues)
        now = getattr(self.source, "now_ns", None)
        device_now = now if callable(now) and self.source.end_ns is None else None
        try:
            if self.audio_input is not None and self.voice is not None:
                try:
                    self.audio_input.start(self._push_voice)
                except Exception as e:  # noqa: BLE001 - typed questions and the video go on without it
                    self.notice("mic_failed", f"spoken questions from the microphone are off ({e})", None)
                    self.audio_input = None
            for r in self._records():
                if self._stop.is_set():
                    break
                if self.origin_ns is None:
                    self.origin_ns = r.ts_ns
                self.now_ns = r.ts_ns if self.now_ns is None else max(self.now_ns, r.ts_ns)
                kind = type(r).__name__
                self.stats.records[kind] = self.stats.records.get(kind, 0) + 1
                if self.recorder is not None:
                    if self._stop.is_set():
                        break
                    self.recorder.write(r)
                if self.scanpath is None and (self.source.scene_size or isinstance(r, GazeSample | SceneFrame)):
                    size = self.source.scene_size or ((r.width, r.height) if isinstance(r, SceneFrame) else None)
                    self._setup_scanpath(*(size or (1600, 1200)))
                if isinstance(r, Notice):
                    self._emit("notice", r.kind, r.message, self.t_s(r.ts_ns))
                    if r.kind == "sensor_missing" and ("scene" in r.message or "world" in r.message):
                        self._no_scene_video = True
                elif self.scanpath is not None:
                    t0 = time.perf_counter()
                    with self._scan_lock:
                        if self._use_source_fixations:
                            if isinstance(r, Fixation):
                                self.scanpath.add(r)
                        else:
                            self.scanpath.push_record(r)
                            self._settle_questions()
                        fixation_check = self._new_fixation(r)
                    if isinstance(r, GazeSample):
                        timer.add("fixation_detection", time.perf_counter() - t0)
                    if fixation_check:  # on the chunks so far (no flush: --chunk keeps its length)
                        self._submit_watch_check(r.ts_ns)
                if device_now is not None and isinstance(r, GazeSample | SceneFrame):
                    lag_s = (device_now() - r.ts_ns) / 1e9
                    if 0 <= lag_s < 60:  # a clock step or a replayed record is not a latency
                        timer.add(
                            "device_to_buffer_gaze" if isinstance(r, GazeSample) else "device_to_buffer_scene", lag_s
                        )
                if self.voice is not None and self.audio_input is None and isinstance(r, AudioChunk):
                    self._push_voice(r)
                if isinstance(r, SceneFrame) and (next_frame_ns is None or r.ts_ns >= next_frame_ns - period_ns // 4):
                    base = r.ts_ns if next_frame_ns is None or r.ts_ns - next_frame_ns > period_ns else next_frame_ns
                    next_frame_ns = base + period_ns
                    self._pending.append((frame_index, r.rgb, self.t_s(r.ts_ns)))
                    self._ring.append((frame_index, r.rgb))
                    self._newest_frame = (frame_index, r.rgb, self.t_s(r.ts_ns))
                    frame_index += 1
                    self.stats.model_frames += 1
                    if len(self._pending) == 2 * cfg.chunk_steps:
                        self._flush_pending(r.ts_ns)
                if self._flush_requested.is_set():  # a live question: hand over the whole steps held so far
                    self._flush_requested.clear()
                    self._flush_pending(r.ts_ns)
                self._ask_due(r.ts_ns)
        finally:
            if self.scanpath is not None and not self._use_source_fixations:
                with self._scan_lock:
                    self.scanpath.flush()
                    self._gaze_ended = True
                    self._settle_questions(final=True)
            self.stats.source_dropped = int(getattr(self.source, "dropped", 0) or 0)
            if self.audio_input is not None:  # no microphone block may reach the voice input after it closes
                try:
                    self.audio_input.stop()
                except Exception as e:  # noqa: BLE001
                    self.notice("mic_failed", f"the microphone did not stop cleanly ({type(e).__name__}: {e})", None)
            if self.voice is not None:  # the speech still open and still being recognised becomes questions first
                try:
                    self.voice.close(timeout=2.0 if self._stop.is_set() else 120.0)
                except Exception as e:  # noqa: BLE001 - the session's answers matter more than its voice input
                    self.notice("voice_failed", f"spoken questions stopped ({type(e).__name__}: {e})", self.now_ns)
            if not self._stop.is_set():
                self._flush_pending(self.now_ns or 0)  # the last whole steps, however short the last chunk
                self._ask_due(None)  # questions past the end of the source
            with self._cond:
                self._work.append(_END)
                self._cond.notify_all()

    def _ask_due(self, t_ns: int | None) -> None:
        while self.scheduled and (
            t_ns is None or self.origin_ns is not None and self.origin_ns + self.scheduled[0].t_s * 1e9 <= t_ns
        ):
            self._flush_pending(t_ns if t_ns is not None else (self.now_ns or 0))  # it sees every whole step so far
            s = self.scheduled.popleft()
            when = None if self.origin_ns is None else self.origin_ns + int(round(s.t_s * 1e9))
            meta = dict(s.meta)
            if t_ns is None and self.now_ns is not None and when is not None and when > self.now_ns + 1_000_000_000:
                end_s = self.t_s(self.now_ns)
                meta["_late"] = True
                meta["late"] = f"asked at {s.t_s:.1f} s, after the source ended at {end_s:.1f} s: no video of that time"
            try:
                self.ask(s.text, s.options, when, source="file", meta=meta)
            except InputError as e:  # one question that cannot be asked must not end the session (the file's
                # lines were checked when it was read; a ScheduledQuestion built in code was not)
                self.notice("bad_question", f"question at {s.t_s:g} s not asked: {e.message}", when)

    def _flush_pending(self, t_ns: int) -> None:
        """Hand the whole temporal steps held in `_pending` to the model as one chunk (a shorter one than chunk_s
        when a question or the end of the source comes first); an odd frame stays for the next step."""
        n = len(self._pending) // 2 * 2
        if n:
            chunk, self._pending = self._pending[:n], self._pending[n:]
            self._submit_chunk(chunk, list(self._ring), t_ns)

    def _new_fixation(self, r) -> bool:
        """Whether record `r` made a new fixation known to the session and the watches are to be checked at it
        (watch_checks "fixation" / "both", some watch set): the detector's fixation in progress once it has lasted
        its minimum duration, or a source's fixation record. Call with _scan_lock held, after `r` was pushed."""
        if self.config.watch_checks == "chunk" or not len(self.watches):
            return False
        if self._use_source_fixations:
            start = r.start_ns if isinstance(r, Fixation) else None
        else:
            ongoing = self.scanpath.detector.ongoing() if isinstance(r, GazeSample) else None
            start = None if ongoing is None else ongoing.start_ns
        if start is None or start == self._checked_fixation_ns:
            return False
        self._checked_fixation_ns = start
        return True

    def _tail_at(self, t_ns: int) -> tuple[int, np.ndarray, float] | None:
        """The newest model frame (index, rgb, t_s), for a view of the video ending at it, when it is not after `t_ns`
        (a question's or a fixation check's time; 50 ms of slack); None otherwise or before any frame."""
        newest = self._newest_frame  # set by the ingest thread, read once here
        if newest is not None and self.origin_ns is not None and newest[2] <= self.t_s(t_ns) + 0.05:
            return newest
        return None

    @contextmanager
    def _video_brought_up(self, tail, rows, prepared=None):
        """The stream's video brought up to a question or a fixation check for the block: a view ending at `tail`
        (VideoStream.question_view, `prepared` its encodings) where there is one, else the newest chunks' gaze
        refreshed with the scanpath `rows` (VideoStream.refresh_gaze), as the config allows."""
        view = nullcontext(False)
        if tail is not None and self.config.question_view:
            view = self.stream.question_view(*tail, rows, prepared=prepared)
        with view as on:
            if not on and self.config.gaze_refresh:
                self.stream.refresh_gaze(rows)
            yield

    def _submit_watch_check(self, t_ns: int) -> None:
        """Queue a check of the watches at `t_ns` (a new fixation), after the chunks already queued. Live, a check
        still waiting is dropped for the newer one (its checks counted as skipped): the newest fixation matters."""
        with self._scan_lock:
            rows = self._rows(t_ns)
        check = _WatchCheck(t_ns, rows, self._tail_at(t_ns))
        with self._cond:
            if not self.config.lockstep:
                for i, item in enumerate(self._work):
                    if isinstance(item, _WatchCheck):
                        del self._work[i]
                        self.stats.watch_checks_skipped += len(self.watches)
                        break
            self._work.append(check)
            self._cond.notify_all()

    def _submit_chunk(self, pending, window, t_ns: int) -> None:
        first = pending[0][0]
        with self._scan_lock:
            rows = self._rows(t_ns)
        job = _ChunkJob(
            first // 2,
            np.stack([f for _, f, _ in pending]),
            np.array([t for _, _, t in pending], dtype=np.float64),
            rows,
            window,
        )
        with self._cond:
            if self.config.lockstep:  # (not while a question waits for the gaze this ingest is about to read)
                while (
                    self._n_pending_chunks >= self.config.max_pending_chunks
                    and not self._stop.is_set()
                    and not self._unsettled
                ):
                    self._cond.wait(0.1)
            elif self._n_pending_chunks >= self.config.max_pending_chunks:
                for i, item in enumerate(self._work):  # skip the oldest waiting chunk
                    if isinstance(item, _ChunkJob):
                        del self._work[i]
                        self._n_pending_chunks -= 1
                        self.stats.chunks_skipped += 1
                        break
                if self.stats.chunks_skipped in (1, 10, 100) or self.stats.chunks_skipped % 1000 == 0:
                    self.notice(
                        "chunks_skipped",
                        f"the model is behind real time: {self.stats.chunks_skipped} chunk(s) skipped so far",
                        t_ns,
                    )
            self._work.append(job)
            self._n_pending_chunks += 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ model worker thread
    def _take(self, idle_s: float | None = None):
        """The next work item; None after `idle_s` seconds without one (None: wait for one)."""
        deadline = None if idle_s is None else time.monotonic() + idle_s
        with self._cond:
            while not self._work:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self._cond.wait(0.1)
            item = self._work.popleft()
            if isinstance(item, _ChunkJob):
                self._n_pending_chunks -= 1
                self._cond.notify_all()
            return item

    def _worker(self) -> None:
        while True:
            item = self._take(idle_s=0.2 if self._deferred else None)
            if item is None or item is _END or isinstance(item, _ChunkJob):
                self._answer_deferred(final=item is _END)
            if item is _END:  # the source ended or the session stops: answer the questions still queued, then leave
                with self._cond:
                    rest = [x for x in self._work if isinstance(x, Question)]
                    self._work.clear()
                for q in rest:
                    self._answer(q)
                return
            if isinstance(item, _ChunkJob):
                if not self._stop.is_set():  # stopping: no more video, only the questions already asked
                    self._prefill_guarded(item)
                    self._answer_deferred()
            elif isinstance(item, _WatchCheck):
                if not self._stop.is_set():
                    before = self.gq.timer.totals()
                    self._check_watches_at(item)
                    self._log_timings(before)
            elif isinstance(item, Question):
                if self._should_wait_for_video(item):
                    self._deferred.append((time.monotonic() + self.config.first_video_wait_s, item))
                else:
                    self._answer(item)

    def _has_video(self) -> bool:
        return self.stream is not None if self.gq.regime != "reference" else bool(self._history)

    def _should_wait_for_video(self, q: Question) -> bool:
        """A live question asked before any video waits (up to first_video_wait_s) for the first chunk; a replayed
        one does not (it must not see video from after its time), nor one on a source without scene video."""
        return (
            not self.config.lockstep
            and not self._has_video()
            and not self._no_scene_video
            and not self._ingest_done.is_set()
            and not self._stop.is_set()
        )

    def _answer_deferred(self, final: bool = False) -> None:
        """Answer the questions that waited for the first video, once it is there (or when their wait is over)."""
        now = time.monotonic()
        keep = []
        for deadline, q in self._deferred:
            if final or self._has_video() or now >= deadline or self._no_scene_video:
                self._answer(q)
            else:
                keep.append((deadline, q))
        self._deferred = keep

    def _prefill_guarded(self, job: _ChunkJob) -> None:
        """Prefill a chunk; a failure (e.g. out of memory) skips that chunk with a notice instead of ending the
        session."""
        before = self.gq.timer.totals()
        try:
            self._prefill(job)
        except Exception as e:  # noqa: BLE001 - the session goes on with the next chunk
            self.stats.chunks_skipped += 1
            self.notice("chunk_failed", f"a video chunk could not be prefilled ({type(e).__name__}: {e})", self.now_ns)
        else:
            self._check_watches(job)
        self._log_timings(before)

    def _behind(self) -> bool:
        """Whether chunks wait for the model (live; never in lockstep): then work beyond the video is skipped."""
        with self._cond:
            return self._n_pending_chunks > 0 and not self.config.lockstep

    def _watches_to_check(self) -> list | None:
        """The watches to check now in round-robin order, or None when none can be: none set, no video prefilled yet
        (a fixation before the first chunk), a model that cannot check them (one notice), or chunks waiting for the
        model (the video comes first: their checks are counted as skipped)."""
        if not len(self.watches):
            return None
        if self.gq.regime != "reference" and self.stream is None:
            self.stats.watch_checks_skipped += len(self.watches)
            return None
        if self.gq.regime == "reference":
            if not self._watch_notice:
                self._watch_notice = True
                self.notice("watch_unsupported", "watches need a streaming (stream-regime) model", self.now_ns)
            return None
        watches = self.watches.active()
        if self._behind() or self._watch_allowance() <= 0:
            self.stats.watch_checks_skipped += len(watches)
            return None
        return watches

    def _watch_allowance(self, spent_s: float = 0.0) -> float:
        """Live (not lockstep): the seconds of model time watch checks may take now, after taking `spent_s` off. The
        allowance fills at `watch_budget` s per s of wall time up to `watch_budget` x chunk_used_s, so that all the
        checks together (after chunks and at fixations) take at most about that share of the model's time, however
        many fixations come: the video keeps the rest. Lockstep: unlimited (inf)."""
        if self.config.lockstep:
            return math.inf
        now = time.monotonic()
        cap = self.config.watch_budget * self.config.chunk_used_s
        if self._watch_allowance_at is not None:
            gained = (now - self._watch_allowance_at) * self.config.watch_budget
            self._watch_allowance_s = min(cap, self._watch_allowance_s + gained)
        self._watch_allowance_at = now
        self._watch_allowance_s -= spent_s
        return self._watch_allowance_s

    def _check_watches(self, job: _ChunkJob) -> None:
        """Score every watch on the video so far (the chunk just prefilled), within the budget, and fire alerts
        (watch_checks "chunk" / "both")."""
        if self.config.watch_checks == "fixation":
            return
        watches = self._watches_to_check()
        if watches:
            t0 = time.monotonic()
            budget_s = self.config.watch_budget * len(job.frames) / self.config.fps
            self._score_watches(watches, float(job.times_s[-1]), budget_s)
            self._watch_allowance(time.monotonic() - t0)

    def _check_watches_at(self, check: _WatchCheck) -> None:
        """Score every watch at a new fixation: the video brought up to the check as for a question (a view ending
        at the newest model frame, else the newest chunks' gaze refreshed with the rows known at the check), within
        the budget of one temporal step, and fire alerts."""
        watches = self._watches_to_check()
        if not watches:
            return
        t0 = time.monotonic()
        try:
            with self._video_brought_up(check.tail, check.scanpath):
                budget_s = self.config.watch_budget * 2 / self.config.fps
                self._score_watches(watches, self.t_s(check.t_ns), budget_s)
        except Exception as e:  # noqa: BLE001 - a failed check must not end the session
            self.notice("watch_failed", f"the watches could not be checked ({type(e).__name__}: {e})", check.t_ns)
            self.stream.cut_back()
        self._watch_allowance(time.monotonic() - t0)  # the view's time too

    def _score_watches(self, watches: list, t_s: float, budget_s: float) -> None:
        """Score `watches` on the video as it stands (t_s: the check's video time, s from the origin), until the
        scoring has taken `budget_s` (live; at least one is scored), and fire the alerts."""
        t0 = time.perf_counter()
        t_ns = (self.origin_ns or 0) + int(round(t_s * 1e9))
        for i, w in enumerate(watches):
            if not self.config.lockstep and i and time.perf_counter() - t0 >= budget_s:
                self.stats.watch_checks_skipped += len(watches) - i
                break
            try:
                with self.gq.timer.stage("watch_check"):
                    score = watch_score(self.stream, w, self.config.prompt)
            except Exception as e:  # noqa: BLE001 - a failed check must not end the session
                self.notice("watch_failed", f"watch '{w.target}' could not be checked ({type(e).__name__}: {e})", t_ns)
                self.stream.cut_back()
                continue
            self.stats.watch_checks += 1
            if self.watches.update(w, score, t_s):
                self.stats.alerts += 1
                alert = Alert(w.id, w.target, round(t_s, 3), t_ns, round(score, 5))
                self._emit("alert", alert)
                if self.recorder is not None:
                    try:
                        self.recorder.write(Event(t_ns, "alert", w.target))
                    except RuntimeError:
                        pass

    def _log_timings(self, before: dict[str, float]) -> dict[str, float]:
        """Stage times spent since `before` (a timer snapshot), in ms; also written to the session's timings.csv."""
        after = self.gq.timer.totals()
        spent = {k: (v - before.get(k, 0.0)) for k, v in after.items() if v != before.get(k) and k not in INGEST_STAGES}
        if self.recorder is not None:
            for stage, seconds in spent.items():
                try:
                    self.recorder.write_timing(stage, seconds)
                except RuntimeError:  # the recorder closed under a stopping session
                    break
        return {k: round(v * 1e3, 3) for k, v in spent.items()}

    def _prefill(self, job: _ChunkJob) -> None:
        if self.gq.regime == "reference":
            keep = (self.config.window_s or 600.0) * self.config.fps
            for f, t in zip(job.frames, job.times_s, strict=True):
                self._history.append((f, float(t)))
            while len(self._history) > keep:
                self._history.popleft()
            self.stats.chunks_prefilled += 1
            return
        if self.stream is None:
            self.stream = VideoStream(
                self.gq,
                job.frames.shape[1:3],
                self.config.fps,
                self.config.window_s,
                # the newest chunks keep their inputs for either way of bringing them up to a question
                refresh_chunks=REFRESH_CHUNKS if self.config.gaze_refresh or self.config.question_view else 0,
            )
        # watches check right after this chunk: the chunks before it first take the gaze known now (one chunk
        # prefill more at most), unless chunks wait for the model (the video comes first, as for the checks)
        refresh = self.config.gaze_refresh and len(self.watches) > 0 and not self._behind()
        self.stream.prefill_steps(job.frames, job.times_s, job.first_step, job.scanpath, job.window, refresh=refresh)
        self.stats.chunks_prefilled += 1

    def _answer(self, q: Question) -> None:
        started = time.perf_counter()
        before = self.gq.timer.totals()
        self._prepare_view(q)
        self._wait_for_gaze(q)
        with self.gq.timer.stage("question_intake"):  # the answer record started, the question told to the sinks
            rows = q.meta.pop("_rows", np.zeros((0, 4), np.float32))
            tail = q.meta.pop("_tail", None)
            prepared = q.meta.pop("_view", None)
            t_s = self.t_s(q.t_ns) if self.origin_ns is not None else 0.0
            rec = AnswerRecord(
                q.id, q.text, round(t_s or 0.0, 3), q.t_ns, q.source, options=q.options, meta=dict(q.meta)
            )
            rec.fixations = [[round(float(v), 4) for v in row] for row in rows[-self.config.context_fixations :]]
            rec.queued_ms = round((started - q.arrived_s) * 1e3, 3) if q.arrived_s else None
            self._emit("question", q, t_s or 0.0)
        try:
            if q.meta.pop("_late", None):
                raise InputError(None, q.meta.get("late", "asked after the source ended"))
            command = parse_command(q.text) if not q.options else None
            if command is not None:
                self._watch_command(q, rec, *command)
            elif self.gq.regime == "reference":
                self._answer_reference(q, rows, rec)
            else:
                self._answer_stream(q, rows, rec, tail, prepared)
            self.stats.answered += 1
        except GazeQwenError as e:
            rec.error = e.message
            self.stats.failed += 1
        except Exception as e:  # noqa: BLE001 - one question's failure (e.g. out of memory) must not end the session
            rec.error = f"could not be answered ({type(e).__name__}: {e})"
            self.stats.failed += 1
            if self.stream is not None:
                self.stream.cut_back()
        rec.stages_ms = self._log_timings(before)
        # the model work the question waited for (model stages, timer.stage, only), worked out after the answer so
        # that the first token does not wait for it
        waited = self.gq.timer.spent_between(q.arrived_s, started) if q.arrived_s else {}
        rec.queue_stages_ms = {k: round(v * 1e3, 3) for k, v in waited.items()}
        if self.recorder is not None:
            # the question's event is written with its answer, not before it: the recorder's lock is often held by
            # the ingest thread encoding a scene frame (a few ms), which the profile showed as a third of the time
            # to first token of the demo model
            try:
                self.recorder.write(Event(q.t_ns, "question", q.text))
                self.recorder.write(Event(q.t_ns, "answer", rec.answer if not rec.error else f"error: {rec.error}"))
            except RuntimeError:  # the recorder closed under a stopping session
                pass
        self._emit("answered", rec)

    def _watch_command(self, q: Question, rec: AnswerRecord, kind: str, target: str) -> None:
        """ "Tell me when I look at X" / "Stop watching X": the watch is added or removed, the answer says so."""
        if kind == "add":
            try:
                w = self.watches.add(target)
            except ValueError as e:  # a control character, as --watch refuses it (watches.check_target)
                raise InputError(None, str(e), hint="say or type what to watch in plain words") from None
            rec.answer = f"I'll tell you when you look at {w.target}."
            if unknown_to_scene_models(self.gq, w.target):
                rec.answer += f" But {SCENE_VOCABULARY_NOTE.format(target=w.target)}."
        else:
            if not target:
                raise InputError(None, "which watch to stop was not said", hint="say or type: stop watching the stove")
            w = self.watches.remove(target)
            rec.answer = f"Stopped watching {w.target}." if w is not None else f"I wasn't watching {target}."
        rec.meta["watch"] = {"command": kind, "target": target}
        self._emit("piece", q, rec.answer)

    def _no_video_error(self) -> InputError:
        if self._no_scene_video:
            return InputError(None, "this source has no scene video (gaze only): questions need the scene camera")
        if self.stats.model_frames:  # frames came, but not a whole temporal step of them yet
            step_s = 2 / self.config.fps
            return InputError(
                None,
                f"no whole temporal step of video yet: a step is two model frames, {step_s:g} s at fps "
                f"{self.config.fps:g}",
                hint="ask again later" + (", or use a higher --fps" if step_s > 1 else ""),
            )
        return InputError(
            None, "no scene video has arrived yet", hint="ask again once the scene camera delivers frames"
        )

    def _answer_stream(self, q: Question, rows, rec: AnswerRecord, tail=None, prepared=None) -> None:
        """Answer on the stream. The video is first brought up to the question: with a model frame newer than the
        cache's last one (`tail`: the odd frame held for the next step), the newest steps are re-paired to end at it
        (VideoStream.question_view, with the encodings `prepared` while the question waited for its gaze; gaze
        re-looked-up with the question's scanpath `rows`); otherwise the newest chunks take the gaze known at the
        question (VideoStream.refresh_gaze)."""
        if self.stream is None:
            raise self._no_video_error()
        with self._video_brought_up(tail, rows, prepared):
            rec.context_tokens = self.stream.video_end
            self._answer_with(q, rec, self.stream.score_mc, self.stream.answer, self.stream.video_span_s)

    def _answer_reference(self, q: Question, rows, rec: AnswerRecord) -> None:
        """Re-encode the recent frames as one clip, as the released code does (reference-regime checkpoints)."""
        if not self._history:
            raise self._no_video_error()
        frames = np.stack([f for f, _ in self._history])
        t_first = self._history[0][1]
        clip_rows = rows.copy()
        if len(clip_rows):
            clip_rows[:, 2] -= t_first
            clip_rows = clip_rows[(clip_rows[:, 2] >= 0)]  # the released code keeps fixations whose midpoint is in it
        video = Video(frames, fps=self.config.fps)
        self._answer_with(
            q,
            rec,
            lambda text, options, prompt: self.gq.score_mc(video, clip_rows, text, options, prompt),
            lambda text, n, reply, stop: self.gq.answer(video, clip_rows, text, n, reply=reply, stop=stop),
            (t_first, self._history[-1][1]),
        )

    def _answer_with(self, q: Question, rec: AnswerRecord, score, generate, span) -> None:
        """Fill `rec` from the model: `score(text, options, prompt)` -> {letter: score} under the model's
        mc_protocol (letter logits or option-text log-likelihoods) for a multiple-choice question, else the pieces of `generate(text, max_new_tokens, reply, stop)` streamed to the sinks; `span` is
        the (first, last) second of video in context. Time to first token counts from the question's arrival
        (`q.arrived_s`), the wait for the model included."""
        t0 = q.arrived_s or time.perf_counter()
        if q.options:
            scores = score(q.text, q.options, self.config.prompt)
            rec.ttft_ms = round((time.perf_counter() - t0) * 1e3, 3)
            rec.scores = {k: round(v, 5) for k, v in scores.items()}
            rec.answer = max(scores, key=scores.get)
            self._emit("piece", q, rec.answer)
        else:
            reply = Reply()
            started = time.perf_counter()  # reply.ttft_s counts from here (the generator's first step)
            for piece in generate(q.text, self.config.max_new_tokens, reply, self._stop.is_set):
                self._emit("piece", q, piece)
            rec.answer, rec.n_tokens = reply.text, reply.n_tokens
            rec.ttft_ms = None if reply.ttft_s is None else round((started - t0 + reply.ttft_s) * 1e3, 3)
        rec.video_s = [round(span[0], 3), round(span[1], 3)]
