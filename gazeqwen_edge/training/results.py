"""Per-item evaluation results, the benchmark's metrics, a resumable results log and the results files.

Metric (REFERENCE.md section 2, StreamGaze): accuracy per task; overall = the mean of the task accuracies (each task
weighs the same, whatever its item count) over the benchmark tasks (TASKS) present. A proactive task's items are its
test points (one Yes/No decision each), so its accuracy is counted over test points; precision, recall and F1 are
computed over the same test points with positive = the alert should fire (answer "A" = Yes). Control tasks
(CONTROL_TASKS) are summarised on their own and never enter the overall. An item is correct only when it has no error
and its prediction equals its answer: a missing prediction (None) or an error counts as wrong, and as "did not fire".

`summarise` schema (stable key names; every rate is a percentage 0-100, None where undefined):

    {
      "n_items": int, "errors": int,                       # all items, items with an error
      "tasks": {task_type: TASK, ...},                     # benchmark tasks present, in TASKS order
      "overall": {"accuracy": float|None, "n_tasks": int, "n": int, "correct": int},
      "control": {"tasks": {task_type: TASK, ...}, "accuracy": float|None, "n_tasks": int, "n": int, "correct": int},
      "proactive": {"tasks": {task_type: PRF, ...}, "pooled": PRF|None},
    }
    TASK = {"task": short name, "n": int, "correct": int, "errors": int, "accuracy": float}
    PRF  = {"task": short name or "pooled", "n": int, "tp": int, "fp": int, "fn": int, "tn": int,
            "precision": float|None, "recall": float|None, "f1": float|None}

precision = tp / (tp + fp) (None without predicted alerts), recall = tp / (tp + fn) (None without expected alerts),
F1 = 2 tp / (2 tp + fp + fn) (their harmonic mean; 0 when tp = 0; None for no test points).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gazeqwen_edge.errors import InputError, sync, write_bytes_atomic, write_error
from gazeqwen_edge.training.tasks import CONTROL_TASKS, TASKS, QAItem, is_proactive, task_short

SCHEMA = 1
HEADER_KEYS = ("model", "protocol", "variant", "qa_file")  # what a resumed log must agree on
# what it must also agree on when this run's header has it (a log without it was written by another model version)
# (clip: the frames and scanpath rule each item is scored on, ClipConfig's fields; a log written before it was a field
# holds them as ClipConfig.key()'s JSON list, which still matches)
OPTIONAL_HEADER_KEYS = ("gaze_rules", "clip")
ALERT = "A"  # a proactive test point's "Yes": the alert should fire (tasks.YES_NO)


@dataclass
class ItemResult:
    """The outcome of one QAItem.

    item_id, task_type, answer (the true letter) and video (its path as a string) come from the item; time_s: when
    the question is asked (video seconds, QAItem.time_s); test_point: a proactive item's test point index (None
    otherwise). prediction: the chosen letter, None when none could be read (generation) or the item failed.
    correct: prediction == answer with no error (summarise recomputes it from those fields). scores: letter -> score
    (logit or log-likelihood) under the scoring protocol, None under generation. text: the generated text ("" when
    scoring). error: why the item failed (it then counts as wrong), None otherwise. elapsed_s: wall-clock seconds
    spent on the item (None if not measured).
    """

    item_id: str
    task_type: str
    answer: str
    prediction: str | None
    correct: bool
    scores: dict[str, float] | None = None
    text: str = ""
    test_point: int | None = None
    time_s: float = 0.0
    video: str = ""
    error: str | None = None
    elapsed_s: float | None = None

    @classmethod
    def from_item(
        cls,
        item: QAItem,
        prediction: str | None,
        scores: Mapping[str, float] | None = None,
        text: str = "",
        error: str | None = None,
        elapsed_s: float | None = None,
    ) -> ItemResult:
        """The result of `item`, with `correct` computed (prediction == answer, no error)."""
        return cls(
            item_id=item.item_id,
            task_type=item.task_type,
            answer=item.answer,
            prediction=prediction,
            correct=error is None and prediction is not None and prediction == item.answer,
            scores=None if scores is None else {k: float(v) for k, v in scores.items()},
            text=text,
            test_point=item.test_point,
            time_s=float(item.time_s),
            video=str(item.video),
            error=error,
            elapsed_s=elapsed_s,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields (scores' values as floats)."""
        d = asdict(self)
        if d["scores"] is not None:
            d["scores"] = {str(k): float(v) for k, v in d["scores"].items()}
        return d

    @classmethod
    def from_json(cls, d: Any, where: str | None = None) -> ItemResult:
        """Inverse of to_json. Raises InputError (naming `where`) for a non-object, unknown or missing keys, or
        values of the wrong type."""
        if not isinstance(d, dict):
            raise InputError(where, f"an item result must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        missing = {"item_id", "task_type", "answer", "prediction", "correct"} - set(d)
        if unknown or missing:
            raise InputError(where, f"not an item result: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
        checks = {
            "item_id": (str,),
            "task_type": (str,),
            "answer": (str,),
            "prediction": (str, type(None)),
            "correct": (bool,),
            "scores": (dict, type(None)),
            "text": (str,),
            "test_point": (int, type(None)),
            "time_s": (int, float),
            "video": (str,),
            "error": (str, type(None)),
            "elapsed_s": (int, float, type(None)),
        }
        for k, v in d.items():
            if not isinstance(v, checks[k]) or (k == "test_point" and isinstance(v, bool)):
                raise InputError(where, f"item result field {k!r} has a value of the wrong type: {v!r}")
        out = cls(**d)
        if out.scores is not None:
            out.scores = {str(k): float(v) for k, v in out.scores.items()}
        return out


def _is_correct(r: ItemResult) -> bool:
    return r.error is None and r.prediction is not None and r.prediction == r.answer


def _pct(num: int, den: int) -> float | None:
    return None if den == 0 else 100.0 * num / den


def _mean(values: list[float]) -> float | None:
    return None if not values else math.fsum(values) / len(values)


def _task_block(task_type: str, rs: list[ItemResult]) -> dict[str, Any]:
    correct = sum(_is_correct(r) for r in rs)
    return {
        "task": task_short(task_type),
        "n": len(rs),
        "correct": correct,
        "errors": sum(r.error is not None for r in rs),
        "accuracy": _pct(correct, len(rs)),
    }


def _prf(name: str, rs: list[ItemResult]) -> dict[str, Any]:
    tp = fp = fn = tn = 0
    for r in rs:
        expected = r.answer == ALERT
        fired = r.error is None and r.prediction == ALERT  # None / an error: the alert did not fire
        tp += expected and fired
        fp += (not expected) and fired
        fn += expected and not fired
        tn += (not expected) and not fired
    return {
        "task": name,
        "n": len(rs),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": _pct(tp, tp + fp),
        "recall": _pct(tp, tp + fn),
        "f1": _pct(2 * tp, 2 * tp + fp + fn),
    }


def _group_summary(groups: dict[str, list[ItemResult]]) -> dict[str, Any]:
    tasks = {t: _task_block(t, rs) for t, rs in groups.items()}
    return {
        "tasks": tasks,
        "accuracy": _mean([b["accuracy"] for b in tasks.values()]),
        "n_tasks": len(tasks),
        "n": sum(b["n"] for b in tasks.values()),
        "correct": sum(b["correct"] for b in tasks.values()),
    }


def summarise(results: Iterable[ItemResult]) -> dict[str, Any]:
    """The metrics of a set of item results (schema in the module docstring): per-task accuracy, overall = mean of
    the benchmark tasks' accuracies, control tasks apart, proactive precision/recall/F1 per task and pooled.
    Raises InputError for a task_type that is neither in TASKS nor in CONTROL_TASKS."""
    rs = list(results)
    by_task: dict[str, list[ItemResult]] = {}
    for r in rs:
        if r.task_type not in TASKS and r.task_type not in CONTROL_TASKS:
            raise InputError(None, f"item {r.item_id!r} has an unknown task_type {r.task_type!r}")
        by_task.setdefault(r.task_type, []).append(r)
    bench = _group_summary({t: by_task[t] for t in TASKS if t in by_task})
    control = _group_summary({t: by_task[t] for t in CONTROL_TASKS if t in by_task})
    proactive = {t: by_task[t] for t in TASKS if t in by_task and is_proactive(t)}
    pooled = [r for v in proactive.values() for r in v]
    return {
        "n_items": len(rs),
        "errors": sum(r.error is not None for r in rs),
        "tasks": bench.pop("tasks"),
        "overall": bench,
        "control": control,
        "proactive": {
            "tasks": {t: _prf(task_short(t), v) for t, v in proactive.items()},
            "pooled": _prf("pooled", pooled) if pooled else None,
        },
    }


def _same(found: Any, wanted: Any) -> bool:
    """Whether a logged header value is this run's. A dict this run writes (the clip) also matches the JSON list of
    its values an older log wrote in its place (ClipConfig.key())."""
    if isinstance(found, str) and isinstance(wanted, dict):
        try:
            return json.loads(found) == list(wanted.values())
        except ValueError:
            return False
    return found == wanted


def _difference(key: str, found: Any, wanted: Any) -> str:
    """How header value `key` differs, for the refusal to resume: of two dicts (the clip) only the fields that differ
    ("clip stream_max_s: log has 2.0, this run 60.0"), else both values."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        fields = [f for f in {**found, **wanted} if found.get(f) != wanted.get(f)]
        return "; ".join(f"{key} {f}: log has {found.get(f)!r}, this run {wanted.get(f)!r}" for f in fields)
    return f"{key}: log has {found!r}, this run {wanted!r}"


def _md_value(v: Any) -> str:
    """A header value as results.md lists it: a dict as "key value, ...", a list as its items (or "none")."""
    if isinstance(v, dict):
        return ", ".join(f"{k} {_md_value(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(map(_md_value, v)) or "none"
    return str(v)


class ResultsLog:
    """A resumable per-item results log: JSONL, the first line a header record {"header": {...}}, then one
    ItemResult per line, flushed and fsync'd every `sync_every` items (and on close).

    A line counts only when its newline was written: a run killed mid-write leaves a truncated last line, which is
    ignored (that item is redone) and cut off when the log is opened again. The header holds at least HEADER_KEYS
    (model, protocol, variant, qa_file); resuming with a header that differs in any of them is refused, so results of
    different runs never mix. Pass canonical values (e.g. the QA file's resolved path).

    Use: `with ResultsLog(path).open(header) as log:` skip `log.done_ids()`, then `log.append(result)` per item.
    """

    def __init__(self, path: str | os.PathLike, sync_every: int = 1):
        if sync_every < 1:
            raise InputError(None, f"sync_every must be >= 1, got {sync_every}")
        self.path = Path(path)
        self.sync_every = sync_every
        self.header: dict[str, Any] | None = None
        self._fh = None
        self._pending = 0

    def _scan(self) -> tuple[dict[str, Any] | None, list[ItemResult], int]:
        """(header, item results, byte length of the complete lines). Missing or empty file -> (None, [], 0)."""
        if not self.path.exists():
            return None, [], 0
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise InputError(self.path, f"cannot read the results log ({e})") from e
        complete = data.rfind(b"\n") + 1  # bytes after the last newline: a line cut off by a kill
        header: dict[str, Any] | None = None
        results: list[ItemResult] = []
        for n, raw in enumerate(data[:complete].decode("utf-8", errors="replace").splitlines(), start=1):
            where = f"{self.path}:{n}"
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as e:
                raise InputError(
                    where,
                    f"corrupt line in the results log ({e})",
                    hint="delete the log to start the run afresh (its header is that line)"
                    if n == 1
                    else f"delete line {n} (that item is done again when the run resumes), not the whole log, which "
                    "holds every item finished",
                ) from e
            if n == 1:
                if not (isinstance(rec, dict) and set(rec) == {"header"} and isinstance(rec["header"], dict)):
                    raise InputError(
                        self.path,
                        "not a results log: the first line is not a header record",
                        hint="choose another path",
                    )
                header = rec["header"]
                continue
            results.append(ItemResult.from_json(rec, where))
        return header, results, complete

    @staticmethod
    def _check_header(header: Mapping[str, Any]) -> dict[str, Any]:
        missing = [k for k in HEADER_KEYS if k not in header]
        if missing:
            raise InputError(None, f"a results log header needs {', '.join(HEADER_KEYS)}; missing {missing}")
        return json.loads(json.dumps(dict(header), default=str))  # JSON-normalised (paths -> str)

    def _compare(self, found: dict[str, Any], wanted: dict[str, Any]) -> None:
        keys = [*HEADER_KEYS, *(k for k in OPTIONAL_HEADER_KEYS if k in wanted)]
        diff = [k for k in keys if not _same(found.get(k), wanted[k])]
        if diff:
            what = "; ".join(_difference(k, found.get(k), wanted[k]) for k in diff)
            raise InputError(
                self.path,
                f"the results log was written by another run ({what})",
                hint="use another output directory, or delete the log to start afresh",
            )

    def read(self, header: Mapping[str, Any] | None = None) -> list[ItemResult]:
        """The item results of the complete lines (a truncated last line ignored; an item logged twice: the last
        record). With `header`, first checks the log was written for the same HEADER_KEYS (InputError if not).
        A missing log -> []. Raises InputError for a corrupt line other than the last or a file that is no log."""
        found, results, _ = self._scan()
        if header is not None and found is not None:
            self._compare(found, self._check_header(header))
        return list({r.item_id: r for r in results}.values())

    def done_ids(self, header: Mapping[str, Any] | None = None) -> set[str]:
        """The item_ids already logged (complete lines only): the items a resumed run skips. `header` as in read."""
        return {r.item_id for r in self.read(header)}

    def open(self, header: Mapping[str, Any]) -> ResultsLog:
        """Open for appending: a new (or empty) log gets `header` as its first line; an existing one must have been
        written for the same HEADER_KEYS (InputError otherwise) and loses its truncated last line. Returns self."""
        wanted = self._check_header(header)
        found, _, complete = self._scan()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if found is None:
            complete = 0
        else:
            self._compare(found, wanted)
        try:
            fh = open(self.path, "r+b" if self.path.exists() else "wb")
            fh.truncate(complete)
            fh.seek(complete)
        except OSError as e:
            raise write_error(self.path, "the results log", e, resumable=True) from e
        self._fh = fh
        if found is None:  # (synced at once: a full disk shows before any item's work, not after it)
            self._put((json.dumps({"header": wanted}) + "\n").encode(), sync_now=True)
        self.header = wanted if found is None else found
        return self

    def append(self, result: ItemResult) -> None:
        """Log one item (one line); synced every `sync_every` items."""
        if self._fh is None:
            raise RuntimeError("ResultsLog.append before open")
        self._pending += 1
        sync_now = self._pending >= self.sync_every
        self._put((json.dumps(result.to_json()) + "\n").encode(), sync_now=sync_now)
        if sync_now:
            self._pending = 0

    def _put(self, data: bytes, sync_now: bool) -> None:
        """Write `data` (and sync when `sync_now`); a disk that refuses it raises errors.write_error naming the log
        (a buffered write's OSError names no file)."""
        try:
            self._fh.write(data)
            if sync_now:
                sync(self._fh)
        except OSError as e:
            raise write_error(self.path, "the results log", e, resumable=True) from e

    def close(self) -> None:
        """Sync and close (idempotent)."""
        if self._fh is not None:
            fh, self._fh, self._pending = self._fh, None, 0
            try:
                sync(fh)
            except OSError as e:
                raise write_error(self.path, "the results log", e, resumable=True) from e
            finally:
                try:
                    fh.close()
                except OSError:  # (what close would flush is what sync just failed on)
                    pass

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


RESERVED = ("schema", "n_items", "summary", "items")


def write_results(
    out_dir: str | os.PathLike, header: Mapping[str, Any], results: Iterable[ItemResult]
) -> tuple[Path, Path]:
    """Write `results.json` and `results.md` into out_dir (created; each file replaced atomically).

    results.json: {"schema": 1, the header's fields (model, protocol, variant, qa_file, ...; "created" = now in UTC
    ISO 8601 unless given), "n_items", "summary": summarise(results), "items": [ItemResult.to_json(), ...]}.
    results.md: the header as a list and markdown_table({variant: summary}). Returns (json path, md path).
    Raises InputError for a header using a reserved key (schema, n_items, summary, items), an unknown task type,
    or an output directory that cannot be written."""
    rs = list(results)
    clash = [k for k in RESERVED if k in header]
    if clash:
        raise InputError(None, f"results header may not use the reserved keys {clash}")
    head = json.loads(json.dumps(dict(header), default=str))
    head.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    summary = summarise(rs)
    doc = {"schema": SCHEMA, **head, "n_items": len(rs), "summary": summary, "items": [r.to_json() for r in rs]}
    out = Path(out_dir)
    json_path, md_path = out / "results.json", out / "results.md"
    variant = str(head.get("variant", "model"))
    lines = [f"# Results: {variant}", ""]
    lines += [f"- {k}: {_md_value(v)}" for k, v in head.items()]
    lines += [f"- items: {len(rs)} ({summary['errors']} with errors)", "", markdown_table({variant: summary})]
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(json_path, (json.dumps(doc, indent=1) + "\n").encode(), fsync=True)
        write_bytes_atomic(md_path, "\n".join(lines).encode(), fsync=True)
    except OSError as e:
        raise write_error(out, "the results", e, resumable=True) from e
    return json_path, md_path


def read_results(path: str | os.PathLike) -> tuple[dict[str, Any], list[ItemResult]]:
    """Read a results.json: (the document without "items", the items as ItemResults). Raises InputError for a
    missing or malformed file or another schema."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(p, f"cannot read the results file ({e})") from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("items"), list):
        raise InputError(p, f"not a results file of schema {SCHEMA}")
    items = [ItemResult.from_json(d, f"{p} item {i}") for i, d in enumerate(doc.pop("items"))]
    return doc, items


def _cell(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table padded to equal column widths (readable as plain text); the first `left` columns are
    left-aligned, the rest right-aligned."""
    widths = [max(3, *(len(r[i]) for r in [head, *rows])) for i in range(len(head))]  # a rule needs >= 3

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = "| " + " | ".join("-" * w if i < left else "-" * (w - 1) + ":" for i, w in enumerate(widths)) + " |"
    return "\n".join([line(head), rule, *(line(r) for r in rows)])


def markdown_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Variants side by side: one row per variant (summarise() dicts by variant name), one column per benchmark task
    present in any of them (short names, TASKS order), "Overall", then one column per control task present. Cells are
    accuracies in percent with one decimal, "-" where a variant lacks the task. When any variant has proactive test
    points, a second table lists precision / recall / F1 (percent) per variant and proactive task, and pooled."""
    tasks = [t for t in TASKS if any(t in s["tasks"] for s in summaries.values())]
    controls = [t for t in CONTROL_TASKS if any(t in s["control"]["tasks"] for s in summaries.values())]
    head = ["Variant", *(task_short(t) for t in tasks), "Overall", *(task_short(t) for t in controls)]
    rows = []
    for name, s in summaries.items():
        row = [name]
        row += [_cell(s["tasks"][t]["accuracy"]) if t in s["tasks"] else "-" for t in tasks]
        row.append(_cell(s["overall"]["accuracy"]))
        row += [_cell(s["control"]["tasks"][t]["accuracy"]) if t in s["control"]["tasks"] else "-" for t in controls]
        rows.append(row)
    text = _table(head, rows)
    prf_rows = []
    for name, s in summaries.items():
        blocks = [*s["proactive"]["tasks"].values(), s["proactive"]["pooled"]]
        for b in blocks:
            if b is not None:
                prf_rows.append(
                    [name, b["task"], str(b["n"]), _cell(b["precision"]), _cell(b["recall"]), _cell(b["f1"])]
                )
    if prf_rows:
        text += "\n\nProactive alerts (test points; positive = the alert should fire):\n\n"
        text += _table(["Variant", "Task", "n", "Precision", "Recall", "F1"], prf_rows, left=2)
    return text + "\n"
