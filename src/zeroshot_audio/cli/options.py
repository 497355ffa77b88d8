"""Command-line flags derived from option dataclasses, so every implemented option is reachable from ``zsa``.

The generic machinery (:func:`add_dataclass_options`, :func:`dataclass_values`) and its use by the commands:
the flags of :class:`~zeroshot_audio.model.ModelConfig`, :class:`~zeroshot_audio.train.options.TrainOptions`
and :class:`~zeroshot_audio.evaluation.protocol.ProtocolOptions`, and the label-encoder flags.

Each field of a dataclass becomes ``--kebab-case`` with the field's default, an argparse type from its
annotation (``int``, ``float``, ``str``; ``bool`` becomes ``--name/--no-name``), the choices of a
numpydoc type spec such as ``{"linear", "mlp"}`` and, unless a help table overrides it, the first sentence
of the field's description in the class's numpydoc ``Parameters`` section. Nothing is retyped: a new field
is a new flag, or a build error when its type has no flag form and it is not excluded.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._errors import ParameterError
from ._common import _Parser, _positive_float, _positive_int

__all__ = ["numpydoc_parameters", "add_dataclass_options", "dataclass_values", "flag", "flag_error"]

_SCALARS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def numpydoc_parameters(cls: type) -> dict[str, tuple[str, str]]:
    """``{name: (type spec, description)}`` from the ``Parameters`` section of ``cls.__doc__``.

    A line ``a, b : float`` documents both ``a`` and ``b``; the description is the indented text below it,
    joined into one line.
    """
    lines = (cls.__doc__ or "").splitlines()
    out: dict[str, tuple[str, str]] = {}
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Parameters") + 2
    except StopIteration:
        return out
    end = next((i for i in range(start, len(lines) - 1) if re.fullmatch(r"-{3,}", lines[i + 1].strip())), len(lines))
    indent = None
    names: list[str] = []
    spec, desc = "", []
    for line in lines[start:end]:
        stripped = line.strip()
        level = len(line) - len(line.lstrip())
        if indent is None and stripped:
            indent = level
        if stripped and level == indent:
            for n in names:
                out[n] = (spec, " ".join(desc))
            head, _, spec = stripped.partition(" : ")
            names, desc = [n.strip() for n in head.split(",")], []
        elif stripped and indent is not None and level > indent:
            desc.append(stripped)
        elif stripped and indent is not None and level < indent:
            break
    for n in names:
        out[n] = (spec, " ".join(desc))
    return out


def _choices(spec: str) -> tuple[str, ...] | None:
    m = re.fullmatch(r"\{(.*)\}", spec.strip())
    return tuple(c.strip().strip("\"'") for c in m.group(1).split(",")) if m else None


def _first_sentence(text: str) -> str:
    text = text.replace("``", "")
    m = re.match(r"(.+?\.)(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


def add_dataclass_options(
    group: Any,
    cls: type,
    *,
    exclude: Iterable[str] = (),
    help: Mapping[str, str] | None = None,  # noqa: A002 - argparse's word
    types: Mapping[str, Callable[[str], Any]] | None = None,
) -> list[str]:
    """Add one flag per field of the dataclass ``cls`` (but ``exclude``) to ``group``; return the field names.

    Parameters
    ----------
    group : argparse parser or argument group
    cls : dataclass type
        Every field needs a default (required fields are excluded by the caller).
    exclude : iterable of str
        Fields that get no flag.
    help : mapping, optional
        Help text per field, instead of the first sentence of the numpydoc description.
    types : mapping, optional
        Argument type per field (e.g. a positive-integer parser), instead of the annotation's.
    """
    docs = numpydoc_parameters(cls)
    skip = set(exclude)
    help, types = dict(help or {}), dict(types or {})
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has no default: exclude it or give it one")
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        spec, desc = docs.get(f.name, ("", ""))
        text = help.get(f.name) or _first_sentence(desc)
        if not text:
            raise TypeError(f"{cls.__name__}.{f.name} has no help: document it in the Parameters section")
        if annotation == "bool":
            group.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                               help=f"{text} (default: %(default)s)")
        elif annotation in _SCALARS:
            choices = _choices(spec) if annotation == "str" else None
            if choices is not None and f.default not in choices:
                raise TypeError(f"{cls.__name__}.{f.name}: default {f.default!r} not among {choices}")
            group.add_argument(flag(f.name), dest=f.name, type=types.get(f.name, _SCALARS[annotation]),
                               choices=choices, default=f.default, help=f"{text} (default: %(default)s)")
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no flag form for type {annotation!r}: exclude it")
        added.append(f.name)
    return added


def dataclass_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """``{name: args.name}`` for the fields ``names`` (those added by :func:`add_dataclass_options`)."""
    return {n: getattr(args, n) for n in names}


def flag_error(err: ParameterError, names: Iterable[str]) -> ParameterError:
    """``err`` of an option dataclass, its message prefixed with the flag of the field it starts with."""
    text = str(err)
    for n in sorted(names, key=len, reverse=True):
        if text.startswith(f"{n} ") or text.startswith(f"{n}:"):
            return ParameterError(f"{flag(n)}: {text}")
    return err

#: Help of the flags derived from ModelConfig, TrainOptions and ProtocolOptions, where a short command-line
#: phrase reads better than the first sentence of the field's numpydoc description.
_FLAG_HELP = {
    "pooling": "temporal pooling",
    "dim": "shared space dimension",
    "projection": "acoustic projection",
    "hidden": "MLP hidden width",
    "attention": "attention logits from their own projections or the segment scores",
    "temperature": "temperature of shared attention",
    "text_projection": "label projection: linear, or none (the label space itself; --dim must then equal the "
                       "label encoder's dimension)",
    "epochs": "maximum epochs",
    "batch_size": "clips per batch",
    "patience": "epochs without validation gain before stopping, 0 = never",
    "seed": "random seed",
    "folds": "class folds",
    "strict": "drop training clips that contain unseen or validation classes (--no-strict keeps them)",
    "temporal": "score event detection when DATA has events.tsv",
    "distill": "add YAMNet's own class knowledge as auxiliary training labels (classes close to any class of DATA "
               "are left out) and the training-free semantic system; uses a yamnet-logits store",
}
#: Argument types stricter than the annotation (a usage error names the flag at once).
_FLAG_TYPES = {"dim": _positive_int, "hidden": _positive_int, "epochs": _positive_int, "batch_size": _positive_int,
               "lr": _positive_float, "temperature": _positive_float, "folds": _positive_int}


def _add_model_options(p: _Parser, *, pooling: bool) -> None:
    """The flags of ModelConfig and TrainOptions, derived from the dataclasses (names, defaults, choices); added
    when ``p`` is first used (importing the model module may be costly)."""
    p.defer(lambda q: _derive_model_options(q, pooling=pooling))


def _derive_model_options(p: argparse.ArgumentParser, *, pooling: bool) -> None:
    from ..model import ModelConfig
    from ..train.options import TrainOptions

    exclude = ("audio_dim", "text_dim", "anchor_dim") + (() if pooling else ("pooling",))
    model = add_dataclass_options(p.add_argument_group("model"), ModelConfig, exclude=exclude, help=_FLAG_HELP,
                                  types=_FLAG_TYPES)
    train = add_dataclass_options(p.add_argument_group("training"), TrainOptions, help=_FLAG_HELP, types=_FLAG_TYPES)
    p.set_defaults(_model_fields=tuple(f for f in model if f != "pooling"), _train_fields=tuple(train))


def _add_protocol_options(p: _Parser) -> None:
    """The flags of ProtocolOptions (``--folds``, ``--strict/--no-strict``, ...), derived from the dataclass
    (when ``p`` is first used); its seed is the training seed (``--seed``), its model and training options the
    flags of those groups."""
    p.defer(_derive_protocol_options)


def _derive_protocol_options(p: argparse.ArgumentParser) -> None:
    from ..evaluation.protocol import ProtocolOptions

    names = add_dataclass_options(p.add_argument_group("protocol"), ProtocolOptions, help=_FLAG_HELP,
                                  types=_FLAG_TYPES, exclude=("seed", "systems", "model", "train"))
    p.set_defaults(_protocol_fields=tuple(names))


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ModelConfig fields given by the flags (``pooling`` apart: each command sets it its own way)."""

    return dataclass_values(args, args._model_fields)


def _model_config(args: argparse.Namespace, **fixed: Any):
    from ..model import ModelConfig

    try:
        return ModelConfig(**fixed, **_model_kwargs(args))
    except ParameterError as err:
        raise flag_error(err, args._model_fields) from None


def _train_options(args: argparse.Namespace):
    from ..train.options import TrainOptions

    try:
        return TrainOptions(**dataclass_values(args, args._train_fields))
    except ParameterError as err:
        raise flag_error(err, args._train_fields) from None


def _add_label_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("labels")
    g.add_argument("--label-encoder", default="minilm",
                   help="label text encoder: minilm (sentence embeddings), word2vec (averaged word vectors of "
                        "--word-vectors), hashing (a lexical baseline for tests) (default: %(default)s)")
    g.add_argument("--word-vectors", metavar="FILE",
                   help="word2vec text/binary or GloVe text file, for --label-encoder word2vec")
    g.add_argument("--label-text", choices=("name", "name+description"), default="name",
                   help="text that stands for a class (default: %(default)s)")
    g.add_argument("--templates", default="none", help="prompt template set (default: %(default)s)")
