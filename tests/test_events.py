"""Events from per-segment scores, detection scores, and plots."""

import numpy as np
import pytest

from zeroshot_audio.events import detection_scores, frame_timestamps, scores_to_events


def test_frame_timestamps_and_events():
    ts = frame_timestamps(4, 0.96, 3.5)
    np.testing.assert_allclose(ts, [0, 0.96, 1.92, 2.88, 3.5])
    scores = np.array([[0.1, 0.9], [0.8, 0.9], [0.9, 0.1], [0.2, 0.7]])
    events = scores_to_events(scores, ts, ["dog", "cat"], threshold=0.5)
    assert events == [(0.0, 1.92, "cat", 0.9), (0.96, 2.88, "dog", 0.9), (2.88, 3.5, "cat", 0.7)]


def test_attention_detection_score_peaks_where_attention_does():
    att = np.array([[0.1, 0.25], [0.7, 0.25], [0.2, 0.5]])
    out = detection_scores("attention", np.zeros((3, 2)), att, np.array([0.0, 2.0]))
    np.testing.assert_allclose(out[:, 0], np.array([0.1, 0.7, 0.2]) / 0.7 * 0.5)
    assert out[2, 1] == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_plot_attention_writes_a_png(tmp_path):
    from zeroshot_audio.plots import plot_attention

    att = np.full((10, 2), 0.1)
    att[3, 0], att[2, 0] = 0.5, 0.0
    out = plot_attention(tmp_path / "fig.png", timestamps=frame_timestamps(10, 0.96, 10.0), attention=att,
                         labels=["Dog", "Rain"], clip_scores=np.array([1.5, -0.3]), events=[(2.9, 3.8, "Dog")],
                         waveform=np.sin(np.linspace(0, 100, 160000)))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
