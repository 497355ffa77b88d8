"""Nothing reaches the network at run time: the guard fails any connection or name lookup."""

import socket

import pytest

from zeroshot_audio.cli import main


def test_the_guard_catches_a_connection(no_network):
    with pytest.raises(OSError, match="no-network"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    with pytest.raises(OSError, match="no-network"):
        socket.getaddrinfo("localhost", 80)


def test_benchmark_train_and_label_encoding_run_offline(no_network, tmp_path, capsys):
    from zeroshot_audio import get_label_encoder

    get_label_encoder("hashing").encode(["dog barking", "rain on a roof"])
    code = main(["benchmark", "--synthetic", "--folds", "3", "--systems", "zero_rule,attention", "--epochs", "2",
                 "--quiet", "--out", str(tmp_path / "bench")])
    assert code == 0
    assert (tmp_path / "bench" / "results.json").is_file()
