"""Zero-shot tagging for users: any audio, any labels, which are present, how confident, and when.

``load_model()`` gives a :class:`Tagger` for the shipped default model (or a model directory);
``tagger.tag(path_or_waveform, labels=[...])`` returns a :class:`TagResult` with, per label, the clip score, a
calibrated probability, the attention and segment scores over time and the detected events.

Long recordings are embedded in bounded memory (blocks, chunks) and scored in windows of ``window_segments``
segments (10 segments ≈ 10 s at hop 0.96 s, the clip length the model was trained on): a label's score is
its best window's, and events carry absolute times.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ParameterError
from ._math import sigmoid
from .events import EventOptions

__all__ = ["Tagger", "TagResult", "LabelResult", "load_model", "available_models", "clean_labels", "PRESENT",
           "EventOptions", "event_settings"]

#: Calibrated probability at which a label is judged present (in a window, for its events; in the recording, for
#: the table's mark): the calibration puts the best-F1 decision there (see the model card).
PRESENT = 0.5

#: Package directory of the shipped default model.
DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "default"

#: Scores (segments x labels) computed per model call when a recording is scored: bounds the model's temporaries.
_SCORE_CELLS = 1 << 23
#: Segment x label cells handled at once when events are assembled.
_EVENT_CELLS = 1 << 21


@dataclass
class LabelResult:
    """One label's outcome on one recording.

    Attributes
    ----------
    label : str
    score : float
        Clip score ``F(y)`` of the best window.
    probability : float
        Calibrated probability that the label is present.
    attention : np.ndarray [T]
        Attention over the segments (sums to 1 within each window).
    segment_scores : np.ndarray [T]
        Segment compatibility ``s_t(y)``.
    events : list of (onset, offset, score)
        Where the label is heard, absolute seconds, by onset: the events of :attr:`detection` under the tagging's
        :class:`~zeroshot_audio.events.EventOptions` (hysteresis from ``threshold`` down to ``low``, gaps under
        ``min_gap`` joined, events under ``min_duration`` dropped, boundaries interpolated between segment
        centres), started only in windows where the label is judged present (window probability >=
        :data:`PRESENT`); ``score`` is the event's highest per-segment probability.
    detection : np.ndarray [T] or None
        Per-segment probability ``p_t``: the model's calibration applied to the segment score ``s_t(y)``, the
        scale of :attr:`probability` (the clip score is an attention-weighted mean of segment scores), so
        comparable across labels, segments and recordings; ``--timelines`` writes it
        (:class:`zeroshot_audio.writers.TimelinesWriter`) and ``--plot`` draws it.
    """

    label: str
    score: float
    probability: float
    attention: np.ndarray
    segment_scores: np.ndarray
    events: list[tuple[float, float, float]] = field(default_factory=list)
    detection: np.ndarray | None = None


@dataclass
class TagResult:
    """The tags of one recording; ``labels`` are sorted best first."""

    file: str
    duration: float
    segment_times: np.ndarray  # [T, 2]: the samples each segment analysed
    labels: list[LabelResult]
    peak: float | None = None  # largest absolute sample (0.0: digitally silent)

    @property
    def frame_times(self) -> np.ndarray:
        """``[T + 1]`` frame boundaries that events, timelines and plots use: segment ``t`` is the frame
        ``frame_times[t] .. frame_times[t + 1]`` (:func:`zeroshot_audio.events.frames_of`)."""
        from .events import frames_of

        return frames_of(self.segment_times, self.duration)

    def to_json(self) -> dict[str, Any]:
        """``{"file", "duration", "labels": [{"label", "score", "probability", "present", "events": [...]}]}``."""
        return {
            "file": self.file,
            "duration": round(float(self.duration), 3),
            "labels": [
                {"label": r.label, "score": round(r.score, 4), "probability": round(r.probability, 4),
                 "present": bool(r.probability >= PRESENT),
                 "events": [{"onset": round(a, 3), "offset": round(b, 3), "score": round(s, 4)}
                            for a, b, s in r.events]}
                for r in self.labels
            ],
        }

    def to_dataframe(self):
        """One row per label: file, label, score, probability, n_events (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            from ._errors import missing_dependency

            raise missing_dependency("pandas", "TagResult.to_dataframe") from None
        return pd.DataFrame([{"file": self.file, "label": r.label, "score": r.score, "probability": r.probability,
                              "n_events": len(r.events)} for r in self.labels])


def control_character(text: str) -> str | None:
    """The first control character (Unicode category Cc: NUL, ESC, DEL, ...) in ``text``, or None.

    Whitespace is not asked about: :func:`clean_labels` turns tabs and line breaks into single spaces.
    """
    import unicodedata

    return next((c for c in text if unicodedata.category(c) == "Cc" and not c.isspace()), None)


def clean_labels(labels: Sequence[str] | str) -> tuple[list[str], list[str]]:
    """Labels stripped and deduplicated (order kept); returns ``(labels, duplicates)``.

    A string is split on ``;``; runs of whitespace (tabs, line breaks) become one space. A label may hold several
    wordings separated by ``|`` (``"dog barking|a dog barks"``: its embedding is their average), kept as
    ``"dog barking|a dog barks"``. Empty labels or wordings, labels holding a control character (NUL, ESC, ...)
    and an empty list are a :class:`ParameterError`.
    """
    from .text import WORDING_SEPARATOR, wordings

    if isinstance(labels, str):
        labels = labels.split(";")
    out: dict[str, None] = {}
    dups: list[str] = []
    for i, raw in enumerate(labels):
        if not isinstance(raw, str):
            raise ParameterError(f"label {i + 1} is not a string: {raw!r}")
        label = " ".join(raw.split())
        if not label:
            raise ParameterError(f"label {i + 1} is empty")
        if WORDING_SEPARATOR in label:
            parts = wordings(label)
            if not all(parts):
                raise ParameterError(f"label {i + 1} {raw!r} has an empty wording (wordings are separated by "
                                     f"{WORDING_SEPARATOR!r})")
            label = WORDING_SEPARATOR.join(parts)
        bad = control_character(label)
        if bad is not None:
            raise ParameterError(f"label {i + 1} {raw!r} holds the control character {bad!r} "
                                 f"(character {label.index(bad) + 1})")
        if label in out:
            dups.append(label)
        out[label] = None
    if not out:
        raise ParameterError("no labels given")
    return list(out), dups


def event_settings(event_threshold: float | None = None, options: EventOptions | None = None) -> EventOptions:
    """``options`` (default :class:`EventOptions`) with ``threshold`` replaced by ``event_threshold`` when given,
    ``low`` lowered to it when higher."""
    import dataclasses

    options = EventOptions() if options is None else options
    if not isinstance(options, EventOptions):
        raise ParameterError(f"event_options must be an EventOptions, got {type(options).__name__}")
    if event_threshold is None:
        return options
    try:
        value = float(event_threshold)
    except (TypeError, ValueError):
        raise ParameterError(f"event_threshold must be a probability in [0, 1], got {event_threshold!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ParameterError(f"event_threshold must be a probability in [0, 1], got {event_threshold!r}")
    return dataclasses.replace(options, threshold=value, low=min(options.low, value))


class Tagger:
    """A trained model with its embedder, label encoder and calibration, ready to tag audio."""

    def __init__(self, trained: Any, *, path: Path, window_segments: int = 10, batch_labels: int = 512):
        from .embedders import get_embedder

        self.trained = trained
        self.path = Path(path)
        emb = trained.embedder
        name = emb.get("embedder", "yamnet")
        self.embedder = get_embedder(name, hop=float(emb.get("hop", 0.96)))
        trained.check_embedder(self.embedder.store_meta().identity(), name=f"model {path}")
        cal = trained.info.get("calibration") or {}
        self.scale = float(cal.get("scale", 1.0))
        self.bias = float(cal.get("bias", 0.0))
        #: Whether :meth:`probability` is calibrated; when not, :attr:`uncalibrated_reason` says why.
        self.calibrated = cal.get("fitted", True) is not False and "scale" in cal and "bias" in cal
        self.uncalibrated_reason = None if self.calibrated else str(
            cal.get("reason") or "the model directory records no calibration")
        self.window_segments = int(window_segments)
        self.batch_labels = int(batch_labels)

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probability of clip scores: ``sigmoid(scale * F + bias)`` (the plain ``sigmoid(F)`` when the
        model has no calibration: see :attr:`calibrated`)."""
        return sigmoid(self.scale * np.asarray(scores, dtype=np.float64) + self.bias)

    def recording_scores(self, segments: Sequence[np.ndarray], label_embeddings: np.ndarray, *,
                         batch_windows: int = 256, prototypes: Any = None) -> np.ndarray:
        """Clip scores ``[N, L]`` of recordings given as stored segment embeddings (``segments[i]: [T_i, Da]``, as
        the model's embedder gives them; wider inputs, e.g. a ``yamnet+logits`` store for a ``yamnet`` model, are
        read up to the model's input width): each recording's best 10 s window, as :meth:`tag` scores it, with
        the windows of all recordings scored together in batches. :meth:`probability` turns them into the
        probabilities :meth:`tag` reports. ``prototypes``: labels given by example (:meth:`label_set`)."""
        w = self.window_segments
        dim = self.trained.config.input_dim
        emb = np.asarray(label_embeddings, dtype=np.float32)
        windows, owner = [], []
        for i, x in enumerate(segments):
            x = np.asarray(x, dtype=np.float32)
            if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < dim:
                raise ParameterError(f"recording {i}: segments must be [T >= 1, >= {dim}], got {x.shape}")
            for a in range(0, x.shape[0], w):
                windows.append(x[a : a + w, :dim])
                owner.append(i)
        best = np.full((len(segments), emb.shape[0]), -np.inf, np.float32)
        owners = np.asarray(owner, dtype=np.int64)
        for a in range(0, len(windows), batch_windows):
            chunk = windows[a : a + batch_windows]
            xb = np.zeros((len(chunk), w, dim), np.float32)
            mask = np.zeros((len(chunk), w), bool)
            for j, x in enumerate(chunk):
                xb[j, : len(x)], mask[j, : len(x)] = x, True
            np.maximum.at(best, owners[a : a + batch_windows],
                          self.trained.model.forward(xb, mask, emb, prototypes=prototypes).clip_scores)
        return best

    @property
    def name(self) -> str:
        """``default`` for the shipped model, else the model directory's name (never a full path)."""
        try:
            if Path(self.path).resolve() == DEFAULT_MODEL_DIR.resolve():
                return "default"
        except OSError:
            pass
        return Path(self.path).name

    def describe(self) -> dict[str, Any]:
        """What the model is, as ``zsa models info`` and ``GET /v1/models`` show it: name, embedder, label encoder,
        hop, sample rate, the number of classes trained on and a few of them, the calibration (None when
        uncalibrated) and, for a model adapted on example clips (``zsa adapt``), what it was adapted on."""
        trained = self.trained
        cal = trained.info.get("calibration") or {}
        calibration = ({k: v for k, v in cal.items() if isinstance(v, (bool, int, float, str))}
                       if self.calibrated else None)
        out: dict[str, Any] = {
            "name": self.name, "embedder": trained.embedder.get("embedder"),
            "label_encoder": trained.label_encoder.get("name"), "hop": float(self.embedder.hop),
            "sample_rate": int(self.embedder.sample_rate), "classes_trained_on": len(trained.classes),
            "calibration": calibration, "labels_example": list(trained.classes[:8])}
        adapted = trained.info.get("adapted")
        if adapted:
            out["adapted"] = {"labels": list(adapted.get("labels", [])), "base": adapted.get("base"),
                              "example_files": sum(len(v) for v in (adapted.get("examples") or {}).values()),
                              "settings": adapted.get("settings"), "date": adapted.get("date")}
        return out

    def label_embeddings(self, labels: Sequence[str]) -> np.ndarray:
        """``[L, Ds]``, encoded in batches (a list of 10,000 labels works) and cached on disk."""
        parts = [self.trained.label_embeddings(list(labels[i : i + self.batch_labels]))
                 for i in range(0, len(labels), self.batch_labels)]
        return np.concatenate(parts) if parts else np.zeros((0, self.trained.config.text_dim), np.float32)

    def embed_audio(self, audio: str | os.PathLike[str] | np.ndarray, *,
                    sample_rate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One recording's segments in the model's shared space: ``(embeddings [T, D], segment_times [T, 2])``.

        ``embeddings[t] = theta(x_t)``, the acoustic projection of segment ``t``; with :meth:`embed_text`,
        ``embed_audio(a)[0] @ embed_text(labels).T`` are the segment scores ``s_t(y) [T, L]`` that the model pools
        over time (array in, array out, as CLAP-style models offer); for a model anchored on YAMNet's class scores
        (the default) they are its learned residual, to which the semantic term
        (:meth:`~zeroshot_audio.model.NumpyModel.anchor_scores`) is added. ``audio`` is a path or a waveform, as for
        :meth:`tag`.
        """
        _, out = self._embed(audio, sample_rate)
        d = self.trained.config.dim
        return self.trained.model.project_audio(np.asarray(out.embeddings, np.float32))[:, :d], out.times

    def embed_text(self, labels: Sequence[str] | str) -> np.ndarray:
        """Labels in the model's shared space: ``[L, D]``, ``psi(phi(y))`` of each label (see :meth:`embed_audio`)."""
        labels, _ = clean_labels(labels)
        d = self.trained.config.dim
        return self.trained.model.encode_classes(self.label_embeddings(labels))[:, :d].astype(np.float32)

    def score(self, segments: np.ndarray, labels: Sequence[str] | str, *, mask: np.ndarray | None = None):
        """Score segment embeddings without a store: ``segments [N, T, Da]`` (or ``[T, Da]``), as the embedder
        gives them, against ``labels``. Returns :class:`~zeroshot_audio.model.NumpyOutput` with ``clip_scores
        [N, C]``, ``segment_scores [N, T, C]`` and ``attention [N, T, C]`` (one 10 s window's worth is what the
        model was trained on; :meth:`tag` windows longer recordings)."""
        labels, _ = clean_labels(labels)
        x = np.asarray(segments, np.float32)
        if x.ndim == 2:
            x = x[None]
        return self.trained.model.forward(x, mask, self.label_embeddings(labels), return_segments=True)

    def example_classes(self, examples: Any):
        """Labels given by example clips, embedded and built into classes
        (:func:`zeroshot_audio.examples.build_classes`).

        ``examples`` is a mapping ``label -> [paths or (waveform, sample_rate)]``, an
        :class:`~zeroshot_audio.examples.ExampleSet`, or a folder (:func:`~zeroshot_audio.examples.read_examples`).
        Labels are cleaned as text labels are. Returns an :class:`~zeroshot_audio.examples.ExampleClasses`.
        """
        from .examples import ExampleSet, build_classes, read_examples

        warnings: list[str] = []
        if isinstance(examples, (str, os.PathLike)):
            examples = read_examples(examples)
        if isinstance(examples, ExampleSet):
            warnings, examples = list(examples.warnings), examples.clips
        if not hasattr(examples, "items"):
            raise ParameterError(f"examples must be a mapping of label -> example clips, an ExampleSet or a folder, "
                                 f"got {type(examples).__name__}")
        merged: dict[str, list[Any]] = {}
        for raw, items in examples.items():
            label = clean_labels([raw])[0][0]
            if isinstance(items, (str, os.PathLike, tuple)):
                items = [items]
            merged.setdefault(label, []).extend(items)
        out = build_classes(self, merged)
        out.warnings[:0] = warnings
        return out

    def label_set(self, labels: Sequence[str] | str | None, examples: Any = None):
        """The labels of a call with their encodings: ``(labels, label_embeddings, prototypes, warnings)``.

        Text labels come first, then the labels that only examples define; for a label with text and examples the
        examples may raise each segment's text score toward theirs, never lower it
        (:data:`zeroshot_audio.examples.EXAMPLE_LIFT`). ``prototypes`` is None without
        examples, else a :class:`~zeroshot_audio.model.Prototypes` for :meth:`tag_encoded` and :meth:`recording_scores`.
        """
        from .examples import EXAMPLE_BIAS, EXAMPLE_LIFT, EXAMPLE_SCALE
        from .model import Prototypes

        if examples is None:
            labels, _ = clean_labels(labels if labels is not None else [])
            return labels, self.label_embeddings(labels), None, []
        text = clean_labels(labels)[0] if labels is not None and len(labels) else []
        ex = self.example_classes(examples)
        only = [lab for lab in ex.vectors if lab not in text]
        kept = [lab for lab in text if lab in ex.vectors]
        everything = text + only
        if not everything:
            raise ParameterError("no labels: neither text labels nor any usable example")
        emb = np.concatenate([self.label_embeddings(text),
                              np.zeros((len(only), self.trained.config.text_dim), np.float32)])
        dim = self.trained.config.audio_dim
        vectors = np.zeros((len(everything), dim), np.float32)
        mix = np.zeros(len(everything), np.float32)
        lift = np.zeros(len(everything), np.float32)
        for i, lab in enumerate(everything):
            if lab in ex.vectors:
                vectors[i] = ex.vectors[lab]
                if lab in kept:
                    lift[i] = EXAMPLE_LIFT
                else:
                    mix[i] = 1.0
        return everything, emb, Prototypes(vectors, mix, EXAMPLE_SCALE, EXAMPLE_BIAS, lift), ex.warnings

    def tag(self, audio: str | os.PathLike[str] | np.ndarray, *, labels: Sequence[str] | str | None = None,
            examples: Any = None, sample_rate: int | None = None, event_threshold: float | None = None,
            event_options: EventOptions | None = None) -> TagResult:
        """Tag one recording: a path, or a waveform with its ``sample_rate``, as an array ``[samples]`` or
        ``[samples, channels]`` (soundfile's layout, channels averaged; anything else is a
        :class:`ParameterError` giving the shape, see :func:`zeroshot_audio.audio.mono_waveform`).

        Events follow ``event_options`` (default :class:`~zeroshot_audio.events.EventOptions`); ``event_threshold``,
        when given, replaces its ``threshold`` (and lowers ``low`` to it when ``low`` is higher).

        ``examples``: labels given by example clips, ``{"label": [paths or (waveform, sample_rate)]}``, an
        :class:`~zeroshot_audio.examples.ExampleSet` or a folder of them (docs/examples.md). A label in ``labels``
        and ``examples`` uses both; a label only in ``examples`` is defined by them. Examples that cannot be used
        are warned about (logged, naming them) and skipped."""
        return self.tag_batch([audio], labels=labels, examples=examples, sample_rate=sample_rate,
                              event_threshold=event_threshold, event_options=event_options)[0]

    def tag_batch(self, audios: Sequence[Any], *, labels: Sequence[str] | str | None = None, examples: Any = None,
                  sample_rate: int | None = None, event_threshold: float | None = None,
                  event_options: EventOptions | None = None) -> list[TagResult]:
        """Tag several recordings with one label set (label embeddings and example classes computed once); events
        and ``examples`` as in :meth:`tag`."""
        labels, emb, prototypes, _ = self.label_set(labels, examples)
        options = event_settings(event_threshold, event_options)
        return [self.tag_encoded(a, labels, emb, sample_rate=sample_rate, event_options=options,
                                 prototypes=prototypes) for a in audios]

    def _embed(self, audio: Any, sample_rate: int | None):
        from .embed import embed_file

        if isinstance(audio, np.ndarray):
            from .audio import waveform_at

            if sample_rate is None:
                raise ParameterError("a waveform needs its sample_rate")
            return "<array>", self.embedder.embed(waveform_at(audio, sample_rate, self.embedder.sample_rate))
        return str(audio), embed_file(self.embedder, audio)

    def _scores(self, x: np.ndarray, label_embeddings: np.ndarray,
                prototypes: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``clip [n_win, L]``, ``attention [T, L]`` and ``segment_scores [T, L]`` (float32) of segment embeddings
        ``x [T, Da]`` scored in windows of ``window_segments``; groups of windows are scored in turn, so only the
        returned arrays are ever held whole."""
        t, w = x.shape[0], self.window_segments
        n_labels = label_embeddings.shape[0]
        n_win = max(1, -(-t // w))
        xw = np.concatenate([np.asarray(x, np.float32), np.zeros((n_win * w - t, x.shape[1]), np.float32)])
        xw = xw.reshape(n_win, w, -1)
        mask = (np.arange(n_win * w) < t).reshape(n_win, w)
        k = np.ascontiguousarray(label_embeddings, dtype=np.float32)
        clip = np.empty((n_win, n_labels), np.float32)
        att = np.empty((n_win * w, n_labels), np.float32)
        seg = np.empty((n_win * w, n_labels), np.float32)
        step = max(1, _SCORE_CELLS // (w * max(n_labels, 1)))
        model = self.trained.model
        for a in range(0, n_win, step):
            b = min(n_win, a + step)
            res = model.forward(xw[a:b], mask[a:b], k, return_segments=True, prototypes=prototypes)
            clip[a:b] = res.clip_scores
            att[a * w : b * w] = res.attention.reshape((b - a) * w, n_labels)
            seg[a * w : b * w] = res.segment_scores.reshape((b - a) * w, n_labels)
            del res
        return clip, att[:t], seg[:t]

    def _events(self, seg: np.ndarray, clip: np.ndarray, stamps: np.ndarray, options: EventOptions,
                detection: np.ndarray | None = None) -> list[list[tuple[float, float, float]]]:
        """Per label, its events ``(onset, offset, score)`` by onset (see :class:`LabelResult`); the per-segment
        probabilities ``[T, L]`` are written into ``detection`` when it is given.

        Linear in ``T * L`` plus the number of events: labels are handled in blocks of columns, events found by
        array operations (:func:`~zeroshot_audio.events.probability_events`).
        """
        from .events import probability_events

        t, n_labels = seg.shape
        win_of = np.arange(t) // self.window_segments
        events: list[list[tuple[float, float, float]]] = [[] for _ in range(n_labels)]
        block = max(1, _EVENT_CELLS // max(t, 1))
        for a in range(0, n_labels, block):
            b = min(n_labels, a + block)
            # p_t: the calibration applied to the segment scores (the clip score's scale); events start only in
            # windows where the label is judged present
            prob = self.probability(seg[:, a:b]).astype(np.float32)
            if detection is not None:
                detection[:, a:b] = prob
            present = (self.probability(clip[:, a:b]) >= PRESENT)[win_of]
            col, onset, offset, peak = probability_events(prob, stamps, options, present=present)
            for c, on, off, score in zip((col + a).tolist(), onset.tolist(), offset.tolist(), peak.tolist()):
                events[c].append((on, off, score))
        return events

    def tag_encoded(self, audio: Any, labels: list[str], label_embeddings: np.ndarray, *,
                    sample_rate: int | None = None, event_threshold: float | None = None,
                    event_options: EventOptions | None = None, prototypes: Any = None) -> TagResult:
        """Tag one recording with labels already cleaned and embedded (:meth:`label_embeddings`, or
        :meth:`label_set` with its ``prototypes`` for labels given by example): the loop body of :meth:`tag_batch`,
        for callers that handle each file's failure themselves.

        Time and memory are linear in segments x labels (1 h of audio with 10,000 labels: see
        ``benchmarks/tag_speed.py``).
        """
        from ._errors import CheckpointError
        from .events import frames_of

        if len(labels) != len(label_embeddings):
            raise ParameterError(f"{len(labels)} labels but {len(label_embeddings)} label embeddings")
        name, out = self._embed(audio, sample_rate)
        clip, att, seg = self._scores(out.embeddings, label_embeddings, prototypes)
        if not np.isfinite(clip).all():
            raise CheckpointError(f"model {self.path}: non-finite scores (NaN or infinity) for {name}: the model's "
                                  "weights or the label embeddings are damaged")
        best = clip.max(axis=0)
        prob = self.probability(best)
        stamps = frames_of(out.times, out.duration)  # = TagResult.frame_times
        det = np.empty_like(seg)
        events = self._events(seg, clip, stamps, event_settings(event_threshold, event_options), det)
        results = [LabelResult(lab, float(best[i]), float(prob[i]), att[:, i], seg[:, i], events[i], det[:, i])
                   for i, lab in enumerate(labels)]
        results.sort(key=lambda r: -r.score)
        return TagResult(file=name, duration=float(out.duration), segment_times=out.times, labels=results,
                         peak=out.peak)


def available_models() -> list[str]:
    """Names accepted by :func:`load_model` besides a model directory."""
    return ["default"] if (DEFAULT_MODEL_DIR / "config.json").is_file() else []


def load_model(name: str | os.PathLike[str] = "default", **options: Any) -> Tagger:
    """The shipped default model (``"default"``) or a model directory written by ``zsa train``."""
    from .checkpoint import TrainedModel

    if str(name) == "default":
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise ParameterError(f"the default model is not shipped in this installation ({DEFAULT_MODEL_DIR})")
        path = DEFAULT_MODEL_DIR
    else:
        path = Path(name)
    return Tagger(TrainedModel.load(path), path=path, **options)
