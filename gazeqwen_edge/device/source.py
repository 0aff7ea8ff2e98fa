"""The one interface every source implements: replay readers, synthetic scenes, the live Neon."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

import numpy as np

from gazeqwen_edge.device.records import CameraIntrinsics, GazeSample, Record


class Source(ABC):
    """Iterate records in time order; know the scene size and intrinsics; close cleanly.

    `kinds` restricts what is delivered (e.g. {GazeSample, Fixation} for gaze-only analysis) so a reader can skip
    decoding what nobody asked for.
    """

    name: str = "source"

    @property
    def scene_size(self) -> tuple[int, int] | None:
        """(width, height) of the scene camera in px, or None if the source has no scene camera."""
        return None

    @property
    def intrinsics(self) -> CameraIntrinsics | None:
        return None

    @property
    def gaze_offset(self) -> tuple[float, float]:
        """Wearer offset in scene px (to be ADDED to raw gaze) as recorded with the source; (0, 0) if none.

        Sign convention (image px, x right, y down): corrected = (x + dx, y + dy). Records carry raw gaze, so sources
        whose files store corrected gaze remove the offset when reading: Neon native recordings store gaze with
        info.json's `gaze_offset` already added (checked on the demo recording: stored gaze minus the app's own
        fixation means is (+27.1, +6.7) px for gaze_offset [27.24, 6.64]); Pupil Cloud exports and our sessions
        likewise store corrected gaze in gaze.csv. Adding `gaze_offset` to a record gives back what the app showed.
        """
        return (0.0, 0.0)

    @property
    def start_ns(self) -> int | None:
        return None

    @property
    def end_ns(self) -> int | None:
        return None

    @abstractmethod
    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        """All records in non-decreasing `ts_ns` order (live sources reach this by holding records for a short
        reorder window; see `NeonLiveSource.records`)."""

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files, sockets, decoders. Safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecordedSource(Source):
    """A recorded source that holds its gaze as arrays: subclasses provide `_gaze` = (ts_ns int64, x, y, worn), raw
    gaze without the wearer offset, in time order."""

    _gaze: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    def gaze_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts_ns, x, y) of the gaze without the wearer offset."""
        ts, x, y, _ = self._gaze
        return ts, x, y

    def _gaze_records(self) -> Iterator[GazeSample]:
        ts, x, y, worn = self._gaze
        for t, a, b, w in zip(ts.tolist(), x.tolist(), y.tolist(), worn.tolist(), strict=True):
            yield GazeSample(t, a, b, w)
