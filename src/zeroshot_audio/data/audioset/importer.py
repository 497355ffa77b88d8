"""Importing the AudioSet released features into an embedding store and a dataset directory.

:func:`import_audioset_features` reads the public AudioSet "released features" (``*.tfrecord`` files of
128-d uint8-quantised, PCA-whitened VGGish embeddings, one per 0.96 s) with
:mod:`zeroshot_audio.data.audioset.tfrecord` and writes a store plus the matching ``clips.csv`` with AudioSet
class names: this is how the paper's setting is reproduced at full scale.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._errors import DataError, ParameterError, name_some
from ..dataset import SPLITS, read_dataset, write_dataset
from ..store import StoreMeta, StoreWriter
from .classes import NUM_CLASSES, audioset_classes
from .tfrecord import EMBEDDING_BYTES, _context, _embeddings, _iter_records, clip_key, dequantize

__all__ = ["AUDIOSET_STORE_META", "ImportFailure", "ImportSummary", "import_audioset_features"]

logger = logging.getLogger(__name__)

#: Store identity of imported AudioSet released features (VGGish, 0.96 s frames, dequantised, float16).
AUDIOSET_STORE_META = StoreMeta(
    embedder="vggish-audioset",
    embedder_version="release-v1",
    dim=EMBEDDING_BYTES,
    hop=0.96,
    window=0.96,
    dtype="float16",
    extra={
        "source": "AudioSet released features (VGGish, PCA-whitened, uint8-quantised)",
        "dequantisation": "x = q * 4 / 255 - 2",
    },
)


# ------------------------------------------------------------------------------------------------ import


@dataclass(frozen=True)
class ImportFailure:
    """A record or clip that was not imported.

    Attributes
    ----------
    file : str
        The ``.tfrecord`` file.
    record : int or None
        0-based record number in the file (None: the file itself, e.g. unreadable).
    key : str or None
        Clip key when the record could be decoded that far.
    reason : str
        One line.
    """

    file: str
    record: int | None
    key: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.record is None else f"{self.file}: record {self.record}"
        return f"{where}{f' ({self.key})' if self.key else ''}: {self.reason}"


@dataclass
class ImportSummary:
    """What :func:`import_audioset_features` did.

    Attributes
    ----------
    files : int
        ``.tfrecord`` files read.
    records : int
        Records read (including failed ones).
    clips : int
        Clips imported by this run and listed in the dataset: ``added + skipped``.
    added : int
        Clips newly written to the store.
    skipped : int
        Clips already in the store (resumed run), not rewritten.
    failures : list of ImportFailure
        Records and clips that were not imported, with reasons.
    """

    files: int = 0
    records: int = 0
    clips: int = 0
    added: int = 0
    skipped: int = 0
    failures: list[ImportFailure] = field(default_factory=list)


def _find_tfrecords(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ParameterError(f"import_audioset_features: {root} does not exist (expected a directory of *.tfrecord)")
    files = sorted(p for p in root.rglob("*.tfrecord") if p.is_file())
    if not files:
        raise ParameterError(f"import_audioset_features: {root} holds no *.tfrecord files")
    return files


def import_audioset_features(
    tfrecord_dir: str | os.PathLike[str],
    *,
    out_store: str | os.PathLike[str],
    out_data: str | os.PathLike[str],
    split: str | None = None,
    merge: bool = True,
    verify: bool = True,
    progress: bool = False,
) -> ImportSummary:
    """Import the AudioSet released features into an embedding store and a dataset directory.

    Parameters
    ----------
    tfrecord_dir : str or os.PathLike
        Directory searched recursively for ``*.tfrecord`` files (e.g. ``audioset_v1_embeddings/bal_train``),
        or one such file.
    out_store : str or os.PathLike
        Embedding store, created or resumed, with identity :data:`AUDIOSET_STORE_META` (``vggish-audioset``,
        ``release-v1``, 128-d, hop and window 0.96 s, float16). Each clip's frames are dequantised with
        :func:`dequantize`; its key is :func:`clip_key` and its duration ``end - start`` (``T * 0.96`` when
        the record has no valid times).
    out_data : str or os.PathLike
        Dataset directory written with :func:`~zeroshot_audio.data.dataset.write_dataset`: ``clips.csv`` with
        ``filename`` = the clip key (there are no audio files: the store holds the data), ``labels`` = the
        AudioSet display names, ``split`` and ``family`` = the video id; ``classes.csv`` with the 527 classes
        and their ontology descriptions.
    split : {'train', 'val', 'test'}, optional
        Split of every clip of this run (e.g. ``'train'`` for balanced_train, ``'test'`` for eval); default
        unassigned.
    merge : bool, default True
        When ``out_data`` already holds a dataset, keep those of its clips that this run did not read and that
        are in the store (with their labels and split), so that e.g. balanced_train and eval can be imported
        one after the other into one store and one dataset. False: the dataset lists only this run's clips.
    verify : bool, default True
        Check the CRC32C of every length and record (numpy, vectorised across records; False skips it).
    progress : bool, default False
        Show a progress bar over the files.

    Returns
    -------
    ImportSummary
        Counts and failures. A clip with no frames, a label index outside 0..526 or a malformed frame is
        recorded in the store's ``failures.csv`` and in the summary. A record that cannot be read (bad CRC,
        undecodable) is only in the summary, named by file and record number: a bad data CRC skips that
        record; a truncated file or a bad length CRC ends that file (the records before are imported).

    Raises
    ------
    ParameterError
        ``split`` is invalid or ``tfrecord_dir`` holds no ``*.tfrecord`` file.
    StoreError
        ``out_store`` exists and was made by another embedder.
    DataError
        ``merge`` and the existing dataset at ``out_data`` is unreadable or not an AudioSet dataset.

    Notes
    -----
    Resumable: clips whose key is already in the store are not rewritten (but are listed in the dataset).
    Records are streamed and embeddings held only until their shard is written (the store's shard size);
    what grows with the number of clips is one small row per clip for ``clips.csv``, written at the end.
    """
    if split is not None and split not in ("", *SPLITS):
        raise ParameterError(
            f"import_audioset_features: unknown split {split!r} (expected one of: {', '.join(SPLITS)}, or None)"
        )
    files = _find_tfrecords(Path(tfrecord_dir))
    classes = audioset_classes()
    names = [c.name for c in classes]
    out_data = Path(out_data)
    previous = _previous_rows(out_data, set(names)) if merge else {}

    summary = ImportSummary()
    iterator: Iterable[Path] = files
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="tfrecord files", unit="file")
    with StoreWriter(out_store, AUDIOSET_STORE_META) as writer:
        importer = _Importer(writer, summary, names, split or None, verify=verify)
        for path in iterator:
            importer.read_file(path)
        rows = importer.rows
        dropped = 0
        for key, row in previous.items():
            if key in rows:
                continue
            if key in writer:
                rows[key] = row
            else:
                dropped += 1
    if dropped:
        logger.info("not keeping %d clip(s) of %s that are not in store %s", dropped, out_data, out_store)
    keys = list(rows)
    write_dataset(
        out_data,
        filenames=keys,
        labels=[rows[k][0] for k in keys],
        splits=[rows[k][1] for k in keys],
        families=[rows[k][2] for k in keys],
        classes=names,
        descriptions={c.name: c.description for c in classes},
    )
    logger.info(
        "AudioSet import: %d files, %d records: %d clips added, %d already stored, %d failures; dataset %s"
        " holds %d clips",
        summary.files,
        summary.records,
        summary.added,
        summary.skipped,
        len(summary.failures),
        out_data,
        len(keys),
    )
    return summary


_Row = tuple[tuple[str, ...], str | None, str]  # labels, split, family


class _Importer:
    """State of one :func:`import_audioset_features` run: decodes records and adds them to the store."""

    def __init__(
        self, writer: StoreWriter, summary: ImportSummary, names: list[str], split: str | None, *, verify: bool
    ) -> None:
        self.writer = writer
        self.verify = verify
        self.summary = summary
        self.names = names
        self.split = split
        self.rows: dict[str, _Row] = {}  # key -> dataset row, for the clips of this run
        self.origin: dict[str, Path] = {}  # key -> file it was first read from, for duplicates
        self.label_sets: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct label set

    def fail(self, path: Path, record: int | None, key: str | None, reason: str) -> None:
        failure = ImportFailure(str(path), record, key, reason)
        self.summary.failures.append(failure)
        logger.warning("AudioSet import: %s", failure)

    def read_file(self, path: Path) -> None:
        self.summary.files += 1
        try:
            for rec in _iter_records(path, verify=self.verify):
                self.summary.records += 1
                if rec.data is None:
                    more = "; the rest of the file is not read" if rec.fatal else ""
                    self.fail(path, rec.number, None, f"{rec.error} at byte {rec.offset}{more}")
                else:
                    self.add_record(path, rec.number, rec.data)
        except OSError as e:
            self.fail(path, None, None, f"cannot be read ({e.strerror or e})")

    def add_record(self, path: Path, number: int, data: bytes) -> None:
        try:
            video_id, start, end, labels, lists = _context(data)
        except DataError as e:
            self.fail(path, number, None, f"undecodable SequenceExample: {e}")
            return
        if not video_id or video_id != video_id.strip() or any(c in video_id for c in "\t\n\r"):
            self.fail(path, number, None, f"invalid video_id {video_id!r}")
            return
        if start is None or not math.isfinite(start) or start < 0:
            self.fail(path, number, None, f"video {video_id}: missing or invalid start_time_seconds {start!r}")
            return
        key = clip_key(video_id, start)
        if key in self.origin:
            self.fail(path, number, key, f"duplicate clip (first in {self.origin[key]})")
            return
        self.origin[key] = path
        bad = [i for i in labels if not 0 <= i < NUM_CLASSES]
        problem = f"label index {name_some(bad)} is not in 0..{NUM_CLASSES - 1}" if bad else None
        if key in self.writer:
            if problem is not None:  # stored by an earlier run, but cannot be listed with these labels
                self.fail(path, number, key, problem)
                return
            self.summary.skipped += 1
        else:
            frames = np.zeros((0, EMBEDDING_BYTES), dtype=np.uint8)
            if problem is None:
                try:
                    frames = _embeddings(lists)
                except DataError as e:
                    problem = str(e)
            if problem is None and frames.shape[0] == 0:
                problem = "no audio_embedding frames"
            if problem is not None:
                self.writer.add_failure(key, problem)
                self.fail(path, number, key, problem)
                return
            valid_times = end is not None and math.isfinite(end) and end > start
            duration = end - start if valid_times else frames.shape[0] * AUDIOSET_STORE_META.hop
            self.writer.add(key, dequantize(frames), duration=float(duration))
            self.summary.added += 1
        names = tuple(dict.fromkeys(self.names[i] for i in labels))
        self.rows[key] = (self.label_sets.setdefault(names, names), self.split, video_id)
        self.summary.clips += 1


def _previous_rows(out_data: Path, class_names: set[str]) -> dict[str, _Row]:
    """Rows of an existing dataset at ``out_data`` (for ``merge``); empty when there is none."""
    if not (out_data / "clips.csv").is_file():
        return {}
    ds = read_dataset(out_data)
    unknown = sorted({lab for labs in ds.labels for lab in labs} - class_names)
    if unknown:
        raise DataError(
            f"{out_data / 'clips.csv'}: label {name_some(unknown)} is not an AudioSet class; not merging an"
            " unrelated dataset (use merge=False or another out_data)"
        )
    return {f: (lab, s, fam) for f, lab, s, fam in zip(ds.filenames, ds.labels, ds.splits, ds.families)}
