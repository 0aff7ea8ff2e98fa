"""A toy StreamGaze-format set every training test can learn from quickly: videos whose left half is one colour and
right half another, a fixation CSV whose fixations alternate between the halves, and questions whose answer is the
colour of the scene (no gaze needed) or of the half looked at (gaze needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gazeqwen_edge.device._io import Mp4Writer

HEADER = (
    "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,duration_seconds"
)
COLOURS = {"red": (220, 30, 30), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (240, 210, 30)}


def write_toy_set(root: Path, n_videos: int = 4, seconds: float = 8.0, fps: int = 4) -> Path:
    """root/{videos,fixations}/ + root/qa.json; returns the QA path. Video k: left half colour k, right half colour
    k+1 (mod 4); fixations of 1 s alternate left (x 0.25) / right (x 0.75) every 1 s starting at 0.1 s."""
    names = list(COLOURS)
    (root / "videos").mkdir(parents=True)
    (root / "fixations").mkdir()
    items = []
    for k in range(n_videos):
        left, right = names[k % 4], names[(k + 1) % 4]
        w = Mp4Writer(root / "videos" / f"toy{k}.mp4", 64, 48, fps)
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :32] = COLOURS[left]
        frame[:, 32:] = COLOURS[right]
        for _ in range(int(seconds * fps)):
            w.write(frame)
        w.close()
        rows = [HEADER]
        for j in range(int(seconds)):
            s, e, x = j + 0.1, j + 0.95, 0.25 if j % 2 == 0 else 0.75
            rows.append(f"{s},{e},{x},0.5,{e - s},{s},{e},{j},{e - s}")
        (root / "fixations" / f"toy{k}_fixation_filtered.csv").write_text("\n".join(rows) + "\n")
        opts = [f"{'ABCD'[i]}. {c}" for i, c in enumerate(names)]
        qs = []
        for j in range(2, int(seconds) - 1):
            looked = left if j % 2 == 0 else right
            qs.append(
                {
                    "question": "What colour is the user looking at?",
                    "time_stamp": f"00:{j:02d}.5",
                    "answer": "ABCD"[names.index(looked)],
                    "options": opts,
                    "task_type": "present_object_attribute_recognition",
                }
            )
        qs.append(
            {
                "question": "Which colour is on the left?",
                "time_stamp": "00:04",
                "answer": "ABCD"[k % 4],
                "options": opts,
                "task_type": "control_object_attribute",
            }
        )
        items.append({"video_path": f"toy{k}.mp4", "response_time": "[00:00 - 00:08]", "questions": qs})
    qa = root / "qa.json"
    qa.write_text(json.dumps(items, indent=1))
    return qa


@pytest.fixture(scope="session")
def toy_qa(tmp_path_factory) -> Path:
    return write_toy_set(tmp_path_factory.mktemp("toy"))


@pytest.fixture()
def toy_gq():
    """A fresh tiny GazeQwen (random, spatial encoding, stream regime) for tests that train it."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    return build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", min_pixels=56 * 56, max_pixels=56 * 56)
