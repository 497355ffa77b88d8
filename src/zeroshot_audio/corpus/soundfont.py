"""SoundFont instrument sources of the ``debian-sfx`` corpus: single notes rendered from Debian's GM fonts.

Three General MIDI SoundFonts packaged by Debian are fetched with
:func:`zeroshot_audio.corpus.sources.fetch_packages` (they are not in ``DEBIAN_PACKAGES``: no rules table
applies to them, so their latest candidate version is used and recorded) and unpacked with
:func:`~zeroshot_audio.corpus.sources.unpack`. For each GM program in :data:`INSTRUMENTS` that maps to an
AudioSet display name, a few single notes (seeded pitches inside the instrument's range, velocities,
hold times) are rendered with ``tinysoundfont`` (optional dependency) at 48 kHz, mixed to mono and
resampled to 16 kHz with soxr. Renders are cached as FLAC under ``<corpus cache>/soundfont/`` keyed by the
font's sha256 and the render settings.

Families: one family per sample lineage and instrument. ``MuseScore_General`` is derived from Fluid R3
(mono version), so its presets share recordings with ``FluidR3_GM``; both fonts therefore share the
lineage ``FluidR3`` (family ``FluidR3:<instrument>``) except for the presets whose samples MuseScore credits
to another source (:data:`MUSESCORE_OWN_PROGRAMS`: the Splendid Grand piano and the trumpet). TimGM6mb is
its own lineage. A family never crosses splits, so the same recording cannot be on both sides.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._errors import DataError, missing_dependency
from .._io import sha256_file
from .sources import Source, SourceList, corpus_cache, fetch_packages, package_manifest, unpack

__all__ = [
    "SoundFontSpec",
    "Instrument",
    "SOUNDFONTS",
    "INSTRUMENTS",
    "MUSESCORE_OWN_PROGRAMS",
    "RENDER_SETTINGS",
    "render_note",
    "render_instrument_notes",
    "soundfont_sources",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SoundFontSpec:
    """A Debian package holding one SoundFont."""

    package: str
    font_path: str  # posix path of the font inside the package
    name: str  # short font name, used in original_path
    lineage: str  # family prefix: fonts sharing samples share a lineage
    licence: str  # licence of the samples, from usr/share/doc/PKG/copyright (not machine-readable there)


#: Debian packages with General MIDI SoundFonts -> where the font is and its licence.
SOUNDFONTS: tuple[SoundFontSpec, ...] = (
    SoundFontSpec("fluid-soundfont-gm", "usr/share/sounds/sf2/FluidR3_GM.sf2", "FluidR3_GM", "FluidR3", "MIT"),
    SoundFontSpec(
        "musescore-general-soundfont-small",
        "usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
        "MuseScore_General_Lite",
        "FluidR3",  # built on Fluid (R3) Mono, see MUSESCORE_OWN_PROGRAMS
        "MIT (Fluid R3 Mono derived; Splendid Grand piano public domain, some samples CC0)",
    ),
    SoundFontSpec("timgm6mb-soundfont", "usr/share/sounds/sf2/TimGM6mb.sf2", "TimGM6mb", "TimGM6mb", "GPL-2"),
)

#: GM programs (0-based) whose MuseScore_General samples do not come from Fluid R3 (per its
#: ``MuseScore_General_Sample_Sources.csv``): they get the lineage ``MuseScore``.
MUSESCORE_OWN_PROGRAMS: frozenset[int] = frozenset({0, 56})


@dataclass(frozen=True)
class Instrument:
    """A GM melodic program rendered as ``label`` (an AudioSet display name), played between ``low`` and
    ``high`` (MIDI keys)."""

    program: int  # 0-based GM program
    name: str  # instrument name used in the family (``<lineage>:<name>``)
    label: str
    low: int
    high: int


#: GM programs that map to an AudioSet class (exact display names). Organ-like, synth, ensemble-pad and
#: voice presets with no exact class, and GM instruments whose AudioSet class is missing (oboe, bassoon,
#: koto, shamisen, kalimba, celesta) are left out.
INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(0, "Acoustic Grand Piano", "Piano", 36, 96),
    Instrument(4, "Electric Piano 1", "Electric piano", 40, 88),
    Instrument(6, "Harpsichord", "Harpsichord", 41, 89),
    Instrument(9, "Glockenspiel", "Glockenspiel", 79, 105),
    Instrument(11, "Vibraphone", "Vibraphone", 53, 89),
    Instrument(12, "Marimba", "Marimba, xylophone", 45, 84),
    Instrument(13, "Xylophone", "Marimba, xylophone", 65, 96),
    Instrument(14, "Tubular Bells", "Tubular bells", 60, 77),
    Instrument(16, "Drawbar Organ", "Organ", 36, 84),
    Instrument(19, "Church Organ", "Organ", 36, 84),
    Instrument(21, "Accordion", "Accordion", 53, 89),
    Instrument(22, "Harmonica", "Harmonica", 60, 84),
    Instrument(24, "Nylon Guitar", "Acoustic guitar", 40, 76),
    Instrument(25, "Steel Guitar", "Acoustic guitar", 40, 76),
    Instrument(26, "Jazz Guitar", "Electric guitar", 40, 76),
    Instrument(27, "Clean Guitar", "Electric guitar", 40, 76),
    Instrument(32, "Acoustic Bass", "Double bass", 28, 55),
    Instrument(43, "Contrabass", "Double bass", 28, 55),
    Instrument(33, "Fingered Bass", "Bass guitar", 28, 55),
    Instrument(34, "Picked Bass", "Bass guitar", 28, 55),
    Instrument(40, "Violin", "Violin, fiddle", 55, 91),
    Instrument(42, "Cello", "Cello", 36, 72),
    Instrument(45, "Pizzicato Strings", "Pizzicato", 40, 84),
    Instrument(46, "Harp", "Harp", 36, 91),
    Instrument(47, "Timpani", "Timpani", 40, 55),
    Instrument(48, "String Ensemble", "String section", 40, 84),
    Instrument(56, "Trumpet", "Trumpet", 55, 82),
    Instrument(57, "Trombone", "Trombone", 40, 72),
    Instrument(60, "French Horn", "French horn", 41, 77),
    Instrument(65, "Alto Sax", "Saxophone", 49, 80),
    Instrument(66, "Tenor Sax", "Saxophone", 44, 75),
    Instrument(71, "Clarinet", "Clarinet", 50, 91),
    Instrument(73, "Flute", "Flute", 60, 96),
    Instrument(104, "Sitar", "Sitar", 48, 77),
    Instrument(105, "Banjo", "Banjo", 48, 84),
    Instrument(109, "Bagpipe", "Bagpipes", 58, 77),
    Instrument(114, "Steel Drums", "Steelpan", 52, 84),
)

#: Render settings; part of the cache key. ``hold`` and ``release`` are seconds (a note lasts 1.0-2.5 s).
RENDER_SETTINGS: dict[str, object] = {
    "version": 1,
    "render_rate": 48000,
    "sample_rate": 16000,
    "notes": 3,
    "hold": [0.7, 1.8],
    "release": 0.7,
    "velocity": [64, 120],
}


def _lineage(spec: SoundFontSpec, program: int) -> str:
    if spec.package.startswith("musescore") and program in MUSESCORE_OWN_PROGRAMS:
        return "MuseScore"
    return spec.lineage


def _synth(font: Path, rate: int):
    try:
        import tinysoundfont
    except ImportError as e:
        raise missing_dependency("tinysoundfont", "rendering SoundFont instruments") from e
    synth = tinysoundfont.Synth(samplerate=rate)
    sfid = synth.sfload(str(font))
    return synth, sfid


def render_note(synth, sfid: int, program: int, key: int, velocity: int, hold: float, release: float,
                *, render_rate: int = 48000, sample_rate: int = 16000) -> np.ndarray:
    """One note of ``program`` (bank 0) from a loaded ``tinysoundfont.Synth``: ``hold`` s on, ``release`` s
    off; float32 mono at ``sample_rate``."""
    import soxr

    synth.sounds_off()
    synth.generate(256)  # flush any voice left from the previous note
    synth.program_select(0, sfid, 0, program)
    synth.noteon(0, key, velocity)
    on = np.frombuffer(synth.generate(int(round(hold * render_rate))), dtype=np.float32)
    synth.noteoff(0, key)
    off = np.frombuffer(synth.generate(int(round(release * render_rate))), dtype=np.float32)
    synth.sounds_off()
    stereo = np.concatenate([on, off]).reshape(-1, 2)
    mono = stereo.mean(axis=1, dtype=np.float64)
    out = soxr.resample(mono, render_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def _note_plan(spec: SoundFontSpec, inst: Instrument, settings: dict) -> list[tuple[int, int, float]]:
    """Seeded (key, velocity, hold) per note; keys spread over the range (one per sub-range)."""
    seed = int.from_bytes(hashlib.sha256(f"{spec.name}:{inst.program}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    n = int(settings["notes"])
    edges = np.linspace(inst.low, inst.high + 1, n + 1)
    lo_v, hi_v = settings["velocity"]
    lo_h, hi_h = settings["hold"]
    plan = []
    for i in range(n):
        key = int(rng.integers(int(edges[i]), max(int(edges[i]) + 1, int(edges[i + 1]))))
        vel = int(rng.integers(lo_v, hi_v + 1))
        hold = round(float(rng.uniform(lo_h, hi_h)), 3)
        plan.append((key, vel, hold))
    return plan


def render_instrument_notes(font: Path, spec: SoundFontSpec, instruments: Sequence[Instrument], dest: Path,
                            settings: dict | None = None) -> list[tuple[Instrument, str, Path]]:
    """Render the notes of ``instruments`` from ``font`` into ``dest`` (FLAC, PCM_24; existing files are
    reused); return ``(instrument, note id, file)`` for each note. Programs the font lacks are skipped."""
    import soundfile as sf

    settings = dict(RENDER_SETTINGS if settings is None else settings)
    dest.mkdir(parents=True, exist_ok=True)
    synth = sfid = None
    out: list[tuple[Instrument, str, Path]] = []
    missing_ok = dest / "missing.json"
    missing = set(json.loads(missing_ok.read_text())) if missing_ok.is_file() else set()
    for inst in instruments:
        if inst.program in missing:
            continue
        for key, vel, hold in _note_plan(spec, inst, settings):
            note_id = f"prog{inst.program:03d}/key{key:03d}/vel{vel:03d}/hold{hold:.3f}"
            path = dest / f"prog{inst.program:03d}_key{key:03d}_vel{vel:03d}_hold{int(hold * 1000):04d}.flac"
            if not path.is_file():
                if synth is None:
                    synth, sfid = _synth(font, int(settings["render_rate"]))
                if synth.sfpreset_name(sfid, 0, inst.program) is None:
                    missing.add(inst.program)
                    missing_ok.write_text(json.dumps(sorted(missing)))
                    break
                wav = render_note(synth, sfid, inst.program, key, vel, hold, float(settings["release"]),
                                  render_rate=int(settings["render_rate"]),
                                  sample_rate=int(settings["sample_rate"]))
                peak = float(np.max(np.abs(wav))) if wav.size else 0.0
                if peak > 0:
                    wav = wav * np.float32(0.9 / peak)
                tmp = path.with_name(path.name + ".partial")
                sf.write(str(tmp), wav, int(settings["sample_rate"]), subtype="PCM_24", format="FLAC")
                os.replace(tmp, path)
            out.append((inst, note_id, path))
    return out


def soundfont_sources(
    *,
    cache: str | os.PathLike | None = None,
    fonts: Iterable[SoundFontSpec] | None = None,
    instruments: Sequence[Instrument] | None = None,
    settings: dict | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SourceList:
    """Fetch the SoundFont packages, render (or reuse) the instrument notes; return them as sources.

    Each :class:`~zeroshot_audio.corpus.sources.Source` has ``original_path``
    ``<font path inside the package>#<note id>``, ``family`` ``<lineage>:<instrument name>`` and the font's
    licence. ``SourceList.manifest`` holds each package's version, file, sha256 and licences.
    """
    fonts = list(SOUNDFONTS if fonts is None else fonts)
    instruments = list(INSTRUMENTS if instruments is None else instruments)
    settings = dict(RENDER_SETTINGS if settings is None else settings)
    base = corpus_cache(cache)
    debs = fetch_packages([f.package for f in fonts], cache=base)
    unpacked = {f.package: unpack(debs[f.package], base / "unpacked" / f.package) for f in fonts}
    out = SourceList()
    out.manifest = package_manifest(debs, unpacked)
    skey = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    for i, spec in enumerate(fonts):
        if progress is not None:
            progress("soundfont", i, len(fonts))
        font = unpacked[spec.package] / spec.font_path
        if not font.is_file():
            raise DataError(f"{spec.package}: SoundFont {spec.font_path} not found in the package")
        out.manifest[spec.package]["licences"] = [spec.licence]
        dest = base / "soundfont" / spec.package / f"{sha256_file(font)[:16]}-{skey}"
        version = str(out.manifest[spec.package]["version"])
        for inst, note_id, path in render_instrument_notes(font, spec, instruments, dest, settings):
            out.append(
                Source(
                    path=path,
                    package=spec.package,
                    package_version=version,
                    original_path=f"{spec.font_path}#{note_id}",
                    label=inst.label,
                    family=f"{_lineage(spec, inst.program)}:{inst.name}",
                    licence=spec.licence,
                )
            )
    if progress is not None:
        progress("soundfont", len(fonts), len(fonts))
    return out
