from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from zeroshot_audio._errors import DataError, ParameterError
from zeroshot_audio.data import Dataset, Event, read_dataset, write_dataset


def _write(root: Path, clips: str, *, events: str | None = None, classes: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "clips.csv").write_text(clips, encoding="utf-8")
    if events is not None:
        (root / "events.tsv").write_text(events, encoding="utf-8")
    if classes is not None:
        (root / "classes.csv").write_text(classes, encoding="utf-8")
    return root


def _loc(path: Path, line: int | None = None) -> str:
    """Regex matching the start of an error message about ``path`` (and ``line``)."""
    return "^" + re.escape(str(path) + (f":{line}:" if line is not None else ""))


# ------------------------------------------------------------------------------------------- round trip


def test_round_trip_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    classes = ["dog, barking", 'say "hi"', "cat", "rain", "übung"]
    filenames = [f"audio/clip{i:03d}.wav" for i in range(12)]
    labels = [tuple(rng.choice(classes, size=rng.integers(0, 4), replace=False).tolist()) for _ in filenames]
    labels[0] = ("dog, barking", 'say "hi"')
    labels[1] = ()
    splits = [["train", "val", "test", None][i % 4] for i in range(12)]
    families = [f"fam{i // 3}" for i in range(12)]
    descriptions = {"dog, barking": "a dog, barking loudly", 'say "hi"': 'someone says "hi"', "cat": ""}
    events = [
        Event(filenames[0], 0.1, 1.25, "dog, barking"),
        Event(filenames[0], 2.0, 2.0, 'say "hi"'),
    ]
    write_dataset(
        tmp_path / "ds",
        filenames=filenames,
        labels=labels,
        splits=splits,
        families=families,
        classes=classes,
        descriptions=descriptions,
        events=events,
    )
    ds = read_dataset(tmp_path / "ds")
    assert ds.root == tmp_path / "ds"
    assert ds.filenames == filenames
    assert ds.labels == [tuple(x) for x in labels]
    assert ds.splits == splits
    assert ds.families == families
    assert ds.classes == classes
    assert ds.descriptions == {c: descriptions.get(c, "") for c in classes}
    assert ds.events == events
    assert ds.has_split
    assert len(ds) == 12


def test_round_trip_minimal_defaults(tmp_path: Path) -> None:
    write_dataset(tmp_path, filenames=["b.wav", "a.wav"], labels=[["zeta", "alpha"], ["alpha"]])
    ds = read_dataset(tmp_path)
    assert ds.filenames == ["b.wav", "a.wav"]
    assert ds.labels == [("zeta", "alpha"), ("alpha",)]
    assert ds.splits == [None, None]
    assert not ds.has_split
    assert ds.families == ["b.wav", "a.wav"]
    assert ds.classes == ["alpha", "zeta"]
    assert ds.descriptions == {"alpha": "", "zeta": ""}
    assert ds.events == []
    assert not (tmp_path / "classes.csv").exists()
    assert not (tmp_path / "events.tsv").exists()


def test_write_removes_stale_optional_files(tmp_path: Path) -> None:
    write_dataset(
        tmp_path, filenames=["a.wav"], labels=[["x"]], classes=["x", "y"], events=[("a.wav", 0, 1, "x")]
    )
    write_dataset(tmp_path, filenames=["a.wav"], labels=[["x"]])
    ds = read_dataset(tmp_path)
    assert ds.classes == ["x"] and ds.events == []


def test_empty_labels_is_negative_example(tmp_path: Path) -> None:
    _write(tmp_path, 'filename,labels\na.wav,dog;cat\nb.wav,\nc.wav,"  "\nd.wav,cat\n')
    ds = read_dataset(tmp_path)
    assert ds.labels == [("dog", "cat"), (), (), ("cat",)]
    matrix = ds.label_matrix()
    assert matrix.dtype == bool and matrix.shape == (4, 2)
    assert ds.classes == ["cat", "dog"]
    np.testing.assert_array_equal(matrix, [[True, True], [False, False], [False, False], [True, False]])


def test_reading_details(tmp_path: Path) -> None:
    # BOM, surrounding whitespace, repeated labels in a clip, extra columns, upper-case split, blank line.
    text = (
        "\ufeffFilename , labels ,split,family,notes\n"
        ' a.wav ," dog ; cat;dog ",TRAIN,, x\n'
        "\n"
        "b.wav,cat, ,grp,\n"
    )
    _write(tmp_path, text, events="a.wav\t0.5\t1\tdog\n\n")
    ds = read_dataset(tmp_path)
    assert ds.filenames == ["a.wav", "b.wav"]
    assert ds.labels == [("dog", "cat"), ("cat",)]
    assert ds.splits == ["train", None]
    assert ds.families == ["a.wav", "grp"]
    assert ds.events == [Event("a.wav", 0.5, 1.0, "dog")]


def test_trailing_commas_and_repeated_ignored_columns(tmp_path: Path) -> None:
    _write(tmp_path, "filename,labels,note,note\na.wav,dog,x,y,,\nb.wav,,,\n")
    ds = read_dataset(tmp_path)
    assert ds.filenames == ["a.wav", "b.wav"] and ds.labels == [("dog",), ()]
    _write(tmp_path, "filename,labels,Labels\na.wav,dog,cat\n")
    with pytest.raises(DataError, match=_loc(tmp_path / "clips.csv", 1) + " column 'labels' appears twice"):
        read_dataset(tmp_path)


def test_classes_csv_order_and_descriptions(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "filename,labels\na.wav,dog\n",
        classes="label,description\nzebra,striped horse\ndog, a dog \nunused,\n",
    )
    ds = read_dataset(tmp_path)
    assert ds.classes == ["zebra", "dog", "unused"]
    assert ds.descriptions == {"zebra": "striped horse", "dog": "a dog", "unused": ""}
    np.testing.assert_array_equal(ds.label_matrix(), [[False, True, False]])
    # classes.csv without a description column
    _write(tmp_path, "filename,labels\na.wav,dog\n", classes="label\ndog\n")
    assert read_dataset(tmp_path).descriptions == {"dog": ""}


def test_label_matrix_classes_argument(tmp_path: Path) -> None:
    write_dataset(tmp_path, filenames=["a", "b", "c"], labels=[["x", "y"], ["y"], []])
    ds = read_dataset(tmp_path)
    np.testing.assert_array_equal(ds.label_matrix(["y"]), [[True], [True], [False]])
    np.testing.assert_array_equal(ds.label_matrix(["y", "x"]), [[True, True], [True, False], [False, False]])
    with pytest.raises(ParameterError, match="class 'nope' is not a class of the dataset"):
        ds.label_matrix(["x", "nope"])


def test_subset_filters_events(tmp_path: Path) -> None:
    write_dataset(
        tmp_path,
        filenames=["a", "b", "c", "d"],
        labels=[["x"], ["y"], ["x", "y"], []],
        splits=["train", "val", "test", None],
        events=[("a", 0, 1, "x"), ("c", 1, 2, "y"), ("b", 0, 3, "y"), ("c", 0, 0.5, "x")],
    )
    ds = read_dataset(tmp_path)
    sub = ds.subset([2, 0])
    assert sub.filenames == ["c", "a"]
    assert sub.labels == [("x", "y"), ("x",)]
    assert sub.splits == ["test", "train"]
    assert sub.classes == ds.classes == ["x", "y"]
    assert sub.events == [Event("a", 0.0, 1.0, "x"), Event("c", 1.0, 2.0, "y"), Event("c", 0.0, 0.5, "x")]
    mask_sub = ds.subset(np.array([False, True, False, True]))
    assert mask_sub.filenames == ["b", "d"]
    assert mask_sub.events == [Event("b", 0.0, 3.0, "y")]
    assert ds.subset(np.array([], dtype=np.int64)).filenames == []
    assert ds.subset([-1]).filenames == ["d"]
    with pytest.raises(ParameterError, match="out of range"):
        ds.subset([4])
    with pytest.raises(ParameterError, match="repeated"):
        ds.subset([1, 1])
    assert len(ds) == 4  # the original is untouched


def test_dataset_constructor_checks_lengths() -> None:
    with pytest.raises(ParameterError, match="labels has 1 entries but filenames has 2"):
        Dataset(Path("."), ["a", "b"], [()], [None, None], ["a", "b"], [])


# ------------------------------------------------------------------------------------------- read errors


def test_missing_directory_and_clips(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=_loc(tmp_path / "nope") + ": dataset directory does not exist"):
        read_dataset(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=_loc(tmp_path / "file") + ": not a directory"):
        read_dataset(tmp_path / "file")
    with pytest.raises(DataError, match=_loc(tmp_path / "clips.csv") + ": file not found"):
        read_dataset(tmp_path)


CLIPS_ERRORS = [
    ("", None, "empty file"),
    ("file,labels\na.wav,dog\n", 1, r"missing column 'filename' .*found: 'file', 'labels'"),
    ("filename,tags\na.wav,dog\n", 1, r"missing column 'labels' .*found: 'filename', 'tags'"),
    ("filename,labels\na.wav,dog\n  ,cat\n", 3, "empty filename"),
    ("filename,labels\na.wav,dog;;cat\n", 2, r"malformed labels 'dog;;cat': empty item"),
    ("filename,labels\na.wav,cat\nb.wav,dog;\n", 3, r"malformed labels 'dog;': empty item"),
    ("filename,labels\na.wav,;\n", 2, r"malformed labels ';': empty item"),
    (
        "filename,labels\na.wav,dog\nb.wav,cat\na.wav,cat\n",
        4,
        r"duplicate filename 'a.wav' \(first on line 2\)",
    ),
    (
        "filename,labels,split\na.wav,dog,train\n\n\nb.wav,dog,tst\n",
        5,
        r"unknown split 'tst' \(expected one of: train, val, test",
    ),
    (
        "filename,labels\na.wav,dog,cat\n",
        2,
        r"3 field\(s\) but the header has 2 \(quote fields that contain commas\)",
    ),
    ('filename,labels\na.wav,"dog\n', 2, "malformed CSV"),
    # a quoted field spanning lines: the error names the line where the record starts
    ('filename,labels\n"a\nb.wav",dog\nc.wav,dog;;\n', 4, "malformed labels"),
]


@pytest.mark.parametrize(("text", "line", "message"), CLIPS_ERRORS)
def test_clips_errors(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    _write(tmp_path, text)
    with pytest.raises(DataError, match=_loc(tmp_path / "clips.csv", line) + r"( |.*)" + message):
        read_dataset(tmp_path)


CLASSES_ERRORS = [
    ("name,description\ndog,x\n", 1, r"missing column 'label' .*found: 'name', 'description'"),
    ("label,description\ndog,x\n ,y\n", 3, "empty label"),
    ("label\ndog\ncat\ndog\n", 4, r"duplicate label 'dog' \(first on line 2\)"),
]


@pytest.mark.parametrize(("text", "line", "message"), CLASSES_ERRORS)
def test_classes_errors(tmp_path: Path, text: str, line: int, message: str) -> None:
    _write(tmp_path, "filename,labels\na.wav,dog\n", classes=text)
    with pytest.raises(DataError, match=_loc(tmp_path / "classes.csv", line) + " " + message):
        read_dataset(tmp_path)


def test_clip_label_not_in_classes_csv(tmp_path: Path) -> None:
    _write(tmp_path, "filename,labels\na.wav,dog\nb.wav,dog;cow\n", classes="label\ndog\ncat\n")
    expected = f" label 'cow' is not a class in {re.escape(str(tmp_path / 'classes.csv'))}$"
    with pytest.raises(DataError, match=_loc(tmp_path / "clips.csv", 3) + expected):
        read_dataset(tmp_path)


EVENTS_ERRORS = [
    ("a.wav\t0\t1\n", 1, r"3 tab-separated column\(s\) \(expected 4: filename, onset, offset, event_label\)"),
    ("filename\tonset\toffset\tevent_label\na.wav\t0\t1\tdog\textra\n", 2, r"5 tab-separated column\(s\)"),
    ("a.wav\tzero\t1\tdog\n", 1, r"onset 'zero' is not a number"),
    ("a.wav\t0\tnan\tdog\n", 1, r"offset 'nan' is not a number"),
    ("a.wav\t-0.5\t1\tdog\n", 1, r"negative onset '-0.5'"),
    ("a.wav\t0\t1\tdog\na.wav\t2\t1.5\tdog\n", 2, r"offset 1.5 is before onset 2"),
    ("a.wav\t0\t1\tdog\nz.wav\t0\t1\tdog\n", 2, r"filename 'z.wav' is not in .*clips.csv"),
    ("a.wav\t0\t1\tbird\n", 1, r"event label 'bird' is not a class of the dataset"),
    ("b.wav\t0\t1\tdog\n", 1, r"event label 'dog' is not among the labels of 'b.wav' .*\(clip labels: cat\)"),
]


@pytest.mark.parametrize(("text", "line", "message"), EVENTS_ERRORS)
def test_events_errors(tmp_path: Path, text: str, line: int, message: str) -> None:
    _write(tmp_path, "filename,labels\na.wav,dog\nb.wav,cat\n", events=text)
    with pytest.raises(DataError, match=_loc(tmp_path / "events.tsv", line) + " " + message):
        read_dataset(tmp_path)


def test_error_messages_are_one_line(tmp_path: Path) -> None:
    _write(tmp_path, 'filename,labels\n"a\nb.wav",dog;;\n')
    with pytest.raises(DataError) as info:
        read_dataset(tmp_path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{tmp_path / 'clips.csv'}:2: malformed labels 'dog;;'")


def test_events_header_optional(tmp_path: Path) -> None:
    clips = "filename,labels\na.wav,dog;cat\n"
    _write(
        tmp_path, clips, events="filename\tonset\toffset\tevent_label\na.wav\t0\t1\tdog\na.wav\t1\t3\tcat\n"
    )
    with_header = read_dataset(tmp_path).events
    _write(tmp_path, clips, events="a.wav\t0\t1\tdog\na.wav\t1\t3\tcat\n")
    assert (
        read_dataset(tmp_path).events
        == with_header
        == [Event("a.wav", 0, 1, "dog"), Event("a.wav", 1, 3, "cat")]
    )


# ------------------------------------------------------------------------------------------ write errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filenames": ["a", "a"], "labels": [[], []]}, "duplicate filename 'a'"),
        ({"filenames": ["a"], "labels": [["x;y"]]}, "contains ';'"),
        ({"filenames": ["a"], "labels": [[" x"]]}, "surrounding whitespace"),
        ({"filenames": ["a"], "labels": [[], []]}, "labels has 2 entries but filenames has 1"),
        ({"filenames": ["a"], "labels": [["x"]], "splits": ["tst"]}, "unknown split 'tst'"),
        ({"filenames": ["a"], "labels": [["x"]], "classes": ["y"]}, "clip label 'x' is not in classes"),
        (
            {"filenames": ["a"], "labels": [["x"]], "events": [("a", 0, 1, "z")]},
            "not among its clip's labels",
        ),
        ({"filenames": ["a"], "labels": [["x"]], "events": [("a", 2, 1, "x")]}, "onset <= offset"),
    ],
)
def test_write_dataset_rejects(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        write_dataset(tmp_path / "ds", **kwargs)
    assert not (tmp_path / "ds").exists()
