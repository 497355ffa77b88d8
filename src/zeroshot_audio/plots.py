"""Timelines: when each label is heard (:func:`plot_timeline`, ``zsa tag --plot``) and where in a clip the model
looks for each class (:func:`plot_attention`, the paper's Figure 2).

Drawn with matplotlib (Agg backend, PNG), imported only when a plot is made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._errors import missing_dependency

__all__ = ["plot_attention", "plot_timeline"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing_dependency("matplotlib", "plotting") from None
    return plt


def plot_attention(
    out: str | os.PathLike[str],
    *,
    timestamps: np.ndarray,
    attention: np.ndarray,
    labels: Sequence[str],
    clip_scores: np.ndarray | None = None,
    events: Sequence[tuple[float, float, str]] = (),
    waveform: np.ndarray | None = None,
    sample_rate: int = 16000,
    title: str = "",
    events_caption: str = "strong labels",
) -> Path:
    """Draw, for each label, its strong labels (when known) above its attention over time.

    Parameters
    ----------
    out : path
        PNG file to write (atomically).
    timestamps : np.ndarray [T + 1]
        Frame boundaries of the segments in seconds.
    attention : np.ndarray [T, L]
        Attention weights of the ``L`` labels (each column sums to 1 over the clip).
    labels : sequence of str
        The ``L`` label names.
    clip_scores : np.ndarray [L], optional
        Clip scores, shown beside each label.
    events : sequence of (onset, offset, label)
        Strong labels; those of the plotted labels are drawn as bars.
    waveform : np.ndarray [n], optional
        Drawn on top when given.
    """
    from ._io import atomic_path

    plt = _pyplot()
    timestamps = np.asarray(timestamps, dtype=float)
    attention = np.asarray(attention, dtype=float).reshape(len(timestamps) - 1, len(labels))
    n = len(labels)
    rows = n + (waveform is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.2 + 1.5 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    end = float(timestamps[-1])
    if waveform is not None:
        t = np.arange(len(waveform)) / sample_rate
        axes[0].plot(t, waveform, lw=0.4, color="0.3")
        axes[0].set_ylabel("audio")
        axes[0].set_yticks([])
    for i, label in enumerate(labels):
        ax = axes[i + (waveform is not None)]
        ax.stairs(attention[:, i], timestamps, fill=True, alpha=0.6, color="tab:blue", label="attention")
        ax.axhline(1.0 / max(len(timestamps) - 1, 1), color="0.5", lw=0.6, ls=":")
        top = max(float(attention[:, i].max()) * 1.35, 1e-6)
        for onset, offset, lab in events:
            if lab == label:
                ax.axvspan(onset, offset, ymin=0.88, ymax=0.98, color="tab:red", alpha=0.9)
        ax.set_ylim(0, top)
        score = "" if clip_scores is None else f"  (score {float(clip_scores[i]):.2f})"
        ax.set_ylabel("α", rotation=0, labelpad=10)
        ax.set_title(f"{label}{score}", loc="left", fontsize=9)
    axes[-1].set_xlim(0, end)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.text(0.99, 0.005, f"red bars: {events_caption}; blue: attention over time; dotted: uniform",
             ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out


def plot_timeline(
    out: str | os.PathLike[str],
    *,
    timestamps: np.ndarray,
    probability: np.ndarray,
    labels: Sequence[str],
    events: Sequence[tuple[float, float, str]] = (),
    truth: Sequence[tuple[float, float, str]] = (),
    clip_probability: np.ndarray | None = None,
    threshold: float = 0.5,
    waveform: np.ndarray | None = None,
    sample_rate: int = 16000,
    title: str = "",
    width: float = 9.0,
) -> Path:
    """Draw one lane per label: its per-segment probability on a 0-1 axis, a line at ``threshold``, its detected
    events shaded and, when known, the true events as bars above.

    Every lane has the same scale, so a label that is absent stays low wherever the model looks (unlike the
    attention, which sums to 1 for every label).

    Parameters
    ----------
    out : path
        PNG file to write (atomically).
    timestamps : np.ndarray [T + 1]
        Frame boundaries of the segments in seconds.
    probability : np.ndarray [T, L]
        Per-segment probabilities ``p_t`` of the ``L`` labels (:attr:`LabelResult.detection`).
    labels : sequence of str
        The ``L`` label names.
    events : sequence of (onset, offset, label)
        Detected events, shaded.
    truth : sequence of (onset, offset, label)
        True events (strong labels), drawn as bars at the top of their label's lane.
    clip_probability : np.ndarray [L], optional
        The recording's probability of each label, shown beside it (``*`` when judged present).
    threshold : float
        Where the dashed line is drawn (the event threshold).
    waveform : np.ndarray [n], optional
        Drawn on top when given.
    width : float
        Figure width in inches.
    """
    from ._io import atomic_path

    plt = _pyplot()
    timestamps = np.asarray(timestamps, dtype=float)
    prob = np.asarray(probability, dtype=float).reshape(len(timestamps) - 1, len(labels))
    n = len(labels)
    rows = n + (waveform is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(width, 0.9 + 1.0 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    if waveform is not None:
        t = np.arange(len(waveform)) / sample_rate
        step = max(1, len(waveform) // 200_000)  # a long recording: every sample would draw no better
        axes[0].plot(t[::step], waveform[::step], lw=0.3, color="0.3")
        axes[0].set_ylabel("audio", rotation=0, ha="right", va="center", fontsize=8)
        axes[0].set_yticks([])
    for i, label in enumerate(labels):
        ax = axes[i + (waveform is not None)]
        for onset, offset, lab in events:
            if lab == label:
                ax.axvspan(onset, offset, ymin=0, ymax=0.86, color="tab:orange", alpha=0.35, lw=0)
        for onset, offset, lab in truth:
            if lab == label:
                ax.axvspan(onset, offset, ymin=0.9, ymax=1.0, color="tab:green", alpha=0.9, lw=0)
        ax.stairs(prob[:, i], timestamps, color="tab:blue", lw=1.0, baseline=None)
        ax.axhline(threshold, color="0.4", lw=0.6, ls="--")
        ax.set_ylim(0, 1.16)
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(axis="y", labelsize=7)
        shown = label
        if clip_probability is not None:
            p = float(clip_probability[i])
            shown = f"{'* ' if p >= threshold else ''}{label}  ({p:.0%})"
        ax.set_title(shown, loc="left", fontsize=9, pad=2)
    axes[-1].set_xlim(0, float(timestamps[-1]))
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    caption = "blue: probability per segment; dashed: event threshold; orange: detected events"
    if truth:
        caption += "; green: true events"
    fig.text(0.99, 0.005, caption + ("; * judged present" if clip_probability is not None else ""),
             ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
