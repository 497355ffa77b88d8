"""Label text -> the class matrix: class texts (names, descriptions) x prompt templates, embedded and averaged."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .._errors import ParameterError
from .base import LabelEncoder, _normalise_rows

__all__ = ["TEMPLATES", "class_texts", "class_matrix", "anchor_texts", "ANCHOR_TEMPLATES", "WORDING_SEPARATOR",
           "wordings", "average_wordings"]

#: Prompt template sets, as data: each ``{}`` receives the class text.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "none": ("{}",),
    "sound": ("the sound of {}", "a recording of {}", "{} can be heard", "this is the sound of {}"),
    "audioset": (
        "the sound of {}",
        "a recording of {}",
        "{} can be heard",
        "an audio clip of {}",
        "a sound recording in which {} can be heard",
        "this is the sound of {}",
    ),
}


def class_texts(
    labels: Sequence[str],
    *,
    descriptions: Mapping[str, str] | None = None,
    text: str = "name",
) -> list[str]:
    """The text that stands for each class.

    ``text="name"`` uses the label; ``"name+description"`` appends the class description when there is one.
    """
    if text not in ("name", "name+description"):
        raise ParameterError(f"unknown label text mode {text!r} (expected 'name' or 'name+description')")
    out = []
    for label in labels:
        desc = (descriptions or {}).get(label, "").strip()
        out.append(f"{label}. {desc}" if text == "name+description" and desc else label)
    return out


def class_matrix(
    encoder: LabelEncoder,
    labels: Sequence[str],
    *,
    descriptions: Mapping[str, str] | None = None,
    text: str = "name",
    templates: Sequence[str] | str = "none",
) -> np.ndarray:
    """The zero-shot class matrix: class texts x templates, embedded, averaged and normalised.

    Parameters
    ----------
    encoder : LabelEncoder
    labels : sequence of str
        Class names, ``C`` of them.
    descriptions : mapping, optional
        Class name -> description, used when ``text="name+description"``.
    text : {"name", "name+description"}
    templates : str or sequence of str
        A template set name from :data:`TEMPLATES` or templates with one ``{}`` each.

    Returns
    -------
    np.ndarray [C, D]
        float32, unit-norm rows.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise ParameterError(f"unknown template set {templates!r} (available: {', '.join(TEMPLATES)})")
        templates = TEMPLATES[templates]
    templates = list(templates)
    if not templates or any("{}" not in t for t in templates):
        raise ParameterError("every template must contain '{}'")
    texts = class_texts(labels, descriptions=descriptions, text=text)
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    flat = [t.format(x) for x in texts for t in templates]
    emb = encoder.encode(flat).reshape(len(texts), len(templates), encoder.dim).mean(axis=1)
    return _normalise_rows(emb)


#: How the anchor classes' names become texts: the AudioSet prompt templates (measured best on the corpus's
#: validation classes among names, names + descriptions and templates).
ANCHOR_TEMPLATES = "audioset"


def anchor_texts(encoder: LabelEncoder, names: Sequence[str]) -> np.ndarray:
    """The embedded texts of an anchored model's anchor classes (YAMNet's class names): ``[K, D]``, unit rows."""
    return class_matrix(encoder, list(names), templates=ANCHOR_TEMPLATES)


#: Separates the wordings of one label: ``"dog barking|a dog barks|barking"`` is one label whose embedding is the
#: average of its wordings' (a prompt ensemble; measured in docs/results.md, "Several wordings per label").
WORDING_SEPARATOR = "|"


def wordings(label: str) -> list[str]:
    """The wordings of a label: its text split on :data:`WORDING_SEPARATOR` (one wording when there is none)."""
    return [w.strip() for w in label.split(WORDING_SEPARATOR)]


def average_wordings(labels: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``[L, D]`` label embeddings where a label with several wordings (:func:`wordings`) is the normalised mean
    of its wordings' embeddings; ``embed`` maps distinct texts to their ``[N, D]`` embeddings (called once)."""
    split = [wordings(x) for x in labels]
    if all(len(w) == 1 for w in split):
        return embed(list(labels))
    texts = list(dict.fromkeys(w for ws in split for w in ws))
    pos = {t: i for i, t in enumerate(texts)}
    vecs = np.asarray(embed(texts), dtype=np.float32)
    out = np.stack([vecs[[pos[w] for w in ws]].mean(axis=0) for ws in split])
    multi = np.array([len(ws) > 1 for ws in split])
    out[multi] /= np.maximum(np.linalg.norm(out[multi], axis=1, keepdims=True), np.float32(1e-12))
    return out
