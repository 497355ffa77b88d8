"""When a label is heard: per-segment detection scores and events (numpy only).

Per-segment scores come from a trained model (``segment_scores [T, C]`` and ``attention [T, C]``, see
:func:`zeroshot_audio.train.fit.predict_segments`). Two kinds are offered:

- ``"segment"``: the segment compatibility ``s_t(y)`` (any pooling; the mean-pooling model gives the
  baseline of the method's comparison);
- ``"attention"``: ``alpha_t(y) / max_t alpha_t(y) * sigmoid(F(y))``: where the attention of the class sits,
  scaled by how present the class is in the clip (attention models only).

Segment ``t`` is assigned the frame ``[t * hop, (t + 1) * hop)`` (the last one ends at the clip's end).
Detection against strong labels is scored in :mod:`zeroshot_audio.evaluation.detection`.

What a user gets from :meth:`zeroshot_audio.Tagger.tag` is built by :func:`probability_events`: per-segment
probabilities ``p_t(y)`` (the model's calibration applied to the segment score, the scale of the clip's
probability) turned into events by hysteresis, joined over short gaps, short ones dropped, and onsets and
offsets placed between segment centres where the curve crosses the threshold (:class:`EventOptions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._errors import ParameterError
from ._math import sigmoid

__all__ = ["DETECTION_KINDS", "frame_timestamps", "frames_of", "detection_scores", "active_runs", "run_maxima",
           "scores_to_events", "EventOptions", "REFINEMENTS", "probability_events"]

DETECTION_KINDS = ("segment", "attention")


def frame_timestamps(n_segments: int, hop: float, duration: float) -> np.ndarray:
    """``[T + 1]`` frame boundaries: ``0, hop, ..., (T - 1) * hop`` and the clip's end.

    The one frame axis of events, timelines and plots: segment ``t`` is *assigned* the frame ``[t * hop,
    (t + 1) * hop)`` (the last one ends at the clip's end), while the embedder's ``segment_times [T, 2]`` say
    which samples it *analysed* (``[t * hop, t * hop + window]``, overlapping when the hop is shorter than the
    window). :func:`frames_of` derives these boundaries from ``segment_times``.
    """
    if n_segments < 1 or hop <= 0:
        raise ParameterError(f"need n_segments >= 1 and hop > 0, got {n_segments} and {hop}")
    return frames_of(np.arange(n_segments) * float(hop), duration)


def frames_of(segment_starts: np.ndarray, duration: float) -> np.ndarray:
    """``[T + 1]`` frame boundaries of segments starting at ``segment_starts [T]`` (or ``segment_times [T, 2]``):
    the starts, then the clip's end (at least 1 ms after the last start)."""
    starts = np.asarray(segment_starts, dtype=np.float64)
    if starts.ndim == 2:
        starts = starts[:, 0]
    if starts.ndim != 1 or starts.size == 0:
        raise ParameterError(f"need segment starts [T >= 1] or segment_times [T, 2], got shape {starts.shape}")
    return np.r_[starts, max(float(duration), float(starts[-1]) + 1e-3)]


def detection_scores(
    kind: str, segment_scores: np.ndarray, attention: np.ndarray, clip_scores: np.ndarray
) -> np.ndarray:
    """Per-segment detection scores ``[T, C]`` of one clip (see the module docstring for the kinds)."""
    if kind == "segment":
        return np.asarray(segment_scores, dtype=np.float64)
    if kind == "attention":
        att = np.asarray(attention, dtype=np.float64)
        peak = np.maximum(att.max(axis=0, keepdims=True), 1e-12)
        presence = sigmoid(clip_scores)
        return att / peak * presence[None, :]
    raise ParameterError(f"unknown detection score kind {kind!r} (expected one of: {', '.join(DETECTION_KINDS)})")


def active_runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of True in each column of ``active [T, C]``, as ``(column, start, stop)`` arrays.

    A run covers rows ``start .. stop - 1``; runs are ordered by column, then by start. Vectorised: the
    cost is linear in ``T * C``, whatever the number of runs.
    """
    active = np.asarray(active, dtype=bool)
    edges = np.diff(np.pad(active.T.astype(np.int8), ((0, 0), (1, 1))), axis=1)  # [C, T + 1]
    col, start = np.nonzero(edges == 1)  # row-major: by column, then time; starts and stops alternate
    _, stop = np.nonzero(edges == -1)
    return col, start, stop


def run_maxima(scores: np.ndarray, col: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The maximum of ``scores [T, C]`` over each run of :func:`active_runs` (vectorised)."""
    if col.size == 0:
        return np.zeros(0, dtype=np.asarray(scores).dtype)
    t = scores.shape[0]
    flat = np.append(np.ascontiguousarray(np.asarray(scores).T).ravel(), 0)  # the sentinel makes every stop valid
    bounds = np.empty(2 * col.size, dtype=np.int64)
    bounds[0::2] = col * t + start
    bounds[1::2] = col * t + stop
    return np.maximum.reduceat(flat, bounds)[0::2]


def scores_to_events(
    scores: np.ndarray, timestamps: np.ndarray, classes: Sequence[str], *, threshold: float
) -> list[tuple[float, float, str, float]]:
    """Runs of frames scoring at least ``threshold`` as ``(onset, offset, label, peak score)``, by onset."""
    scores = np.asarray(scores)
    col, start, stop = active_runs(scores >= threshold)
    peaks = run_maxima(scores, col, start, stop)
    stamps = np.asarray(timestamps, dtype=np.float64)
    events = [(a, b, classes[c], p) for c, a, b, p in
              zip(col.tolist(), stamps[start].tolist(), stamps[stop].tolist(), peaks.astype(np.float64).tolist())]
    return sorted(events, key=lambda e: (e[0], e[2]))


#: How event boundaries are placed: ``"interpolate"`` (between segment centres, where the linearly interpolated
#: probability crosses ``low``) or ``"none"`` (segment boundaries, multiples of the hop).
REFINEMENTS = ("interpolate", "none")


@dataclass(frozen=True)
class EventOptions:
    """How per-segment probabilities ``p_t`` become events (defaults chosen on the corpus's strong labels; see
    ``docs/events.md``).

    Parameters
    ----------
    threshold : float
        An event starts where ``p_t >= threshold`` in a window where the label is judged present.
    low : float
        Hysteresis: an event extends over neighbouring segments while ``p_t >= low`` (at most ``threshold``).
    min_gap : float
        Events of one label separated by less than this many seconds are joined into one.
    min_duration : float
        Events shorter than this many seconds (after joining) are dropped.
    refine : {"interpolate", "none"}
        Onsets and offsets where the probability, interpolated between segment centres, crosses ``low``
        (``interpolate``), or at segment boundaries (``none``).
    """

    threshold: float = 0.5
    low: float = 0.3
    min_gap: float = 1.0
    min_duration: float = 0.0
    refine: str = "interpolate"

    def __post_init__(self) -> None:
        for name in ("threshold", "low", "min_gap", "min_duration"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ParameterError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ParameterError(f"threshold must be a probability in [0, 1], got {self.threshold}")
        if not 0.0 <= self.low <= self.threshold:
            raise ParameterError(f"low must be in [0, threshold = {self.threshold}], got {self.low}")
        for name in ("min_gap", "min_duration"):
            if getattr(self, name) < 0:
                raise ParameterError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")
        if self.refine not in REFINEMENTS:
            raise ParameterError(f"refine must be one of {', '.join(REFINEMENTS)}, got {self.refine!r}")


def _crossings(prob: np.ndarray, col: np.ndarray, inside: np.ndarray, outside: np.ndarray, centres: np.ndarray,
               level: float) -> np.ndarray:
    """Where ``prob[:, col]`` (linear between segment centres) crosses ``level`` between segment ``outside``
    (below ``level``) and its neighbour ``inside`` (at or above it)."""
    p_in = prob[inside, col].astype(np.float64)
    p_out = prob[outside, col].astype(np.float64)
    frac = np.clip((level - p_out) / np.maximum(p_in - p_out, 1e-12), 0.0, 1.0)  # 0 at outside's centre
    return centres[outside] + frac * (centres[inside] - centres[outside])


def probability_events(
    prob: np.ndarray,
    timestamps: np.ndarray,
    options: EventOptions = EventOptions(),
    *,
    present: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events of per-segment probabilities ``prob [T, C]``: ``(column, onset, offset, peak)`` arrays, ordered by
    column, then onset.

    An event is a run of segments with ``p_t >= low`` holding at least one segment with ``p_t >= threshold``
    where ``present`` (``[T, C]`` bool, default everywhere) is True; with ``refine="interpolate"`` its onset
    and offset lie where ``p_t``, linear between segment centres, crosses ``low`` (a run touching the start or
    the end of the recording starts at 0 or ends at its end); events of one column less than ``min_gap``
    seconds apart are joined; those shorter than ``min_duration`` are dropped. ``peak`` is the event's highest
    ``p_t``. Vectorised: linear in ``T * C``, whatever the number of events.

    Parameters
    ----------
    prob : np.ndarray [T, C]
        Per-segment probabilities.
    timestamps : np.ndarray [T + 1]
        Frame boundaries (:func:`frame_timestamps`).
    options : EventOptions
    present : np.ndarray [T, C] bool, optional
        Where an event may start (e.g. the windows where the label is judged present).
    """
    prob = np.asarray(prob)
    stamps = np.asarray(timestamps, dtype=np.float64)
    t = prob.shape[0]
    if stamps.shape != (t + 1,):
        raise ParameterError(f"timestamps must be [{t + 1}] for {t} segments, got {stamps.shape}")
    col, start, stop = active_runs(prob >= options.low)
    seeds = prob >= options.threshold
    if present is not None:
        seeds &= np.asarray(present, dtype=bool)
    keep = run_maxima(seeds.view(np.int8) if seeds.dtype == bool else seeds, col, start, stop) > 0
    col, start, stop = col[keep], start[keep], stop[keep]
    peak = run_maxima(prob, col, start, stop).astype(np.float64)
    onset, offset = stamps[start], stamps[stop]
    if options.refine == "interpolate" and col.size:
        centres = 0.5 * (stamps[:-1] + stamps[1:])
        inner = start > 0
        onset = onset.copy()
        onset[inner] = _crossings(prob, col[inner], start[inner], start[inner] - 1, centres, options.low)
        inner = stop < t
        offset = offset.copy()
        offset[inner] = _crossings(prob, col[inner], stop[inner] - 1, stop[inner], centres, options.low)
    if col.size > 1 and options.min_gap > 0:
        # a new group starts at each event that is not a continuation of the previous one of its column
        new = np.r_[True, (col[1:] != col[:-1]) | (onset[1:] - offset[:-1] >= options.min_gap)]
        first = np.flatnonzero(new)
        last = np.r_[first[1:], col.size] - 1
        peak = np.maximum.reduceat(peak, first)
        col, onset, offset = col[first], onset[first], offset[last]
    keep = (offset - onset >= options.min_duration) & (offset > onset)
    return col[keep], onset[keep], offset[keep], peak[keep]
