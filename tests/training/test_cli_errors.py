"""Bad input to `train`, `eval`, `eval-table`: one `error:` line (and a hint), exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import cli


def _assert_user_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    assert err.count("error:") == 1, err
    for n in needles:
        assert n in " ".join(err.split()), err


@pytest.mark.parametrize("command", ["eval", "train"])
def test_out_that_is_a_file_or_inside_one_is_refused(capsys, tmp_path, command):
    qa = tmp_path / "qa.json"
    qa.write_text("[]")
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, _, err = cli(capsys, command, "--qa", qa, "--out", afile)
    _assert_user_error(rc, err, "is a file; give a directory")
    rc, _, err = cli(capsys, command, "--qa", qa, "--out", afile / "sub")
    _assert_user_error(rc, err, "is a file, not a directory")


@pytest.mark.parametrize(("command", "mine"), [("eval", "items.jsonl"), ("train", "metrics.jsonl")])
def test_out_holding_something_else_is_refused_and_an_earlier_run_is_not(capsys, tmp_path, command, mine):
    qa = tmp_path / "qa.json"
    qa.write_text("[]")
    other = tmp_path / "dataset"
    other.mkdir()
    (other / "train.json").write_text("[]")
    rc, _, err = cli(capsys, command, "--qa", qa, "--out", other)
    _assert_user_error(rc, err, "holds no earlier run of this command")
    (other / mine).write_text("")  # an earlier run's output: accepted (the command goes on to read --qa)
    rc, _, err = cli(capsys, command, "--qa", qa, "--out", other)
    assert "holds no earlier run" not in err


def test_eval_table_out_that_is_a_directory_or_inside_a_file_is_refused(capsys, tmp_path):
    res = tmp_path / "results.json"
    res.write_text(json.dumps({"schema": 1, "items": []}))
    rc, _, err = cli(capsys, "eval-table", res, "--out", tmp_path)
    _assert_user_error(rc, err, "is a directory; give a file name")
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, _, err = cli(capsys, "eval-table", res, "--out", afile / "table.md")
    _assert_user_error(rc, err, "is a file, not a directory")


def test_train_resume_on_other_items_or_another_model_is_refused(capsys, tmp_path):
    from tests.training.conftest import write_toy_set

    qa = write_toy_set(tmp_path / "toy", n_videos=2)
    fewer = qa.with_name("fewer.json")
    fewer.write_text(json.dumps(json.loads(qa.read_text())[:1]))
    out = tmp_path / "run"
    one_step = ["--out", out, "--max-steps", "1", "--epochs", "1", "--grad-accum", "1", "--max-pixels", "3136"]
    rc, out_text, err = cli(capsys, "train", "--qa", qa, *one_step)
    assert rc == 0, err
    records = [line for line in out_text.splitlines() if line.startswith("{")]
    assert any('"val_accuracy"' in r for r in records), out_text  # no validation items: null, not NaN (JSON)
    for r in records:
        json.loads(r, parse_constant=lambda c, r=r: pytest.fail(f"{c} in a metrics record: {r}"))
    rc, _, err = cli(capsys, "train", "--qa", fewer, *one_step)
    _assert_user_error(rc, err, "was written by a run on other training items", "the same --qa")
    rc, _, err = cli(capsys, "train", "--qa", qa, *one_step[:-2], "--model", "demo")  # (its own pixel budget)
    _assert_user_error(rc, err, "model (--model)")
    # a tiny model is rebuilt from the options on every run: another shape or gaze rule is another model (before:
    # a traceback from copying the weights, or a run trained on under two rules)
    rc, _, err = cli(capsys, "train", "--qa", qa, *one_step, "--step-fixations", "latest")
    _assert_user_error(rc, err, "other resampler settings (--gaze-encoding, --step-fixations, --gaze-mark)")
    rc, _, err = cli(capsys, "train", "--qa", qa, *one_step, "--gaze-mark")
    _assert_user_error(rc, err, "other resampler settings")
    rc, _, err = cli(capsys, "train", "--qa", qa, *one_step, "--tiny-llm", "2x32")
    _assert_user_error(rc, err, "LLM shape (--tiny-llm)", "and model options as that run")
    rc, _, err = cli(capsys, "train", "--qa", qa, *one_step, "--checkpoint", tmp_path / "nowhere")
    _assert_user_error(rc, err, "--model tiny builds a new model", "--model DIR")
    rc, _, err = cli(capsys, "train", "--qa", qa, "--out", tmp_path / "r2", "--model", "demo", "--max-pixels", "3136")
    _assert_user_error(rc, err, "--max-pixels sets a new tiny model's pixel budget; 'demo' keeps", "drop --max-pixels")
    rc, _, err = cli(capsys, "train", "--qa", qa, *one_step[:3], "2", *one_step[4:])  # same run, 2 steps: resumes
    assert rc == 0, err


def test_eval_table_out_on_a_full_disk_names_the_file_and_leaves_no_cut_table(capsys, tmp_path, monkeypatch):
    """Before: a plain write left a 0-byte table.md and an error line that named no file."""
    import builtins
    import io

    import gazeqwen_edge.errors as errors_module
    from tests.device.test_disk_full import FillingFile

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"schema": 1, "variant": "no_gaze", "model": "demo", "items": []}))

    def full(file, mode="r", *a, **kw):  # the disk takes 10 bytes of the table, then is full
        if str(file).endswith("table.md.tmp"):
            return io.BufferedWriter(FillingFile(Path(file), 10))
        return builtins.open(file, mode, *a, **kw)

    monkeypatch.setattr(errors_module, "open", full, raising=False)
    table = tmp_path / "table.md"
    rc, out, err = cli(capsys, "eval-table", run, "--out", table)
    assert rc == 3 and err.count("error:") == 1 and "Traceback" not in err, err
    assert f"cannot write the table ({table}): No space left on device" in " ".join(err.split()), err
    assert "| no_gaze" in out  # the table was shown all the same
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no cut table.md, no .tmp


def test_eval_table_keeps_one_row_per_run_when_runs_share_variant_and_model(capsys, tmp_path):
    doc = {"schema": 1, "variant": "no_gaze", "model": "demo", "items": []}
    runs = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(doc))
        runs.append(tmp_path / name)
    rc, out, err = cli(capsys, "eval-table", *runs)
    assert rc == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| no_gaze")]
    assert len(rows) == 3, out  # the third run's row replaced the second's
    rc, _, err = cli(capsys, "eval-table", runs[0], runs[0], runs[0])
    _assert_user_error(rc, err, "is given twice")


def test_dataset_synthetic_into_a_directory_that_cannot_be_created(capsys, tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    def read_only(self, *a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)  # as root, no permission bit stops a mkdir
    rc, _, err = cli(capsys, "dataset", "synthetic", tmp_path / "syn", "--videos", "3", "--duration", "8")
    assert rc == 3 and err.count("error:") == 1 and "Traceback" not in err, err  # the disk's state: a device error
    assert "cannot be created (Read-only file system)" in err and "remount it read-write" in err


def test_train_tasks_are_checked_before_loading_and_filter_the_items(capsys, tmp_path, monkeypatch):
    from gazeqwen_edge.cli.training import parse_tasks
    from gazeqwen_edge.errors import ConfigError
    from tests.training.conftest import write_toy_set

    assert parse_tasks("OI-E, gta,control_scene_object") == {
        "present_object_identification_easy",
        "proactive_gaze_triggered_alert",
        "control_scene_object",
    }
    assert parse_tasks(None) is None
    with pytest.raises(ConfigError):
        parse_tasks(" , ")
    rc, _, err = cli(capsys, "train", "--qa", tmp_path / "missing.json", "--out", tmp_path / "o", "--tasks", "OI-X")
    _assert_user_error(rc, err, "unknown task 'OI-X'", "OI-E")  # before the QA file is even read
    qa = write_toy_set(tmp_path / "toy", n_videos=2)  # attribute (OAR) and control (CTL-A) questions
    rc, _, err = cli(capsys, "train", "--qa", qa, "--out", tmp_path / "o1", "--tasks", "GTA")
    _assert_user_error(rc, err, "holds no item of the tasks GTA")
    # eval: a task the file does not hold is named (before: "see the skipped items above", and none were)
    rc, _, err = cli(capsys, "eval", "--qa", qa, "--out", tmp_path / "e1", "--tasks", "CTL-G", "--model", "tiny")
    _assert_user_error(rc, err, "holds no usable item of the tasks asked (CTL-G)")
    assert "holds no CTL-G question" in err and "see the skipped items above" not in err
    seen = {}

    def fake_train(gq, train, val, out, **kw):
        from types import SimpleNamespace

        seen["train"], seen["val"] = {it.task_type for it in train}, {it.task_type for it in val}
        return SimpleNamespace(steps=0, best_val=None, best_dir=None)

    monkeypatch.setattr("gazeqwen_edge.training.run.train_stages", fake_train)
    rc, _, err = cli(capsys, "train", "--qa", qa, "--val", qa, "--out", tmp_path / "o2", "--tasks", "OAR")
    assert rc == 0, err
    assert seen == {"train": {"present_object_attribute_recognition"}, "val": {"present_object_attribute_recognition"}}


def test_dataset_objects_option(capsys, tmp_path):
    rc, _, err = cli(capsys, "dataset", "synthetic", tmp_path / "a", "--objects", "4to6")
    _assert_user_error(rc, err, "--objects takes N or LO-HI")
    rc, _, err = cli(capsys, "dataset", "synthetic", tmp_path / "b", "--objects", "3")
    _assert_user_error(rc, err, "4 <= lo <= hi <= 8")
    assert not (tmp_path / "b").exists()
    rc, _, err = cli(capsys, "dataset", "synthetic", tmp_path / "c", "--objects", "5", "--videos", "3",
                     "--duration", "8", "--size", "64x48", "--fps", "2")  # fmt: skip
    assert rc == 0, err
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["params"]["n_objects"] == [5, 5]


def test_train_tiny_llm_sizes_a_new_tiny_model_and_bad_sizes_are_refused(capsys, tmp_path):
    from gazeqwen_edge.cli.training import parse_llm_size
    from gazeqwen_edge.errors import ConfigError
    from gazeqwen_edge.model.model_dir import load_model_dir
    from tests.training.conftest import write_toy_set

    assert parse_llm_size(None) == (4, 64) and parse_llm_size(" 3X96 ") == (3, 96)
    for bad in ("4", "4x", "x64", "1x64", "4x48", "4x2048", "ax64", "33x64", "\uff14x64", "2_0x64", "+4x64", "4 x 64"):
        with pytest.raises(ConfigError):
            parse_llm_size(bad)
    qa = write_toy_set(tmp_path / "toy", n_videos=2)
    out = tmp_path / "run"
    args = ["--qa", qa, "--val", qa, "--out", out, "--max-steps", "1", "--epochs", "1", "--grad-accum", "1"]
    rc, _, err = cli(capsys, "train", *args, "--max-pixels", "3136", "--tiny-llm", "2x32", "--stage", "joint",
                     "--gaze-mark", "--step-fixations", "latest")  # fmt: skip
    assert rc == 0, err
    gq = load_model_dir(out / "best")
    text = gq.qwen.config.text_config
    assert (text.num_hidden_layers, text.hidden_size) == (2, 32)
    assert gq.resampler.config.d_llm == 32 and gq.resampler.config.n_llm_layers == 2
    assert gq.resampler.config.gaze_mark and len(gq.resampler.gaze_marks) == 2  # saved and loaded with its marks
    assert gq.resampler.config.step_fixations == "latest" and gq.latest_fixation
    rc, _, err = cli(capsys, "train", *args[:5], tmp_path / "r4", "--gaze-mark", "--model", "demo")
    _assert_user_error(rc, err, "--gaze-mark builds a new tiny model's resampler", "--model tiny")
    rc, _, err = cli(capsys, "train", *args[:5], tmp_path / "r2", "--tiny-llm", "4x50")
    _assert_user_error(rc, err, "--tiny-llm '4x50' is not LAYERSxHIDDEN", "e.g. --tiny-llm 4x128")
    rc, _, err = cli(capsys, "train", *args[:5], tmp_path / "r3", "--tiny-llm", "4x128", "--model", "demo")
    _assert_user_error(rc, err, "--tiny-llm sizes a new tiny model", "--model tiny")
