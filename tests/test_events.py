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


# ------------------------------------------------------------------- events of per-segment probabilities (issue 10)

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import soundfile as sf  # noqa: E402

from zeroshot_audio import ParameterError  # noqa: E402
from zeroshot_audio.events import EventOptions, probability_events  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _event_reference import reference_events  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"


def _planted_curves(rng, t=120, c=7):
    """Smooth random probabilities with bursts: runs, dips between them and isolated peaks."""
    base = rng.random((t, c)) ** 4
    for col in range(c):
        for _ in range(5):
            a = int(rng.integers(0, t - 3))
            n = int(rng.integers(1, 12))
            base[a : a + n, col] = np.maximum(base[a : a + n, col], rng.uniform(0.3, 1.0))
    return base


@pytest.mark.parametrize("options", [
    EventOptions(),
    EventOptions(threshold=0.5, low=0.5, min_gap=0.0, min_duration=0.0, refine="none"),
    EventOptions(threshold=0.6, low=0.2, min_gap=2.5, min_duration=1.5, refine="none"),
    EventOptions(threshold=0.7, low=0.35, min_gap=0.7, min_duration=0.9, refine="interpolate"),
])
def test_probability_events_equal_the_scalar_reference(rng, options):
    p = _planted_curves(rng)
    stamps = frame_timestamps(p.shape[0], 0.96, p.shape[0] * 0.96 - 0.3)
    present = np.repeat(rng.random((12, p.shape[1])) < 0.7, 10, axis=0)  # windows judged present or not
    col, onset, offset, peak = probability_events(p, stamps, options, present=present)
    assert np.all(np.diff(col) >= 0)
    n = 0
    for c in range(p.shape[1]):
        ref = reference_events(p[:, c].tolist(), stamps.tolist(), options, present[:, c].tolist())
        mine = list(zip(onset[col == c].tolist(), offset[col == c].tolist(), peak[col == c].tolist()))
        assert len(mine) == len(ref), c
        np.testing.assert_allclose(np.array(mine).reshape(-1, 3), np.array(ref).reshape(-1, 3), rtol=0, atol=1e-9)
        n += len(ref)
    assert n >= 7  # the curves plant events in every column: the comparison is not between empty lists


def test_hysteresis_gap_and_duration_on_a_planted_curve():
    p = np.array([0.1, 0.35, 0.6, 0.4, 0.1, 0.45, 0.1, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.32, 0.1])[:, None]
    stamps = np.arange(p.shape[0] + 1, dtype=float)  # hop 1 s
    opts = EventOptions(threshold=0.5, low=0.3, min_gap=0.0, min_duration=0.0, refine="none")
    # hysteresis: [1, 4) is one event (0.35 and 0.4 extend the 0.6 seed); 0.45 and 0.32 seed nothing
    _, on, off, peak = probability_events(p, stamps, opts)
    assert list(zip(on, off, peak)) == [(1.0, 4.0, 0.6), (9.0, 10.0, 0.7)]
    # the gap of 5 s is joined when min_gap exceeds it, not when it equals it
    _, on, off, _ = probability_events(p, stamps, EventOptions(low=0.3, min_gap=5.01, refine="none"))
    assert list(zip(on, off)) == [(1.0, 10.0)]
    _, on, off, _ = probability_events(p, stamps, EventOptions(low=0.3, min_gap=5.0, refine="none"))
    assert len(on) == 2
    # min_duration drops the 1 s event but keeps the 3 s one
    _, on, _, _ = probability_events(p, stamps, EventOptions(low=0.3, min_gap=0, min_duration=1.5, refine="none"))
    assert on.tolist() == [1.0]
    # an event may only start where `present` says: the 0.7 seed is masked, the first event is not
    mask = np.ones_like(p, dtype=bool)
    mask[9] = False
    _, on, _, _ = probability_events(p, stamps, opts, present=mask)
    assert on.tolist() == [1.0]


def test_refinement_places_the_onset_inside_the_segment_where_the_sound_starts():
    """A sound from 2.7 s to the end, heard by 1 s segments (hop 1 s) in proportion to how much of each it fills:
    segment 2 ([2, 3)) is 30 % filled. With low = 0.5, segment boundaries put the onset at 3.0; interpolation
    between centres puts it inside segment 2, nearer the truth."""
    truth = 2.7
    stamps = np.arange(9, dtype=float)
    p = np.clip(stamps[1:] - truth, 0, 1)[:, None]
    p = np.maximum(p, 0.01)
    coarse = probability_events(p, stamps, EventOptions(low=0.5, refine="none"))[1]
    fine = probability_events(p, stamps, EventOptions(low=0.5, refine="interpolate"))[1]
    assert coarse.tolist() == [3.0]
    assert 2.0 <= fine[0] < 3.0 and abs(fine[0] - truth) < abs(coarse[0] - truth)
    # a falling ramp: the offset likewise
    q = p[::-1].copy()
    off = probability_events(q, stamps, EventOptions(low=0.5, refine="interpolate"))[2]
    assert 5.0 <= off[0] < 6.0 and abs(off[0] - (8 - truth)) < 0.3


def test_event_options_are_checked():
    with pytest.raises(ParameterError, match=r"^low must be in \[0, threshold = 0.5\], got 0.6"):
        EventOptions(low=0.6)
    with pytest.raises(ParameterError, match="^min_duration must be >= 0 seconds"):
        EventOptions(min_duration=-1)
    with pytest.raises(ParameterError, match="^refine must be one of interpolate, none"):
        EventOptions(refine="spline")
    with pytest.raises(ParameterError, match="^threshold must be a finite number"):
        EventOptions(threshold=float("nan"))


def test_a_present_dog_gets_events_covering_its_barks_and_an_absent_bell_none(tagger):
    """The dog clip (barks from 0.1 s to 5.9 s) between 20 s and 26 s of quiet noise: "dog barking" has events
    covering the barks, in absolute time, and no event outside them; "church bell" has none, and its per-segment
    probability stays low everywhere (the old attention peaked as high for absent labels as for present ones)."""
    dog, sr = sf.read(EXAMPLES / "dog.flac", dtype="float32")
    quiet = 0.001 * np.random.default_rng(0).standard_normal(20 * sr).astype(np.float32)
    res = tagger.tag(np.concatenate([quiet, dog, quiet]), labels=["dog barking", "church bell"], sample_rate=sr)
    by = {r.label: r for r in res.labels}
    dog_r, bell = by["dog barking"], by["church bell"]
    assert dog_r.probability >= 0.5 and bell.probability < 0.5
    covered = sum(min(b, 26.0) - max(a, 20.0) for a, b, _ in dog_r.events if b > 20.0 and a < 26.0)
    assert covered > 0.8 * 6.0  # most of the barking is inside an event
    assert all(19.0 <= a and b <= 27.0 for a, b, _ in dog_r.events)  # and nothing outside it (1 s tolerance)
    assert not bell.events and bell.detection.max() < 0.2
    assert dog_r.detection.max() > 0.5 and dog_r.detection.shape == (len(res.segment_times),)
    # p_t is the calibration applied to the segment scores: the clip's probability is on its scale
    np.testing.assert_allclose(dog_r.detection, tagger.probability(dog_r.segment_scores), rtol=1e-5)
    assert dog_r.detection.min() <= dog_r.probability <= dog_r.detection.max() + 1e-6


def test_event_threshold_and_options_reach_the_tagger(tagger):
    dog = EXAMPLES / "dog.flac"
    strict = tagger.tag(dog, labels=["dog barking"], event_threshold=0.99)
    assert strict.labels[0].events == []  # no segment reaches 0.99
    split = tagger.tag(dog, labels=["dog barking"], event_options=EventOptions(low=0.5, min_gap=0, refine="none"))
    p = split.labels[0].detection
    ref = reference_events(p.tolist(), frame_timestamps(len(p), 0.96, split.duration).tolist(),
                           EventOptions(low=0.5, min_gap=0, refine="none"))
    assert [t for e in split.labels[0].events for t in e[:2]] == pytest.approx([t for e in ref for t in e[:2]])
    assert ref
    with pytest.raises(ParameterError, match="event_threshold must be a probability"):
        tagger.tag(dog, labels=["dog"], event_threshold=1.5)


def test_plot_timeline_writes_a_png(tmp_path):
    from zeroshot_audio.plots import plot_timeline

    p = np.full((10, 2), 0.02)
    p[3:6, 0] = 0.8
    out = plot_timeline(tmp_path / "t.png", timestamps=frame_timestamps(10, 0.96, 10.0), probability=p,
                        labels=["Dog", "Rain"], events=[(2.9, 5.8, "Dog")], truth=[(3.0, 5.5, "Dog")],
                        clip_probability=np.array([0.8, 0.02]), waveform=np.sin(np.linspace(0, 100, 160000)))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_cli_event_flags_default_to_event_options_and_name_a_bad_value(tmp_path, capsys):
    import dataclasses

    from zeroshot_audio.cli import build_parser, main
    from zeroshot_audio.cli.tag import EVENT_FLAGS

    args = build_parser().parse_args(["tag", "x.wav", "--labels", "dog"])
    defaults = EventOptions()
    assert {f: getattr(args, f"event_{f}") for f, _, _ in EVENT_FLAGS.values()} == dataclasses.asdict(defaults)
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog", "--event-low", "0.8"]) == 2
    assert "--event-low: low must be in [0, threshold = 0.5], got 0.8" in capsys.readouterr().err
    assert main(["tag", str(EXAMPLES / "dog.flac"), "--labels", "dog", "--min-duration", "-2"]) == 2
    assert "--min-duration: min_duration must be >= 0" in capsys.readouterr().err


def test_one_frame_axis_from_segment_times(embedder48, tagger):
    """frames_of(segment_times) is frame_timestamps(T, hop, duration) for real embedder output (hop 0.48 s, where
    the analysed windows overlap) and is what TagResult.frame_times and the timelines writer use."""
    from zeroshot_audio.events import frame_timestamps, frames_of
    from zeroshot_audio.writers import timeline_rows

    rng = np.random.default_rng(0)
    wav = 0.1 * rng.standard_normal(int(7.3 * 16000)).astype(np.float32)
    out = embedder48.embed(wav)
    assert (out.times[1:, 0] < out.times[:-1, 1]).all()  # the analysed windows overlap at hop 0.48
    np.testing.assert_allclose(frames_of(out.times, out.duration),
                               frame_timestamps(len(out.times), 0.48, out.duration), atol=1e-9)
    res = tagger.tag(wav, labels="rain;dog", sample_rate=16000)
    np.testing.assert_allclose(res.frame_times, frame_timestamps(len(res.segment_times), 0.96, res.duration))
    stamps, _, values = timeline_rows(res)
    np.testing.assert_array_equal(stamps, res.frame_times)
    assert values.shape == (len(res.segment_times), 2)
    with pytest.raises(ParameterError, match="segment starts"):
        frames_of(np.zeros((0, 2)), 1.0)
