"""Bad input, tried as a new user would: every mistake ends in one `error:` line naming what is wrong, a `hint:` line,
and exit 2, at once: never a traceback, a usage box, a hang, or a failure seconds after the command started."""

from __future__ import annotations

import time

import pytest

from gazeqwen_edge import __version__
from tests.cli.helpers import annotation, cli, cli_subprocess, commands, is_float, long_name


def one_error(rc: int, err: str, *expected: str, code: int = 2) -> None:
    """Exit `code` with exactly an `error:` line and a `hint:` line on stderr, containing `expected`."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == code, err
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  hint: "), err
    for text in expected:
        assert text in err, err
    assert "Traceback" not in err and "╭" not in err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["demo", "--seed", "abc"], "'--seed'"),
        (["demo", "--bogus"], "No such option: --bogus"),
        (["record"], "Missing argument"),
        (["inspect", "synthetic", "--seconds"], "'--seconds' requires an argument"),
        (["calibrate", "offset", "--port", "x"], "--port must be a whole number from 1 to 65535, got x"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_errors_are_one_error_line_not_a_usage_box(capsys, argv, expected):
    rc, out, err = cli(capsys, *argv)
    one_error(rc, err, expected, "see 'gazeqwen-edge")
    assert out == ""


def test_usage_error_hint_names_the_subcommand(capsys):
    rc, _, err = cli(capsys, "calibrate", "offset", "--seconds", "abc", "-w", "x")
    one_error(rc, err, "see 'gazeqwen-edge calibrate offset --help'")


def test_version_option(capsys):
    rc, out, err = cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"gazeqwen-edge {__version__}" and err == ""


def test_python_dash_m_is_the_command():
    import subprocess
    import sys

    from tests.cli.helpers import REPO_ROOT

    def run(*argv):
        return subprocess.run(
            [sys.executable, "-m", "gazeqwen_edge", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )

    ok, bad = run("--version"), run("bogus")
    assert ok.returncode == 0 and ok.stdout.strip() == f"gazeqwen-edge {__version__}"
    assert bad.returncode == 2 and bad.stderr.startswith("error: No such command 'bogus'.")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["demo", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
        (["demo", "--seed", str(2**40)], "--seed must be a whole number"),
        (["inspect", "synthetic:-1"], "bad synthetic spec 'synthetic:-1'"),
        (["inspect", "synthetic:99999999999"], "bad synthetic spec"),
        (["inspect", "synthetic:+5"], "bad synthetic spec"),
        (["calibrate", "fixations", "synthetic:-3"], "bad synthetic spec"),
    ],
)
def test_negative_or_oversized_seeds_are_refused(capsys, argv, expected):
    rc, _, err = cli(capsys, *argv)
    one_error(rc, err, expected)


@pytest.mark.parametrize("size", ["99999x99999", "4097x100", "100x31", "0x0", "640", "640x480x3", "-640x480", "axb"])
@pytest.mark.parametrize("command", [["record", "synthetic", "{tmp}/out"], ["simulate", "synthetic", "--port", "0"]])
def test_frame_sizes_no_camera_delivers_are_refused(capsys, tmp_path, command, size):
    t0 = time.monotonic()
    rc, _, err = cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in command], "--size", size)
    one_error(rc, err, "--size")
    assert time.monotonic() - t0 < 2.0  # refused before anything is drawn into memory
    assert not (tmp_path / "out").exists()


def _required_arguments(cmd, tmp_path) -> list[str]:
    out = []
    for p in cmd.params:
        if p.param_type_name == "argument" and p.required:
            out.append(str(tmp_path / "x") if "Path" in str(annotation(p)) else "synthetic")
    return out


FLOAT_OPTIONS = [
    (path, long_name(p))
    for path, cmd in commands()
    for p in cmd.params
    if p.param_type_name == "option" and is_float(p)
]


def test_every_float_option_is_discovered():
    names = {(" ".join(path), opt) for path, opt in FLOAT_OPTIONS}
    assert ("simulate", "--clock-offset-ms") in names and ("record", "--synthetic-duration") in names
    assert len(names) >= 14


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize("path, option", FLOAT_OPTIONS, ids=[f"{' '.join(p)} {o}" for p, o in FLOAT_OPTIONS])
def test_non_finite_float_options_are_refused(capsys, tmp_path, path, option, value):
    """Every float option of every command (found in the command tree, so new ones are covered): NaN and infinity
    are input errors, refused at once with the option's name (they used to crash deep inside, or hang)."""
    cmd = dict((tuple(p), c) for p, c in commands())[tuple(path)]
    t0 = time.monotonic()
    rc, _, err = cli(capsys, *path, option, value, *_required_arguments(cmd, tmp_path))
    shown = {"NaN": "nan", "1e999": "inf"}.get(value, value)
    one_error(rc, err, f"error: {option} must be a", "finite", f"got {shown}")
    assert time.monotonic() - t0 < 2.0


def test_convert_checkpoint_into_a_path_under_a_file(capsys, tmp_path):
    from tests.model.test_checkpoint import write_reference

    write_reference(tmp_path / "best_model.pt")
    (tmp_path / "afile").write_text("x")
    dst = tmp_path / "afile" / "ckpt"
    rc, _, err = cli(capsys, "convert-checkpoint", tmp_path / "best_model.pt", dst, "--injected-layers", "1,4")
    one_error(rc, err, "OUT_DIR", "is a file, not a directory")
    rc, _, err = cli(capsys, "convert-checkpoint", tmp_path / "best_model.pt", tmp_path / "afile", "--force")
    one_error(rc, err, "OUT_DIR", "is a file; give a directory")


def test_record_into_a_path_under_a_file(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    rc, _, err = cli(capsys, "record", "synthetic", tmp_path / "afile" / "out", "--synthetic-duration", "1")
    one_error(rc, err, "is a file, not a directory")


def test_record_with_its_arguments_swapped_says_the_order(capsys, tmp_path, neon_recording_dir):
    """`record OUT_DIR SOURCE`: the missing 'source' is named, and the hint gives the command the right way round;
    a SOURCE that merely does not exist keeps the list of what SOURCE can be."""
    new = tmp_path / "new"
    rc, _, err = cli(capsys, "record", new, "synthetic:1")
    one_error(rc, err, "does not exist", f"did you mean 'gazeqwen-edge record synthetic:1 {new}'")
    rc, _, err = cli(capsys, "record", new, neon_recording_dir)
    one_error(rc, err, f"record {neon_recording_dir} {new}'")
    rc, _, err = cli(capsys, "record", tmp_path / "missing", tmp_path / "out2")
    one_error(rc, err, "does not exist", "SOURCE is synthetic[:SEED]")
    assert not new.exists()


def test_simulate_checks_every_fault_spec_before_serving(capsys):
    """A bad --stall/--not-worn used to fail on the simulator's event loop a second after start, while the command
    went on serving until the source played out."""
    for argv, expected in (
        (["--stall", "bogus:1:2"], "unknown stream 'bogus'"),
        (["--stall", "gaze:nan:1"], "finite"),
        (["--not-worn", "inf:1"], "finite"),
        (["--not-worn", "1:-2"], "finite"),
        (["--disconnect-at", "1", "--disconnect-for", "nan"], "--disconnect-for"),
    ):
        t0 = time.monotonic()
        rc, out, err = cli(capsys, "simulate", "synthetic", "--port", "0", "--rtsp-port", "0", *argv)
        one_error(rc, err, expected)
        assert "serving" not in out and time.monotonic() - t0 < 2.0


def test_simulate_warns_when_a_fault_comes_after_the_source_ends(capsys):
    from gazeqwen_edge.device.simulator import FaultPlan

    plan = FaultPlan.parse(["gaze:12:1"], ["2:1"], disconnect_at=9, disconnect_for=3)
    warnings = plan.unseen(10.0)
    assert len(warnings) == 2 and "--stall gaze:12:1 starts after" in warnings[0]
    assert "comes back at 12 s" in warnings[1] and "--loop" in warnings[1]
    assert FaultPlan.parse(["gaze:2:1"], disconnect_at=5, disconnect_for=3).unseen(10.0) == []


def test_source_options_for_a_source_they_do_not_apply_to(capsys, tmp_path, neon_recording_dir):
    rc, _, err = cli(capsys, "record", neon_recording_dir, tmp_path / "o", "--size", "64x64")
    one_error(rc, err, "only apply to synthetic scenes")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("address", ["1.2.3", "127.0.0.1:8080", "http://127.0.0.1", "a b", "12345", "-x"])
def test_addresses_that_are_no_host_are_refused_before_any_lookup(capsys, address):
    t0 = time.monotonic()
    rc, _, err = cli(capsys, "run", "--address", address)
    one_error(rc, err, "--address")
    assert time.monotonic() - t0 < 1.0


def test_infinite_synthetic_duration_is_refused_not_a_hang(tmp_path):
    """`record synthetic:3 OUT --synthetic-duration inf` used to hang without output (as a user runs it)."""
    t0 = time.monotonic()
    p = cli_subprocess("record", "synthetic:3", tmp_path / "out", "--synthetic-duration", "inf", timeout=30)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: --synthetic-duration must be a finite number > 0"), p.stderr
    assert "Traceback" not in p.stderr and time.monotonic() - t0 < 30


@pytest.mark.parametrize(
    "spec",
    [
        "calibration-target:seed=-1",
        "calibration-target:seconds=nan",
        "calibration-target:seconds=inf",
        "calibration-target:offset=nan,1",
        "calibration-target:size=99999x99999",
    ],
)
def test_calibration_target_spec_values_no_device_produces_are_refused(capsys, spec):
    """Found by the fuzz: a negative seed or NaN duration gave tracebacks, a NaN offset was taken, a huge size tried to
    allocate gigabytes."""
    rc, _, err = cli(capsys, "inspect", spec)
    one_error(rc, err, "calibration-target")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--name", "lab:phone"], "--name must be 1 to 63 printable characters without ':'"),
        (["--name", "two\r\nlines"], "--name must be"),  # a phone name is one printable line
        (["--name", "x" * 64], "--name must be"),
        (["--gaze-variant", "10"], "--gaze-variant must be one of 9, 17, 25, 65, 89, 105"),
        (["--audio", "loud"], "--audio must be one of auto, source, tone, off"),
        (["--timestamps", "now"], "--timestamps must be one of live, source"),
        (["--host", "0.0.0.0:80"], "give the port with --port"),
    ],
)
def test_simulate_refuses_names_and_choices_it_cannot_serve(capsys, argv, expected):
    rc, out, err = cli(capsys, "simulate", "synthetic", "--port", "0", "--rtsp-port", "0", *argv)
    one_error(rc, err, expected)
    assert "serving" not in out


def test_a_failed_zeroconf_announcement_says_so(capsys):
    """zeroconf refusing the service name (too long for one DNS label) was reported as 'another program uses one
    of these ports'."""
    pytest.importorskip("zeroconf")
    argv = ["simulate", "synthetic", "--port", "0", "--rtsp-port", "0", "--time-echo-port", "0", "--announce"]
    rc, out, err = cli(capsys, *argv, "--scene-seconds", "0.5", "--size", "64x48", "--name", "x" * 40)
    assert rc == 3, err
    assert "error: cannot announce the simulator with zeroconf" in err and "Too long" in err
    assert "hint: serve without --announce" in err and "ports" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "{out}", "--no-onnx", "--quant", "none"],
        ["profile", "--duration", "4", "--out", "{out}"],
        ["eval", "--qa", "{qa}", "--out", "{out}"],
        ["eval-alerts", "--qa", "{qa}", "--out", "{out}"],
        ["train", "--qa", "{qa}", "--out", "{out}"],
        ["replay", "synthetic:1", "--out", "{out}"],
        ["eval-table", "{qa}", "--out", "{out}/table.md"],
        ["eval", "--qa", "{qa}", "--out", "{ok}", "--cache-dir", "{out}"],  # (before: found after the model work)
        ["train", "--qa", "{qa}", "--out", "{ok}", "--cache-dir", "{out}"],
    ],
    ids=lambda a: a[0],
)
def test_an_output_that_cannot_be_created_is_refused_before_any_work(capsys, tmp_path, monkeypatch, argv):
    """Before: export, profile and eval wrote into a place that permissions do not stop (root in /proc, a read-only
    mount) and died with a FileNotFoundError traceback after their work; access() cannot tell, so it is tried. A
    read-only file system is the disk's state: exit 3 and a hint to remount, where the path's own faults are 2."""
    import errno
    from pathlib import Path

    qa = tmp_path / "qa.json"
    qa.write_text("[]")
    (tmp_path / "ok").mkdir()  # an --out that exists (empty): only the option after it cannot be created

    def read_only(self, *a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    args = [a.replace("{out}", str(tmp_path / "o")).replace("{qa}", str(qa)) for a in argv]
    args = [a.replace("{ok}", str(tmp_path / "ok")) for a in args]
    started = time.monotonic()
    rc, out, err = cli(capsys, *args)
    one_error(rc, err, "cannot be created (Read-only file system)", "remount it read-write", code=3)
    assert ("--cache-dir" in err) == ("--cache-dir" in argv), err
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("fault", ["read-only mount", "no permission", "mkdir refused"])
def test_an_output_on_a_read_only_file_system_is_exit_3_and_one_without_permission_exit_2(
    capsys, tmp_path, monkeypatch, fault
):
    """Before: a read-only mount (which access() reports as not writable, root or not) was 'no permission to write',
    exit 2, where every later write to it is a device error (exit 3). statvfs tells the two apart."""
    import errno
    import os
    from pathlib import Path
    from types import SimpleNamespace

    import gazeqwen_edge.errors as errors_module

    parent = tmp_path / "mnt"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, *a, **kw: False if Path(p) == parent else real_access(p, m))
    flag = os.ST_RDONLY if fault == "read-only mount" else 0
    monkeypatch.setattr(errors_module.os, "statvfs", lambda p: SimpleNamespace(f_flag=flag))
    if fault == "mkdir refused":  # access() says yes, the kernel says EACCES (an ACL, a seccomp rule): the path's
        monkeypatch.setattr(os, "access", real_access)

        def refused(self, *a, **kw):
            raise OSError(errno.EACCES, "Permission denied", str(self))

        monkeypatch.setattr(Path, "mkdir", refused)
    rc, out, err = cli(capsys, "replay", "synthetic:1", "--out", str(parent / "session"))
    if fault == "read-only mount":
        one_error(rc, err, "is on a read-only file system", "remount it read-write", code=3)
    elif fault == "no permission":
        one_error(rc, err, "no permission to write in")
    else:
        one_error(rc, err, "cannot be created (Permission denied)")


@pytest.mark.parametrize("kind", ["resumable", "resumable dataset", "keeps nothing", "plain"])
def test_ctrl_c_inside_a_command_says_so_and_how_to_resume(capsys, tmp_path, monkeypatch, kind):
    """Before: typer turned a Ctrl-C inside `eval` (or any command without its own handler) into a silent exit 130;
    a user saw nothing, not even that the kept work resumes (or, for train-vision, that nothing was kept)."""
    import gazeqwen_edge.cli.training as training_cli
    import gazeqwen_edge.training.synthetic_benchmark as bench
    import gazeqwen_edge.training.vision_pretrain as vision_pretrain

    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt

    if kind == "resumable":
        qa = tmp_path / "qa.json"
        qa.write_text("[]")
        monkeypatch.setattr(training_cli, "_load_items", ctrl_c)
        argv = ["eval", "--qa", str(qa), "--out", str(tmp_path / "o")]
        hint = "rerun the same command to resume"
    elif kind == "keeps nothing":
        monkeypatch.setattr(vision_pretrain, "pretrain_vision", ctrl_c)
        argv = ["train-vision", "--out", str(tmp_path / "v"), "--steps", "2", "--scenes", "2", "--held-out", "1"]
        hint = "no model is kept"
    elif kind == "resumable dataset":
        monkeypatch.setattr(bench, "build_synthetic_benchmark", ctrl_c)
        argv = ["dataset", "synthetic", str(tmp_path / "d"), "--videos", "3"]
        hint = "rerun the same command to resume"
    else:
        import gazeqwen_edge.device.inspect as inspect_module

        monkeypatch.setattr(inspect_module, "summarize", ctrl_c)
        argv = ["inspect", "synthetic:1"]
        hint = None
    rc, out, err = cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("rendering ")]
    assert rc == 130 and lines[0] == "interrupted (Ctrl-C)" and "Traceback" not in err
    assert (len(lines) == 2 and hint in lines[1]) if hint else len(lines) == 1, err


def test_an_out_directory_another_process_makes_meanwhile_is_not_an_error(tmp_path, monkeypatch):
    """Every rank of `accelerate launch` checks the same --out: when another one makes it between the existence check
    and the mkdir (FileExistsError), the path is creatable, not an error (CI saw rank 1 exit 2 with 'File exists');
    a file made there meanwhile is still refused."""
    from pathlib import Path

    from gazeqwen_edge.errors import InputError, check_creatable

    real_mkdir = Path.mkdir

    def racing(made_by_other):
        def mkdir(self, *a, **k):
            made_by_other(self)
            raise FileExistsError(17, "File exists", str(self))

        return mkdir

    target = tmp_path / "run" / "out"
    monkeypatch.setattr(Path, "mkdir", racing(lambda p: real_mkdir(p, parents=True)))
    check_creatable(target)
    clash = tmp_path / "clash"
    monkeypatch.setattr(Path, "mkdir", racing(lambda p: p.write_text("x")))
    with pytest.raises(InputError, match="not a directory"):
        check_creatable(clash)


def test_text_that_is_not_utf8_is_refused_where_it_enters(capsys, tmp_path):
    """Bytes that are not UTF-8 (lone surrogates once decoded: an argument or stdin with surrogateescape, a JSON
    escape such as \\ud800) cannot be written to the session logs or tokenized. Before: a traceback that ended the
    session and lost its answers. Now: refused where they enter, with what and where, exit 2."""
    qf = tmp_path / "q.jsonl"
    qf.write_text(
        '{"t": 1, "question": "what is \\ud800 this?"}\n{"t": 2, "question": "ok?", "options": ["\\udc80"]}\n'
    )
    rc, _, err = cli(capsys, "replay", "synthetic:1", "--questions", qf, "--no-voice", "--out", tmp_path / "r")
    one_error(rc, err, "line 1: the question is not valid text: character 9 is '\\ud800'")
    rc, _, err = cli(capsys, "replay", "synthetic:1", "--watch", "the \udcff cup", "--out", tmp_path / "r")
    one_error(rc, err, "not valid UTF-8 text: 'the \\udcff cup'")  # an argument: refused before any command runs
    rc, _, err = cli(capsys, "inspect", tmp_path / "caf\udce9")
    one_error(rc, err, "not valid UTF-8 text")
    assert not (tmp_path / "r").exists()


def test_a_session_refuses_a_question_that_is_not_text_and_goes_on(tmp_path):
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.errors import InputError
    from gazeqwen_edge.runtime.session import Session, SessionConfig
    from gazeqwen_edge.runtime.watches import Watches

    with open_source("synthetic:1") as src, Session(src, None, SessionConfig(), tmp_path / "s") as s:
        with pytest.raises(InputError, match="not valid text"):
            s.ask("what is \ud800 this?")
        with pytest.raises(InputError, match="option 1 is not valid text"):
            s.ask("which?", options=["\udcff", "b"])
        q = s.ask("what is this?")  # the session still takes questions
        assert q.id == 1
    with pytest.raises(ValueError, match="the watch is not valid text"):
        Watches().add("the \udcff")


def test_speak_to_an_earlier_sessions_wavs_is_refused(capsys, tmp_path):
    """Before: a second replay with the same --speak-to overwrote answer-1.wav, and the first session's answers.jsonl
    then named the second session's speech."""
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    (wavs / "answer-1.wav").write_bytes(b"RIFF earlier")
    rc, _, err = cli(capsys, "replay", "synthetic:1", "--speak-to", wavs, "--no-voice", "--out", tmp_path / "r2")
    one_error(rc, err, "--speak-to", "already exists and is not empty")
    assert (wavs / "answer-1.wav").read_bytes() == b"RIFF earlier" and not (tmp_path / "r2").exists()


def test_a_source_that_is_not_there_gets_one_short_hint_naming_every_kind(capsys, tmp_path):
    """Before: a hint of 330 characters on one line, whose list of live sources depended on what had been imported."""
    for argv in (["replay", str(tmp_path / "nosuchdir")], ["inspect", str(tmp_path)], ["record", "x://y", "o"]):
        rc, _, err = cli(capsys, *argv)
        one_error(rc, err, "SOURCE is synthetic[:SEED]", "'neon://HOST:PORT'", "'pupil-neon'")
        assert len(err.splitlines()[1]) <= 220, err


def test_an_error_line_never_sends_a_control_character_to_the_terminal(capsys, tmp_path):
    """A file name holding an escape sequence (`inspect $'a\\x1b[31mred'`) was echoed into the error line raw, so
    the terminal acted on it; control characters are now shown as U+FFFD."""
    name = tmp_path / "a\x1b[2Jred\u009b1m"
    rc, _, err = cli(capsys, "inspect", name)
    assert rc == 2 and err.startswith("error: ") and "red" in err
    assert not any(ord(c) < 32 and c != "\n" or 127 <= ord(c) < 160 for c in err), ascii(err)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("neon://127.0.0.1:99999", "99999 is not between 1 and 65535"),
        ("neon://:8080", "names no host"),
        ("neon://[::1]:8080", "is an IPv6 address"),
        ("pupil-neon:10.0.0.2:port", "is not a number"),
        # was exit 3 "256.1.1.1:8080 answered, but not like a Neon Companion app" (nothing had answered)
        ("neon://256.1.1.1:8080", "'256.1.1.1' in 'neon://256.1.1.1:8080' is not an IPv4 address"),
        ("neon://10.0.0:8080", "is not an IPv4 address"),
    ],
)
def test_a_malformed_neon_spec_is_refused_before_the_model_loads(capsys, monkeypatch, tmp_path, spec, expected):
    """It was checked where the connection is made: after the model had loaded (8 s of a 9 s failure) and after a
    'connecting to ...' line."""
    import gazeqwen_edge.cli.runtime as runtime

    def no_model(*a, **kw):
        raise AssertionError("the model was loaded for a spec that cannot be right")

    monkeypatch.setattr(runtime, "load", no_model)
    rc, out, err = cli(capsys, "run", "--device", spec, "--out", str(tmp_path / "s"))
    one_error(rc, err, expected)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "--port", "0"], "--port must be a whole number from 1 to 65535, got 0"),
        (["run", "--port=70000"], "--port must be a whole number from 1 to 65535, got 70000"),
        (["run", "--port", "abc"], "--port must be a whole number from 1 to 65535, got abc"),
        (["simulate", "synthetic", "--port", "-1"], "--port must be a whole number from 0 to 65535, got -1"),
        (["run", "--max-new-tokens", "-3"], "--max-new-tokens must be a whole number from 1 to"),
    ],
)
def test_an_integer_out_of_its_range_reads_like_our_own_checks(capsys, argv, expected):
    """typer's validator said "Invalid value for '--port': Input should be greater than or equal to 1", where a float
    option says "--duration must be a finite number >= 0 and <= 86400, got -1"."""
    rc, _, err = cli(capsys, *argv)
    one_error(rc, err, expected, f"see 'gazeqwen-edge {argv[0]} --help'")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["record", "synthetic:1", ""], "OUT_DIR is empty"),
        (["replay", "synthetic:1", "--out", ""], "--out is empty"),
        (["replay", "synthetic:1", "--out="], "--out is empty"),
        (["eval", "--qa", "x.json", "--out", " "], "--out is empty"),
        (["calibrate", "offset", "-w", "a", "--store", ""], "--store is empty"),
        (["replay", ""], "SOURCE is empty"),
        (["replay", "--", ""], "SOURCE is empty"),
        (["eval-table", "runs/a", ""], "RESULTS is empty"),
        (["eval", "--qa", "x.json", "--model", "", "--out", "o"], "--model is empty"),  # was "error: : cannot load"
        (["replay", "synthetic:1", "--asr-model", " "], "--asr-model is empty"),
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_directory(capsys, monkeypatch, tmp_path, argv, expected):
    """Path('') is Path('.'): `record synthetic:1 ''` (an unset shell variable) wrote into the current directory,
    `--out ''` too, and `inspect ''` inspected it."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, *argv)
    one_error(
        rc, err, expected, f"see 'gazeqwen-edge {' '.join(argv[:2] if argv[0] == 'calibrate' else argv[:1])} --help'"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_empty_value_where_it_means_something_is_still_taken(capsys):
    """Only paths and positional arguments: `--streams ''` means every stream (and a flag takes no value)."""
    from gazeqwen_edge.cli import _empty_argument

    assert _empty_argument(["record", "synthetic:1", "out", "--streams", "", "--overwrite"]) is None
    assert _empty_argument(["replay", "synthetic:1", "--overwrite", "--out", "x"]) is None
    assert _empty_argument(["calibrate", "offset", "-w", "a", "--store", "s.json"]) is None


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["record", "synthetic:1", "{tmp}/r", "--streams", ","], "--streams ',' names no stream"),
        (["export", "--plan", "--fps", "1e-300"], "--fps must be a finite number >= 0.1"),
        (["replay", "synthetic:1", "--fps", "0.001"], "--fps must be a finite number >= 0.1"),
        (["profile", "--every", "0.0001"], "--every must be a finite number >= 0.1"),
    ],
)
def test_values_that_do_nothing_or_schedule_without_end_are_refused(capsys, tmp_path, argv, expected):
    """Each was exit 0: a recording of nothing, a plan for 2e+300 s steps, a replay whose window held no step, 20001
    questions scheduled for a 5 s scene."""
    rc, _, err = cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    one_error(rc, err, expected)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["replay synthetic:1", "run --device simulator"])
def test_the_training_name_tiny_is_no_session_model(capsys, command):
    """It was looked up in the Hugging Face cache ("tiny: is not in the local Hugging Face cache and huggingface.co
    cannot be reached"), while eval and train take it."""
    rc, _, err = cli(capsys, *command.split(), "--model", "tiny")
    one_error(rc, err, "--model tiny is a new untrained model", "leave --model out for the demo model")


def test_a_device_file_as_source_is_named_as_such(capsys):
    """/dev/null was 'directory cannot be read (permission denied)', for root too."""
    rc, _, err = cli(capsys, "inspect", "/dev/null")
    one_error(rc, err, "/dev/null: is neither a directory nor a regular file")
