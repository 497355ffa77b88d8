"""Labels given by example clips: reading a folder of examples (:func:`read_examples`) and building a class from
them (:func:`build_classes`: the prototype of the examples' sound segments, scored by the model as a text label is;
docs/examples.md says how and why).

A folder of examples holds one sub-folder of audio clips per label, named by the label, or sub-folders of any
name plus ``labels.csv`` (columns ``folder,label``) for labels that cannot be folder names::

    examples/
        frog call/        a.wav  b.flac  c.ogg
        hum/              ref.wav
        labels.csv        (optional: folder,label)

Bad input never costs the run: an empty label folder, a folder that ``labels.csv`` does not name, a file that
is not in a label folder are warnings naming them (logged and kept in :attr:`ExampleSet.warnings`), and the rest
goes on; only a folder with no usable label folder at all is a :class:`~zeroshot_audio.ParameterError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ParameterError

__all__ = ["ExampleSet", "read_examples", "LABELS_FILE", "ExampleClasses", "build_classes", "prototype",
           "sound_segments", "EXAMPLE_SCALE", "EXAMPLE_BIAS", "EXAMPLE_LIFT"]

logger = logging.getLogger("zeroshot_audio.examples")

#: Name of the optional file of an examples folder that maps its sub-folders to labels (``folder,label``).
LABELS_FILE = "labels.csv"


@dataclass
class ExampleSet:
    """The example clips of each label, as :func:`read_examples` found them.

    Attributes
    ----------
    clips : dict of str to list of Path
        Label (cleaned as text labels are, :func:`zeroshot_audio.tagging.clean_labels`) -> its example files,
        sorted; in the order of the label folders (sorted by folder name).
    warnings : list of str
        One line per input skipped, naming it.
    """

    clips: dict[str, list[Path]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """The labels, in order."""
        return list(self.clips)


def _clean_label(raw: str) -> str:
    """``raw`` cleaned as a text label (:func:`~zeroshot_audio.tagging.clean_labels`); ParameterError if unusable."""
    from .tagging import clean_labels

    return clean_labels([raw])[0][0]


def _read_labels_csv(path: Path) -> dict[str, str]:
    """``folder -> label`` of ``labels.csv``; a malformed file is a ParameterError naming it (and the line)."""
    import csv
    import io

    from ._io import decode_text

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ParameterError(f"{path}: cannot be read ({err.strerror or err})") from None
    rows = csv.reader(io.StringIO(decode_text(data, str(path))))
    try:
        header = [h.strip().lower() for h in next(rows)]
    except StopIteration:
        raise ParameterError(f"{path}: empty (expected the columns folder,label)") from None
    except csv.Error as err:
        raise ParameterError(f"{path}: line 1: not CSV ({err})") from None
    if "folder" not in header or "label" not in header:
        raise ParameterError(f"{path}: line 1 must name the columns folder,label, got {','.join(header)!r}")
    i_folder, i_label = header.index("folder"), header.index("label")
    out: dict[str, str] = {}
    try:
        for row in rows:
            n = rows.line_num
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) <= max(i_folder, i_label):
                raise ParameterError(f"{path}: line {n}: expected the columns folder,label, got {len(row)} value(s)")
            folder, label = row[i_folder].strip(), row[i_label]
            if not folder:
                raise ParameterError(f"{path}: line {n}: the folder is empty")
            if folder in out:
                raise ParameterError(f"{path}: line {n}: the folder {folder!r} is listed twice")
            try:
                out[folder] = _clean_label(label)
            except ParameterError as err:
                raise ParameterError(f"{path}: line {n}: {err}") from None
    except csv.Error as err:
        raise ParameterError(f"{path}: line {rows.line_num}: not CSV ({err})") from None
    return out


def read_examples(directory: str | os.PathLike[str]) -> ExampleSet:
    """The example clips of each label in ``directory`` (see the module docstring).

    Parameters
    ----------
    directory : str or PathLike
        One sub-folder of audio clips per label (files with :data:`~zeroshot_audio.audio.AUDIO_EXTENSIONS`,
        sub-folders searched, hidden names skipped), named by the label or mapped to it by
        ``directory/labels.csv`` (columns ``folder,label``; several folders may give one label).

    Returns
    -------
    ExampleSet
        Warnings (also logged): an empty label folder (skipped), a folder not in ``labels.csv`` when it exists
        (skipped), a ``labels.csv`` row whose folder is missing, a folder name that is not a usable label, an
        audio file directly in ``directory``.

    Raises
    ------
    ParameterError
        ``directory`` is not a folder, ``labels.csv`` is malformed, or no label folder holds an audio file.
    """
    from .audio_files import AUDIO_EXTENSIONS, find_audio_files

    root = Path(directory)
    if not root.is_dir():
        raise ParameterError(f"examples {root}: {'not a folder' if root.exists() else 'no such folder'} "
                             "(expected one folder of example clips per label)")
    mapping = _read_labels_csv(root / LABELS_FILE) if (root / LABELS_FILE).is_file() else None
    out = ExampleSet()

    def warn(text: str) -> None:
        out.warnings.append(text)
        logger.warning("%s", text)

    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as err:
        raise ParameterError(f"examples {root}: cannot be read ({err.strerror or err})") from None
    folders = []
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            folders.append(e)
        elif os.path.splitext(e.name)[1].lower() in AUDIO_EXTENSIONS:
            warn(f"{root / e.name}: skipped, example clips go in one folder per label")
    clips: dict[str, list[Path]] = {}
    for e in folders:
        path = root / e.name
        if mapping is not None:
            if e.name not in mapping:
                warn(f"{path}: folder skipped, {root / LABELS_FILE} does not name it")
                continue
            label = mapping[e.name]
        else:
            try:
                label = _clean_label(e.name)
            except ParameterError as err:
                warn(f"{path}: folder skipped, its name is not a usable label ({err})")
                continue
        errors: list[tuple[Path, str]] = []
        files = find_audio_files([path], errors=errors)
        for where, reason in errors:
            out.warnings.append(f"{where}: {reason}")  # find_audio_files has logged it
        if not files:
            warn(f"{path}: label {label!r} skipped, the folder holds no audio file "
                 f"({', '.join(AUDIO_EXTENSIONS[:4])}, ...)")
            continue
        clips.setdefault(label, []).extend(files)
    if mapping is not None:
        present = {e.name for e in folders}
        for folder in mapping:
            if folder not in present:
                warn(f"{root / folder}: named in {root / LABELS_FILE} but not found")
    out.clips = {label: sorted(set(files)) for label, files in clips.items()}
    if not out.clips:
        raise ParameterError(f"examples {root}: no label folder holds an audio file (expected one folder of example "
                             f"clips per label{', named in ' + LABELS_FILE if mapping is not None else ''})")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Building classes from examples

#: Scale and bias mapping a segment's cosine similarity to its label's prototype onto the model's segment-score
#: scale (``s_t = scale * cos + bias``), so that the model's calibration gives probabilities whose 0.5 is the
#: best-F1 decision: fitted on the corpus's validation scenes with 3 examples per class from its training scenes
#: (``benchmarks/examples_eval.py --fit``), for the default model.
EXAMPLE_SCALE = 10.02
EXAMPLE_BIAS = -9.15
#: How far a label's examples may raise a segment's text score toward theirs when the label has text and examples:
#: ``s_t <- s_text + EXAMPLE_LIFT * max(0, s_examples - s_text)`` (the lift of :class:`~zeroshot_audio.model.
#: Prototypes`). The examples add evidence the text missed and never take away evidence it has. The best of
#: 0, 0.1, ..., 1 by mAP on the corpus's validation scenes with 3 examples per class
#: (``benchmarks/examples_mix.py``); it ties a lift that grows with how well the examples' YAMNet classes agree
#: with the text, and beat every blend ``(1 - m) s_text + m s_examples`` on target (b) (docs/examples.md).
EXAMPLE_LIFT = 0.4
#: A segment carries the sound when YAMNet's "Silence" probability is below this...
SILENCE_PROBABILITY = 0.5
#: ... and its most probable other class is at least this fraction of the clip's highest such probability.
SOUND_RATIO = 0.5

#: Most bytes of embedded example files kept in memory (:func:`_embed_example`), the least recently used dropped
#: first: 256 MiB hold about 11 hours of examples at YAMNet's 1545 values per 0.96 s.
CACHE_BYTES = 256 * 2**20


class _ExampleCache:
    """Embedded example files by ``(embedder, path, size, modification time)``: least recently used first out,
    within :data:`CACHE_BYTES`; safe across the tagging threads of ``zsa serve``."""

    def __init__(self) -> None:
        import threading
        from collections import OrderedDict

        self.items: OrderedDict[tuple, tuple[np.ndarray, float]] = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def get(self, key: tuple) -> tuple[np.ndarray, float] | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: tuple, value: tuple[np.ndarray, float]) -> None:
        size = int(value[0].nbytes)
        with self.lock:
            if key in self.items or size > CACHE_BYTES:
                return
            while self.items and self.bytes + size > CACHE_BYTES:
                _, (old, _) = self.items.popitem(last=False)
                self.bytes -= int(old.nbytes)
            self.items[key] = value
            self.bytes += size

    def __len__(self) -> int:
        return len(self.items)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.bytes = 0

    def forget(self, directory: str | os.PathLike[str]) -> None:
        """Drop the entries of files inside ``directory`` (``zsa serve``: a request's uploads, deleted after it)."""
        prefix = os.path.join(str(Path(directory).resolve()), "")
        with self.lock:
            for key in [k for k in self.items if k[1].startswith(prefix)]:
                self.bytes -= int(self.items.pop(key)[0].nbytes)


_CACHE = _ExampleCache()


@dataclass
class ExampleClasses:
    """Labels given by example, ready to score (:meth:`zeroshot_audio.tagging.Tagger.example_classes`).

    Attributes
    ----------
    vectors : dict of str to np.ndarray [Da]
        Label -> its prototype, a unit vector in the embedder's space.
    counts : dict of str to int
        Label -> how many of its examples were used.
    warnings : list of str
        One line per example or label skipped, naming it.
    """

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def sound_segments(segments: np.ndarray, *, audio_dim: int, silence: int | None) -> np.ndarray:
    """``[T]`` bool: the segments of an example that carry its sound.

    With the anchor logits after the ``audio_dim`` embedding dimensions (the default model's ``yamnet+logits``
    input) and YAMNet's "Silence" class at index ``silence``: the segments whose Silence probability is below
    :data:`SILENCE_PROBABILITY` (this drops digital silence and near-silence) and whose most probable other class
    reaches :data:`SOUND_RATIO` of the clip's best (this drops the quietest, emptiest segments). At least the
    clip's best segment is kept. Without logits every segment is kept.
    """
    x = np.asarray(segments, np.float32)
    if silence is None or x.shape[1] <= audio_dim:
        return np.ones(len(x), bool)
    from ._math import sigmoid

    p = sigmoid(x[:, audio_dim:].astype(np.float64))
    sil = p[:, silence].copy()
    p[:, silence] = 0.0
    peak = p.max(axis=1)
    keep = (sil < SILENCE_PROBABILITY) & (peak >= SOUND_RATIO * peak.max())
    if not keep.any():
        keep = peak == peak.max()
    return keep


def prototype(clips: Sequence[np.ndarray], *, audio_dim: int, silence: int | None) -> np.ndarray:
    """The unit vector of a label's examples: per clip, the mean of its sound segments' (:func:`sound_segments`)
    L2-normalised embeddings; the mean over clips (each clip counts once, however long), normalised."""
    means = []
    for x in clips:
        x = np.asarray(x, np.float32)
        e = x[sound_segments(x, audio_dim=audio_dim, silence=silence), :audio_dim]
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), np.float32(1e-12))
        means.append(e.mean(axis=0))
    m = np.mean(means, axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def _describe(item: Any, label: str, i: int) -> str:
    if isinstance(item, tuple):
        return f"example {i + 1} of {label!r} (a waveform)"
    return str(item)


def _embed_example(tagger: Any, item: Any, where: str) -> tuple[np.ndarray, float]:
    """``(segments [T, D], duration)`` of one example: a path (cached by path, size and modification time) or a
    ``(waveform, sample_rate)`` pair."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ParameterError(f"{where}: expected (waveform, sample_rate), got a tuple of {len(item)}")
        wave, sr = item
        _, out = tagger._embed(np.asarray(wave), int(sr))
        return np.asarray(out.embeddings, np.float32), float(out.duration)
    path = Path(item)
    try:
        st = path.stat()
        key = (repr(tagger.embedder.store_meta().identity()), str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    cached = _CACHE.get(key) if key is not None else None
    if cached is not None:
        return cached
    _, out = tagger._embed(path, None)
    value = (np.asarray(out.embeddings, np.float32), float(out.duration))
    if key is not None:
        _CACHE.put(key, value)
    return value


def build_classes(tagger: Any, examples: Mapping[str, Sequence[Any]]) -> ExampleClasses:
    """Embed each label's examples with ``tagger``'s embedder and build its prototype (:func:`prototype`).

    An example that fails to decode, or holds no sound, is skipped with a warning naming it; one shorter than one
    segment is used (padded, as the embedder does) with a warning; a label left without examples is skipped with
    a warning. Warnings are logged and returned.
    """
    from ._errors import ZsaError

    cfg = tagger.trained.config
    names = list(getattr(tagger.embedder, "class_names", None) or [])
    silence = names.index("Silence") if cfg.anchored and "Silence" in names else None
    window = float(getattr(tagger.embedder, "window", tagger.embedder.hop))
    out = ExampleClasses()

    def warn(text: str) -> None:
        out.warnings.append(text)
        logger.warning("%s", text)

    for label, items in examples.items():
        if isinstance(items, (str, os.PathLike, tuple)):
            items = [items]
        clips = []
        for i, item in enumerate(items):
            where = _describe(item, label, i)
            try:
                x, duration = _embed_example(tagger, item, where)
            except ZsaError as err:
                warn(f"{where}: example of {label!r} skipped ({str(err).splitlines()[0]})")
                continue
            if len(x) == 0:
                warn(f"{where}: example of {label!r} skipped, it holds no audio")
                continue
            if duration < window:
                warn(f"{where}: example of {label!r} is {duration:.2f} s, shorter than one segment "
                     f"({window:.3f} s): used, padded with silence")
            clips.append(x)
        if not clips:
            warn(f"label {label!r}: skipped, none of its {len(items)} example(s) could be used")
            continue
        out.vectors[label] = prototype(clips, audio_dim=cfg.audio_dim, silence=silence)
        out.counts[label] = len(clips)
    return out
