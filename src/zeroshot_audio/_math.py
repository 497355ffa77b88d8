"""Small numeric helpers shared by the core, training and evaluation (one home each)."""

from __future__ import annotations

import numpy as np

__all__ = ["sigmoid"]


def sigmoid(z, dtype=np.float64) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-z))``, computed as ``(1 + tanh(z / 2)) / 2``: no overflow for any
    finite ``z``. Returns an array of ``dtype`` (float64 by default; float32 where memory matters)."""
    x = np.asarray(z, dtype=dtype)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(dtype, copy=False)
