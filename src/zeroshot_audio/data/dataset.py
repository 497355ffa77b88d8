"""The generic dataset directory format: ``clips.csv``, optional ``events.tsv`` and ``classes.csv``.

A dataset directory holds:

``clips.csv`` (required)
    A header row with at least ``filename,labels``; optional columns ``split`` (``train``, ``val`` or
    ``test``; an empty value means unassigned) and ``family`` (a variant group kept on one side of a
    split; defaults to the filename). Other columns are ignored. ``filename`` is relative to the
    directory; ``labels`` is a ``;``-separated list of class names (CSV-quoted when a name contains a
    comma). An empty ``labels`` field is valid: the clip is a negative example.
``events.tsv`` (optional)
    Strong labels, DCASE style: ``filename<TAB>onset<TAB>offset<TAB>event_label`` (header optional).
``classes.csv`` (optional)
    Header ``label,description`` (``description`` optional). When present it fixes the class list and
    order, and every clip label must be one of its classes.

This module is the public home of the format's names: :class:`Event`, :class:`Dataset` and the split values
live in :mod:`zeroshot_audio.data._dataset_format`, the reader (:func:`read_dataset`, :func:`read_class_list`)
in :mod:`zeroshot_audio.data.dataset_read`, the writer (:func:`write_dataset`) in
:mod:`zeroshot_audio.data.dataset_write`.
"""

from __future__ import annotations

from ._dataset_format import SPLITS, Dataset, Event
from .dataset_read import read_class_list as read_class_list
from .dataset_read import read_dataset
from .dataset_write import write_dataset

__all__ = ["Event", "Dataset", "read_dataset", "write_dataset", "SPLITS"]
