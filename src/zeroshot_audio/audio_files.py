"""Finding audio files: the extensions picked up in folders (:data:`AUDIO_EXTENSIONS`) and the walk of the
files and folders given (:func:`find_audio_files`); re-exported by :mod:`zeroshot_audio.audio`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ._decode import _file_kind, os_reason
from ._errors import ParameterError

__all__ = ["AUDIO_EXTENSIONS", "find_audio_files"]

logger = logging.getLogger("zeroshot_audio.audio")

#: File name extensions (lower case) that :func:`find_audio_files` picks up in folders: the containers the
#: bundled libsndfile reads (``soundfile.available_formats()``: WAV/WAVEX/RF64/W64, FLAC, OGG Vorbis and
#: Opus, MP3, AIFF, AU, CAF). Files named explicitly are decoded whatever their extension.
AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd", ".caf",
    ".w64", ".rf64",
)


def find_audio_files(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], *,
                     recursive: bool = True, errors: list[tuple[Path, str]] | None = None) -> list[Path]:
    """List the audio files named by ``paths``.

    A path to a file is kept whatever its extension (the decoder decides whether it is audio); a folder
    contributes the files in it whose extension (case-insensitive) is in :data:`AUDIO_EXTENSIONS`, sorted
    by path, skipping hidden files and hidden folders (names starting with "."). Order: the inputs in the
    order given, each folder's files sorted; a file reached twice is listed once.

    Parameters
    ----------
    paths : sequence of str or PathLike
        Files and folders (a single path is accepted too).
    recursive : bool
        Search sub-folders of the folders given.
    errors : list, optional
        Receives ``(folder, reason)`` for each folder that could not be read (its files are missing from the
        result; a warning is logged either way). Entries of a folder that are not regular files (FIFOs,
        sockets, devices) are skipped with a warning: opening a FIFO would block. A symlink loop or a dangling
        link is listed, and the decoder reports it.

    Returns
    -------
    list of Path

    Raises
    ------
    ParameterError
        A path does not exist (the message names it).
    """
    import stat

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        try:
            key = p.resolve()
        except (OSError, RuntimeError):  # a symlink loop: listed, and reported when it is decoded
            key = p.absolute()
        if key not in seen:
            seen.add(key)
            found.append(p)

    def unreadable(err: OSError) -> None:
        where = Path(err.filename) if err.filename is not None else p
        logger.warning("%s: folder skipped, it cannot be read (%s)", where, os_reason(err))
        if errors is not None:
            errors.append((where, f"folder cannot be read ({os_reason(err)})"))

    for item in paths:
        p = Path(item)
        if not p.exists() and not p.is_symlink():
            raise ParameterError(f"audio input {item}: no such file or directory")
        if not p.is_dir():
            add(p)
            continue
        in_dir: list[Path] = []
        for root, dirs, files in os.walk(p, onerror=unreadable):
            dirs[:] = [] if not recursive else [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith(".") or os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
                    continue
                f = Path(root) / name
                try:
                    mode = os.stat(f).st_mode
                except OSError:  # dangling link, symlink loop: listed, and reported when it is decoded
                    mode = stat.S_IFREG
                if not stat.S_ISREG(mode):  # a FIFO would block the reader forever
                    logger.warning("%s: skipped, it is %s, not a regular file", f, _file_kind(mode))
                    continue
                in_dir.append(f)
        for f in sorted(in_dir, key=lambda q: q.relative_to(p).parts):
            add(f)
    logger.debug("found %d audio file(s) in %d input(s)", len(found), len(paths))
    return found
