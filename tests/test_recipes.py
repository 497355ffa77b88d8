"""Clip selection shared by ``zsa train``, the protocol and the default model's script (train/recipes.py)."""

import dataclasses

import numpy as np
import pytest

from zeroshot_audio import ParameterError, StoreError, make_synthetic
from zeroshot_audio.data.folds import split_clips
from zeroshot_audio.data.memstore import MemoryStore
from zeroshot_audio.train.recipes import dataset_clips, strict_drop


@pytest.fixture(scope="module")
def planted():
    return make_synthetic(n_classes=12, n_clips=300, audio_dim=8, text_dim=6, seed=5)


def _unsplit(dataset):
    """The dataset with no split column (every clip is split by family)."""
    return dataclasses.replace(dataset, splits=[None] * len(dataset.filenames))


def _store(planted, keys=None):
    """A fresh memory store of the planted segments (of the clips ``keys``, default all)."""
    s = planted.store
    rows = s.index_of(keys) if keys is not None else np.arange(len(s))
    return MemoryStore([s.keys[r] for r in rows], s.segments[rows], meta=s.meta, counts=s.counts[rows])


def test_rows_labels_and_splits_follow_the_dataset(planted):
    ds, store = planted.dataset, planted.store
    classes = list(ds.classes)[::-1]
    clips = dataset_clips(ds, store, classes=classes)
    np.testing.assert_array_equal(clips.labels, ds.label_matrix(classes))
    np.testing.assert_array_equal(clips.rows, store.index_of(ds.filenames))
    assert list(clips.splits) == list(ds.splits)  # the split column is kept as it is
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(clips.ids(name), [i for i, s in enumerate(ds.splits) if s == name])
    assert clips.n_failed == 0


def test_failed_clips_are_left_out_and_do_not_move_the_others(planted):
    ds = _unsplit(planted.dataset)
    store = _store(planted)
    store.failures = {ds.filenames[i]: "bad audio" for i in (0, 7, 42)}
    clips = dataset_clips(ds, store, seed=3)
    # the split is made over all clips: a clip's side does not depend on which others failed
    expected = split_clips([None] * len(ds.filenames), ds.families, seed=3)
    assert list(clips.splits) == list(expected)
    assert clips.n_failed == 3 and list(np.flatnonzero(clips.failed)) == [0, 7, 42]
    assert (clips.rows[[0, 7, 42]] == -1).all()
    for name in ("train", "val", "test"):
        ids = clips.ids(name)
        assert not set(ids.tolist()) & {0, 7, 42}
        assert sorted(ids.tolist()) == [i for i in range(len(ds.filenames)) if expected[i] == name
                                         and i not in (0, 7, 42)]


def test_a_clip_missing_from_the_store_is_named(planted):
    ds = planted.dataset
    partial = _store(planted, ds.filenames[5:])
    with pytest.raises(StoreError, match=rf"{ds.filenames[0]}.*zsa embed"):
        dataset_clips(ds, partial)


def test_strict_drop_removes_exactly_the_clips_with_unheard_classes():
    labels = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=bool)
    kept, dropped = strict_drop(labels, np.arange(5), np.array([2]))
    assert kept.tolist() == [0, 1, 3] and dropped == 2
    kept, dropped = strict_drop(labels, np.array([4, 1]), np.array([0, 1]))
    assert kept.tolist() == [] and dropped == 2
    kept, dropped = strict_drop(labels, np.arange(5), np.array([], np.int64))
    assert kept.tolist() == list(range(5)) and dropped == 0


def test_select_matches_a_direct_computation(planted):
    ds, store = planted.dataset, planted.store
    clips = dataset_clips(ds, store)
    y, split = ds.label_matrix(), np.array(ds.splits)
    seen, val_cls, unheard = np.arange(0, 8), np.arange(8, 10), np.arange(8, 12)
    aux = np.random.default_rng(0).random((len(ds.filenames), 3)) < 0.3
    chosen = clips.select(train_classes=seen, val_classes=val_cls, unheard=unheard, extra_targets=aux,
                          watch_dropped=False)
    train = np.flatnonzero((split == "train") & ~y[:, unheard].any(axis=1))
    val = np.flatnonzero(split == "val")
    np.testing.assert_array_equal(chosen.train_ids, train)
    np.testing.assert_array_equal(chosen.train.rows, store.index_of([ds.filenames[i] for i in train]))
    np.testing.assert_array_equal(chosen.train.targets, np.concatenate([y[np.ix_(train, seen)], aux[train]], axis=1))
    np.testing.assert_array_equal(chosen.val.rows, store.index_of([ds.filenames[i] for i in val]))
    np.testing.assert_array_equal(chosen.val.targets, y[np.ix_(val, val_cls)])
    assert chosen.n_dropped == int(((split == "train") & y[:, unheard].any(axis=1)).sum()) > 0
    # without validation classes there is no validation set
    assert clips.select(train_classes=seen).val is None


def test_validation_also_watches_the_train_clips_dropped_for_a_validation_class(planted):
    ds, store = planted.dataset, planted.store
    clips = dataset_clips(ds, store)
    y, split = ds.label_matrix(), np.array(ds.splits)
    seen, val_cls, unseen = np.arange(0, 8), np.arange(8, 10), np.arange(10, 12)
    unheard = np.concatenate([val_cls, unseen])
    chosen = clips.select(train_classes=seen, val_classes=val_cls, unheard=unheard)  # the default
    # the val split, then the train clips with a validation class and no unseen one, in order
    extra = np.flatnonzero((split == "train") & y[:, val_cls].any(axis=1) & ~y[:, unseen].any(axis=1))
    assert extra.size > 5
    watched = np.concatenate([np.flatnonzero(split == "val"), extra])
    np.testing.assert_array_equal(chosen.val_ids, watched)
    np.testing.assert_array_equal(chosen.val.rows, store.index_of([ds.filenames[i] for i in watched]))
    np.testing.assert_array_equal(chosen.val.targets, y[np.ix_(watched, val_cls)])
    # none of them is trained on, none holds an unseen class, and the training clips are those of the old rule
    assert not set(chosen.train_ids) & set(extra) and not y[np.ix_(extra, unseen)].any()
    old = clips.select(train_classes=seen, val_classes=val_cls, unheard=unheard, watch_dropped=False)
    np.testing.assert_array_equal(chosen.train_ids, old.train_ids)
    np.testing.assert_array_equal(old.val_ids, np.flatnonzero(split == "val"))
    # not strict: nothing is dropped, so nothing is added
    loose = clips.select(train_classes=seen, val_classes=val_cls)
    np.testing.assert_array_equal(loose.val_ids, np.flatnonzero(split == "val"))


def test_unknown_classes_and_splits_are_refused(planted):
    clips = dataset_clips(planted.dataset, planted.store)
    with pytest.raises(ParameterError, match="'nope'"):
        clips.columns(["nope"])
    with pytest.raises(ParameterError, match="split must be one of"):
        clips.ids("training")
