"""StreamGaze items read as GazeQwen's loader reads them: the filtered fixation file, the item as long as its video,
centres that are normalised, fixations inside the video."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.cli import main
from gazeqwen_edge.device import Fixation, Notice, open_source
from gazeqwen_edge.device._io import Mp4Writer
from gazeqwen_edge.device.streamgaze import StreamGazeSource
from gazeqwen_edge.errors import InputError

HEADER = (
    "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,duration_seconds"
)


def _video(path: Path, seconds: float, fps: int) -> Path:
    w = Mp4Writer(path, 32, 24, fps)
    for _ in range(int(round(seconds * fps))):
        w.write(np.zeros((24, 32, 3), np.uint8))
    w.close()
    return path


def _csv(path: Path, rows: list[tuple[float, float, float, float]]) -> Path:
    lines = [HEADER] + [f"{s},{e},{x},{y},{e - s},{s},{e},{k},{e - s}" for k, (s, e, x, y) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 4 s clip at 25 fps (100 frames; the last at 3.96 s)."""
    return _video(tmp_path_factory.mktemp("sg") / "P01_clip.mp4", 4.0, 25)


def _item(tmp_path: Path, clip: Path, rows) -> Path:
    d = tmp_path / "item"
    d.mkdir()
    shutil.copy(clip, d / clip.name)
    _csv(d / "P01_clip_fixation_filtered.csv", rows)
    return d


def test_streamgaze_prefers_filtered_fixation_csv(tmp_path, clip, capsys):
    """With both `_fixation_dataset.csv` and `_fixation_filtered.csv`, the filtered one (GazeQwen's) is read and the
    choice is told. Before: the dataset file (first in name order) was read, without a word."""
    d = _item(tmp_path, clip, [(0.5, 1.0, 0.25, 0.5)])
    _csv(d / "P01_clip_fixation_dataset.csv", [(0.1, 0.2, 0.9, 0.9), (0.5, 1.0, 0.25, 0.5), (2.0, 2.5, 0.1, 0.1)])
    s = open_source(d / "P01_clip.mp4", start_ns=0)
    assert isinstance(s, StreamGazeSource) and s.fixation_csv.name == "P01_clip_fixation_filtered.csv"
    assert [(f.start_ns, f.x) for f in s.records({Fixation})] == [(500_000_000, 8.0)]
    notes = [n for n in s.records({Notice}) if n.kind == "file_choice"]
    assert len(notes) == 1 and "also found P01_clip_fixation_dataset.csv" in notes[0].message
    assert main(["inspect", str(d)]) == 0
    assert "fixations from P01_clip_fixation_filtered.csv" in " ".join(capsys.readouterr().out.split())


def test_a_benchmark_video_finds_its_csv_in_the_fixations_folder_beside_its_own(tmp_path, clip):
    """`dataset synthetic` (and StreamGaze) keep videos/ and fixations/ side by side: `replay videos/X.mp4` said "no
    fixation CSV found beside this video". The CSV beside the video still wins; a fixations/ folder without it is
    named in the hint."""
    (tmp_path / "videos").mkdir()
    video = tmp_path / "videos" / clip.name
    shutil.copy(clip, video)
    with pytest.raises(InputError, match="no fixation CSV found") as e:
        open_source(video, start_ns=0)
    assert "fixations/ folder" in e.value.hint
    (tmp_path / "fixations").mkdir()
    _csv(tmp_path / "fixations" / "P01_clip_fixation_filtered.csv", [(0.5, 1.0, 0.25, 0.5)])
    _csv(tmp_path / "fixations" / "other_fixation_filtered.csv", [(0.1, 0.2, 0.9, 0.9)])
    s = open_source(video, start_ns=0)
    assert s.fixation_csv == tmp_path / "fixations" / "P01_clip_fixation_filtered.csv"
    assert [(f.start_ns, f.x) for f in s.records({Fixation})] == [(500_000_000, 8.0)]
    _csv(tmp_path / "videos" / "P01_clip.csv", [(1.0, 2.0, 0.5, 0.5)])
    assert open_source(video, start_ns=0).fixation_csv == tmp_path / "videos" / "P01_clip.csv"


def test_streamgaze_item_ends_at_its_last_frame(tmp_path, clip):
    """Before: the item ended at its last fixation's end (3.2 s here), cutting the last 0.76 s of video."""
    d = _item(tmp_path, clip, [(0.5, 1.0, 0.5, 0.5), (2.8, 3.2, 0.5, 0.5)])
    s = StreamGazeSource(d / "P01_clip.mp4", start_ns=0)
    assert s.end_ns - s.start_ns == pytest.approx(3.96e9, abs=1e6)
    assert StreamGazeSource(d / "P01_clip.mp4", start_ns=0, window=(1.0, 2.0)).end_ns == 2_000_000_000


def test_streamgaze_centres_must_be_normalised(tmp_path, clip):
    """Centres just outside [0, 1] (gaze beyond the frame edge) are kept with a Notice; pixel values in the
    normalised columns are refused. Before: both passed on silently (a centre of 812 became 812 * width px)."""
    d = _item(tmp_path, clip, [(0.5, 1.0, 1.05, 0.5), (1.5, 2.0, 0.5, 0.5)])
    s = StreamGazeSource(d / "P01_clip.mp4", start_ns=0)
    assert len(s.fixations) == 2
    notes = [n for n in s.records({Notice}) if n.kind == "off_frame"]
    assert len(notes) == 1 and "1 of 2 fixation centres lie outside the frame" in notes[0].message
    _csv(d / "P01_clip_fixation_filtered.csv", [(0.5, 1.0, 812.0, 600.0)])
    with pytest.raises(InputError, match="not normalised to the frame") as e:
        StreamGazeSource(d / "P01_clip.mp4", start_ns=0)
    assert e.value.path.endswith("P01_clip_fixation_filtered.csv")


def test_streamgaze_fixations_beyond_the_video_are_dropped_with_a_notice(tmp_path, clip):
    """A fixation at 10 s in a 4 s video (a CSV of a longer video, or a cut video) is not delivered, and a Notice
    says so. Before: delivered as if the video had frames there."""
    d = _item(tmp_path, clip, [(0.5, 1.0, 0.5, 0.5), (3.5, 4.0, 0.5, 0.5), (10.0, 10.5, 0.5, 0.5)])
    s = StreamGazeSource(d / "P01_clip.mp4", start_ns=0)
    assert [f.end_ns for f in s.fixations] == [1_000_000_000, 4_000_000_000]
    notes = [n for n in s.records({Notice}) if n.kind == "invalid"]
    assert len(notes) == 1 and "1 of 3 fixations end after the video (4.00 s" in notes[0].message


def test_real_streamgaze_sample_reads_its_filtered_csv(shared_dir, tmp_path):
    """The real sample (35 fixations between 32 s and 748 s of a 750 s video at 24 fps) with a stand-in video of
    that length: every fixation is inside, the item ends at 749.96 s."""
    sample = shared_dir / "fixtures" / "streamgaze_sample"
    d = tmp_path / "sg"
    d.mkdir()
    shutil.copy(sample / "OP03-R01-PastaSalad_fixation_filtered.csv", d)
    _video(d / "OP03-R01-PastaSalad.mp4", 750.0, 24)
    s = open_source(d, start_ns=0)
    assert len(s.fixations) == 35 and not [n for n in s.records({Notice})]
    assert s.end_ns == pytest.approx(749.958e9, abs=1e6)
