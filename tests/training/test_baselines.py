import numpy as np
import pytest

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.training.baselines import (
    VARIANTS,
    draw_gaze_prompt,
    extract_letter,
    gaze_as_text,
    prepend_gaze_text,
)

OPTIONS = ["A. red box", "B. blue square", "C. blue", "D. knife"]
GREEN, RED = (0, 255, 0), (255, 0, 0)


def _frames(t=3, h=240, w=320):
    rng = np.random.default_rng(0)
    # grey noise: never pure green or red, so any such pixel was drawn
    return rng.integers(60, 200, size=(t, h, w, 1), dtype=np.uint8).repeat(3, axis=-1)


def _is(px, colour) -> bool:
    return tuple(int(v) for v in px) == colour


def test_draw_gaze_prompt_dot_circle_radius_and_untouched_frames():
    frames = _frames()
    before = frames.copy()
    # fixation 0 active on [0.5, 1.5] s, fixation 1 on [2.5, 3.5]; frame times 1.0 (f0), 2.0 (none), 3.0 (f1)
    sp = np.array([[0.25, 0.5, 1.0, 1.0], [0.75, 0.25, 3.0, 1.0]])
    out = draw_gaze_prompt(frames, [1.0, 2.0, 3.0], sp)
    np.testing.assert_array_equal(frames, before)  # input not mutated
    assert out.shape == frames.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], frames[1])  # no active fixation: unchanged
    h, w = 240, 320
    r = 7.5 * w / 103.0  # (fov/2) * pixels per degree = 23.3 px
    for i, (x, y) in ((0, (0.25, 0.5)), (2, (0.75, 0.25))):
        cx, cy = x * w - 0.5, y * h - 0.5  # pixel-centre coordinates of the gaze point
        assert _is(out[i, int(y * h), int(x * w)], GREEN)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (0.7071, 0.7071)):
            dists = []
            for d in np.arange(4.0, 40.0, 0.25):
                px, py = round(cx + d * dx), round(cy + d * dy)
                if _is(out[i, py, px], RED):
                    dists.append(np.hypot(px - cx, py - cy))
            assert dists, (i, dx, dy)
            assert all(abs(d - r) <= 1.5 for d in dists), (i, dx, dy, dists, r)
        # inside the ring (between dot and circle) and outside it: untouched
        for d in (r / 2, r + 5):
            py, px = round(cy), round(cx + d)
            np.testing.assert_array_equal(out[i, py, px], frames[i, py, px])
    assert not np.array_equal(out[0], frames[0]) and not np.array_equal(out[2], frames[2])


def test_draw_gaze_prompt_latest_started_fixation_wins_and_fov_parameters():
    frames = _frames(t=1)
    # both active at t = 1: the second started later (0.8 > 0.0)
    sp = np.array([[0.2, 0.2, 1.0, 2.0], [0.7, 0.7, 1.3, 1.0]])
    out = draw_gaze_prompt(frames, [1.0], sp)
    assert _is(out[0, int(0.7 * 240), int(0.7 * 320)], GREEN)
    assert not _is(out[0, int(0.2 * 240), int(0.2 * 320)], GREEN)
    # a narrower camera (more pixels per degree) draws a larger circle: 7.5 * 320 / 50 = 48 px
    wide = draw_gaze_prompt(frames, [1.0], sp[1:], hfov_deg=50.0)
    cy, cx = 0.7 * 240 - 0.5, 0.7 * 320 - 0.5
    row = wide[0, round(cy)]
    reds = [c for c in range(320) if _is(row[c], RED)]
    assert reds and all(abs(abs(c - cx) - 48.0) <= 1.5 for c in reds)


def test_draw_gaze_prompt_no_scanpath_and_bad_input():
    frames = _frames(t=2)
    np.testing.assert_array_equal(draw_gaze_prompt(frames, [0.0, 1.0], None), frames)
    np.testing.assert_array_equal(draw_gaze_prompt(frames, [0.0, 1.0], np.zeros((0, 4))), frames)
    with pytest.raises(InputError, match="2 frames but 1"):
        draw_gaze_prompt(frames, [0.0], None)
    with pytest.raises(InputError, match="uint8"):
        draw_gaze_prompt(frames.astype(np.float32), [0.0, 1.0], None)
    with pytest.raises(InputError, match="positive"):
        draw_gaze_prompt(frames, [0.0, 1.0], None, fov_deg=0)


def test_gaze_as_text_format_and_truncation():
    sp = np.array([[0.42, 0.61, 1.35, 0.3], [0.1, 1 / 3, 1.81, 0.38]])
    assert gaze_as_text(sp) == (
        "Gaze fixations (x, y in 0-1 of the frame; seconds from the clip start): (0.42, 0.61) 1.20-1.50 s; "
        "(0.10, 0.33) 1.62-2.00 s"
    )
    assert gaze_as_text(None) == "No gaze fixations."
    assert gaze_as_text(np.zeros((0, 4))) == "No gaze fixations."
    # 5 fixations given out of time order, keep the last 2 by start time, oldest first
    sp5 = np.array([[0.5, 0.5, t, 0.2] for t in (4.0, 0.0, 3.0, 1.0, 2.0)])
    text = gaze_as_text(sp5, max_fixations=2, decimals=1)
    assert text == (
        "Gaze fixations (x, y in 0-1 of the frame; seconds from the clip start; the last 2 of 5): "
        "(0.5, 0.5) 2.9-3.1 s; (0.5, 0.5) 3.9-4.1 s"
    )
    assert gaze_as_text(np.array([[0.5, 0.5, 0.0, 0.0]]), decimals=1).endswith("(0.5, 0.5) 0.0-0.0 s")  # no -0.0
    assert prepend_gaze_text("Which object?", None) == "No gaze fixations.\nWhich object?"
    with pytest.raises(InputError):
        gaze_as_text(sp, max_fixations=0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("B)", "B"),
        ("b.", "B"),
        ("b", "B"),
        ("  D. knife", "D"),
        ("(c) blue", "C"),
        ("B\nbecause the square is blue", "B"),
        ("The answer is C", "C"),
        ("The answer is (c).", "C"),
        ("Answer: D", "D"),
        ("The best option is: A", "A"),
        ("I think it is the blue square.", "B"),  # longest option text wins over "blue"
        ("Blue.", "C"),
        ("a knife", "D"),  # the article "a" is no letter
        ("the answer is a knife", "D"),
        ("The answer is E", None),  # not an option letter, no option text
        ("", None),
        ("I don't know", None),
        ("The red box or the knife", None),  # two option texts
        ("A. no wait, the answer is C", None),  # two different letters
        ("The answer is B. Answer: B", "B"),
        ("blue, not the blue square", None),  # "blue" on its own and inside "blue square"
    ],
)
def test_extract_letter(text, expected):
    assert extract_letter(text, OPTIONS) == expected


def test_extract_letter_yes_no_and_unlettered_options():
    yn = ["A. Yes", "B. No"]
    assert extract_letter("Yes, the kettle is there.", yn) == "A"
    assert extract_letter("No.", yn) == "B"
    assert extract_letter("Not yet", yn) is None
    assert extract_letter("cup", ["box", "cup"]) == "B"  # options without letters get A, B by position
    with pytest.raises(InputError):
        extract_letter("A", ["A. x", "A. y"])


def test_variants():
    assert list(VARIANTS) == ["no_gaze", "visual_prompt", "gaze_text", "gazeqwen_reference", "gazeqwen_spatial"]
    assert all(isinstance(v, str) and v for v in VARIANTS.values())
