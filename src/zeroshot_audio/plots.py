"""Attention timelines: where in a clip the model looks for each class (the paper's Figure 2).

Drawn with matplotlib (Agg backend, PNG), imported only when a plot is made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._errors import missing_dependency

__all__ = ["plot_attention"]


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
