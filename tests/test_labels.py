import numpy as np
import pytest

from zeroshot_audio import ParameterError, available_label_encoders, class_matrix, get_label_encoder
from zeroshot_audio.text import CachedLabelEncoder, HashingLabelEncoder, LabelEncoder, class_texts


class CountingEncoder(LabelEncoder):
    name, version, dim = "counting", "1", 4

    def __init__(self):
        self.calls: list[str] = []

    def _encode(self, texts):
        self.calls.extend(texts)
        return np.array([[len(t), t.count("a") + 1, 1.0, 0.0] for t in texts])


def test_hashing_encoder_is_deterministic_normalised_and_lexical():
    enc = HashingLabelEncoder(dim=32)
    m = enc.encode(["dog barking", "dog barking", "barking dog", "car horn"])
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(m[0], m[1])
    np.testing.assert_allclose(m[0], m[2], rtol=1e-6)  # bag of words
    assert m[0] @ m[3] < 0.5
    np.testing.assert_array_equal(m, HashingLabelEncoder(dim=32).encode(["dog barking", "dog barking",
                                                                         "barking dog", "car horn"]))


def test_cache_serves_repeated_texts_from_disk(tmp_path):
    inner = CountingEncoder()
    cached = CachedLabelEncoder(inner, tmp_path)
    first = cached.encode(["rain", "a bat", "rain"])
    assert inner.calls == ["rain", "a bat"]
    inner.calls.clear()
    again = CachedLabelEncoder(inner, tmp_path).encode(["a bat", "rain", "thunder"])
    assert inner.calls == ["thunder"]
    np.testing.assert_allclose(again[0], first[1])
    np.testing.assert_allclose(again[1], first[0])
    # another encoder identity does not read these entries
    other = CountingEncoder()
    other.version = "2"
    CachedLabelEncoder(other, tmp_path).encode(["rain"])
    assert other.calls == ["rain"]


def test_class_matrix_templates_and_descriptions():
    enc = HashingLabelEncoder(dim=16)
    labels = ["dog", "cat"]
    plain = class_matrix(enc, labels)
    np.testing.assert_allclose(plain, enc.encode(labels), rtol=1e-6, atol=1e-7)
    templ = class_matrix(enc, labels, templates=["the sound of {}", "a {} recording"])
    manual = enc.encode(["the sound of dog", "a dog recording"]).mean(axis=0)
    np.testing.assert_allclose(templ[0], manual / np.linalg.norm(manual), rtol=1e-5, atol=1e-7)
    texts = class_texts(labels, descriptions={"dog": "A domestic canine."}, text="name+description")
    assert texts == ["dog. A domestic canine.", "cat"]
    with pytest.raises(ParameterError, match="template"):
        class_matrix(enc, labels, templates="poetry")


def test_registry_and_input_errors():
    assert "hashing" in available_label_encoders()
    with pytest.raises(ParameterError, match="available: .*hashing"):
        get_label_encoder("word2vec-google-news")
    enc = get_label_encoder("hashing", cache=False)
    with pytest.raises(ParameterError, match="single string"):
        enc.encode("dog")
    with pytest.raises(ParameterError, match="non-empty"):
        enc.encode(["dog", "  "])
