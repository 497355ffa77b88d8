"""Labels given by example clips: reading a folder of examples (:func:`read_examples`).

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
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ParameterError

__all__ = ["ExampleSet", "read_examples", "LABELS_FILE"]

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
