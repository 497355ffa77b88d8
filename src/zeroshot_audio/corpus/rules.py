"""The reviewed rules table of the ``debian-sfx`` corpus (``debian_sfx_rules.csv``): read and validate it, find the
rule of a file's path inside its package (first matching rule wins), expand a rule's family template.

The names are re-exported by :mod:`zeroshot_audio.corpus.sources`.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .._errors import DataError, ParameterError
from .packages import RESERVED_PACKAGES

__all__ = [
    "SKIP",
    "RULES_FILE",
    "EVAL_RULES_FILE",
    "EVAL_PHRASINGS_FILE",
    "Rule",
    "audioset_display_names",
    "read_rules",
    "match_rule",
    "expand_family",
]


# ---------------------------------------------------------------------------------------------------- labels


def audioset_display_names() -> frozenset[str]:
    """The 527 AudioSet display names: :func:`zeroshot_audio.data.audioset.audioset_display_names`."""
    from ..data.audioset import audioset_display_names as names

    return names()


# ---------------------------------------------------------------------------------------------------- rules

SKIP = "SKIP"
RULES_FILE = Path(__file__).resolve().parent / "debian_sfx_rules.csv"
#: The rules table of the ``debian-eval`` set (packages of :data:`~zeroshot_audio.corpus.packages.EVAL_PACKAGES`).
EVAL_RULES_FILE = Path(__file__).resolve().parent / "debian_eval_rules.csv"
#: Phrasings of the ``debian-eval`` labels: ``label,phrasing,kind`` (kind free or short).
EVAL_PHRASINGS_FILE = Path(__file__).resolve().parent / "debian_eval_phrasings.csv"
_RULE_COLUMNS = ("package", "pattern", "label", "family", "licence", "note")


@dataclass(frozen=True)
class Rule:
    """One row of the rules table: files of ``package`` whose path ``regex.search``-matches get ``label``."""

    package: str
    pattern: str
    label: str  # an AudioSet display name, or "SKIP"
    family: str  # template, see expand_family
    licence: str
    note: str
    line: int  # line number in the rules file (1-based), for messages
    regex: re.Pattern = field(compare=False, repr=False)

    @property
    def skip(self) -> bool:
        return self.label == SKIP


def read_rules(path: str | os.PathLike | None = None, *, labels: Iterable[str] | None = None) -> list[Rule]:
    """Read and validate a rules table (default: the packaged ``debian_sfx_rules.csv``).

    Lines whose first character is ``#`` and blank lines are comments. The header must name the columns
    ``package,pattern,label,family,licence,note``. ``label`` must be one of ``labels`` (default:
    :func:`audioset_display_names`) or ``SKIP``; ``pattern`` must compile; ``package`` must not be reserved;
    ``family`` must expand (only known fields). Errors are one line: ``FILE:LINE: what``.
    """
    path = Path(path) if path is not None else RULES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read rules file {path}: {e.strerror or e}") from e
    valid = frozenset(labels) if labels is not None else None
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines())]
    numbered = [(n, line) for n, line in numbered if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise DataError(f"{path}: empty rules file")
    reader = csv.reader([line for _, line in numbered])
    header = [c.strip() for c in next(reader)]
    if tuple(header) != _RULE_COLUMNS:
        raise DataError(f"{path}:{numbered[0][0]}: header must be {','.join(_RULE_COLUMNS)}, got {','.join(header)}")
    rules: list[Rule] = []
    for (lineno, _), row in zip(numbered[1:], reader):
        where = f"{path}:{lineno}"
        if len(row) != len(_RULE_COLUMNS):
            raise DataError(f"{where}: expected {len(_RULE_COLUMNS)} columns, got {len(row)} (quote commas)")
        package, pattern, label, family, licence, note = (c.strip() for c in row)
        if not package or not pattern or not label:
            raise DataError(f"{where}: package, pattern and label must not be empty")
        if package.lower() in RESERVED_PACKAGES:
            raise DataError(f"{where}: package {package!r} is reserved for independent evaluation")
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise DataError(f"{where}: pattern {pattern!r} is not a valid regular expression ({e})") from e
        if label != SKIP:
            if valid is None:
                valid = audioset_display_names()
            if label not in valid:
                close = [v for v in valid if v.lower() == label.lower() or label.lower() in v.lower()]
                hint = f"; did you mean {sorted(close)[:3]}?" if close else ""
                raise DataError(f"{where}: label {label!r} is not an AudioSet display name{hint}")
            if not family:
                family = "{package}:{stem_nonum}"
            _check_family(family, regex, where)
        rules.append(Rule(package, pattern, label, family, licence, note, lineno, regex))
    return rules


_FAMILY_FIELDS = frozenset({"package", "stem", "stem_nonum", "name", "parent"})
_FIELD_RE = re.compile(r"\{([^{}]*)\}")


def _check_family(template: str, regex: re.Pattern, where: str) -> None:
    allowed = _FAMILY_FIELDS | set(regex.groupindex)
    for name in _FIELD_RE.findall(template):
        if name not in allowed:
            raise DataError(
                f"{where}: family {template!r} uses unknown field {{{name}}} (known: {', '.join(sorted(allowed))})"
            )


def _stem_nonum(stem: str) -> str:
    out = re.sub(r"[-_. ]*\d+$", "", stem)
    return out or stem


def expand_family(template: str, path: str, package: str, match: re.Match | None = None) -> str:
    """Expand a family template for the file at ``path`` (posix, inside ``package``).

    Fields: ``{package}``; ``{name}`` (file name); ``{stem}`` (name without suffix); ``{stem_nonum}`` (stem
    without one trailing number and its separator: ``sword_attack_01`` -> ``sword_attack``,
    ``default_break_glass.2`` -> ``default_break_glass``); ``{parent}`` (name of the folder); and the named
    groups of the rule's regex (``(?P<kit>...)`` -> ``{kit}``). An unmatched group expands to ``""``.
    """
    p = PurePosixPath(path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    values = {
        "package": package,
        "name": p.name,
        "stem": stem,
        "stem_nonum": _stem_nonum(stem),
        "parent": p.parent.name,
    }
    if match is not None:
        values.update({k: (v or "") for k, v in match.groupdict().items()})

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise ParameterError(f"family {template!r}: unknown field {{{key}}}")
        return values[key]

    return _FIELD_RE.sub(sub, template)


def match_rule(rules: Sequence[Rule], package: str, path: str) -> tuple[Rule, re.Match] | None:
    """The first rule of ``package`` whose pattern is found in ``path``, with its match; else ``None``."""
    for rule in rules:
        if rule.package == package:
            m = rule.regex.search(path)
            if m is not None:
                return rule, m
    return None
