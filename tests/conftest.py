import sys

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

