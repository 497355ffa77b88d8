import numpy as np
import pytest
import torch

from zeroshot_audio import ModelConfig, ParameterError, ZeroShotModel


def _model(**kw):
    torch.manual_seed(0)
    m = ZeroShotModel(ModelConfig(audio_dim=12, text_dim=6, dim=8, **kw))
    # move psi_a off zero so attention is not uniform
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("pooling", ["attention", "mean", "max"])
@pytest.mark.parametrize("projection", ["linear", "mlp"])
def test_padding_is_ignored(pooling, projection):
    m = _model(pooling=pooling, projection=projection)
    torch.manual_seed(1)
    classes = torch.randn(5, 6)
    short = torch.randn(1, 3, 12)
    padded = torch.cat([short, 1e3 * torch.randn(1, 4, 12)], dim=1)  # garbage in the padding
    mask = torch.tensor([[True] * 3 + [False] * 4])
    a = m(short, None, classes, return_segments=True)
    b = m(padded, mask, classes, return_segments=True)
    torch.testing.assert_close(a.clip_scores, b.clip_scores)
    torch.testing.assert_close(b.attention[:, 3:], torch.zeros(1, 4, 5))
    torch.testing.assert_close(b.attention.sum(dim=1), torch.ones(1, 5))


def test_variable_lengths_in_one_batch_equal_separate_calls():
    m = _model()
    classes = torch.randn(4, 6)
    clips = [torch.randn(t, 12) for t in (2, 7, 5)]
    x = torch.zeros(3, 7, 12)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    for i, c in enumerate(clips):
        x[i, : len(c)] = c
        mask[i, : len(c)] = True
    batched = m(x, mask, classes).clip_scores
    for i, c in enumerate(clips):
        torch.testing.assert_close(batched[i], m(c[None], None, classes).clip_scores[0])


def test_attention_starts_uniform_and_pools_segment_scores():
    m = ZeroShotModel(ModelConfig(audio_dim=12, text_dim=6, dim=8)).eval()
    x, classes = torch.randn(2, 6, 12), torch.randn(3, 6)
    out = m(x, None, classes, return_segments=True)
    torch.testing.assert_close(out.attention, torch.full((2, 6, 3), 1 / 6))
    torch.testing.assert_close(out.clip_scores, out.segment_scores.mean(dim=1))
    # and the attention branch still receives gradient, so it can learn to deviate
    m.train()
    m(x, None, classes).clip_scores.sum().backward()
    assert m.text_proj.weight.grad[8:].abs().sum() > 0


def test_attention_is_a_weighted_sum_of_segment_scores():
    out = _model()(torch.randn(2, 5, 12), None, torch.randn(3, 6), return_segments=True)
    torch.testing.assert_close(out.clip_scores, (out.attention * out.segment_scores).sum(dim=1))
    assert not torch.allclose(out.attention, torch.full_like(out.attention, 0.2))


def test_pooling_variants():
    x, classes = torch.randn(2, 5, 12), torch.randn(3, 6)
    lin_mean = _model(pooling="mean")
    out = lin_mean(x, None, classes, return_segments=True)
    # with a linear projection, projecting the mean = the mean of segment scores
    torch.testing.assert_close(out.clip_scores, out.segment_scores.mean(dim=1))
    mx = _model(pooling="max")(x, None, classes, return_segments=True)
    torch.testing.assert_close(mx.clip_scores, mx.segment_scores.max(dim=1).values)
    shared = _model(attention="shared", temperature=1e-3)(x, None, classes, return_segments=True)
    torch.testing.assert_close(shared.clip_scores, shared.segment_scores.max(dim=1).values, atol=1e-3, rtol=0)


def test_classes_are_scored_independently():
    m = _model()
    x, classes = torch.randn(3, 4, 12), torch.randn(6, 6)
    full = m(x, None, classes).clip_scores
    perm = torch.tensor([4, 0, 5])
    torch.testing.assert_close(m(x, None, classes[perm]).clip_scores, full[:, perm])


def test_config_validation():
    with pytest.raises(ParameterError, match="pooling"):
        ModelConfig(audio_dim=4, text_dim=4, pooling="sum")
    with pytest.raises(ParameterError, match="dim"):
        ModelConfig(audio_dim=0, text_dim=4)
    with pytest.raises(ParameterError, match="temperature"):
        ModelConfig(audio_dim=4, text_dim=4, temperature=0)
    with pytest.raises(ParameterError, match=r"\[B, T, 12\]"):
        _model()(torch.randn(2, 12), None, torch.randn(3, 6))
    assert ModelConfig.from_dict(ModelConfig(audio_dim=3, text_dim=2).to_dict()) == ModelConfig(3, 2)


# ------------------------------------------------------------------------------ the numpy forward (no torch needed)

COMBOS = [(pooling, projection, attention, text)
          for pooling in ("attention", "mean", "max") for projection in ("linear", "mlp")
          for attention in ("separate", "shared") for text in ("linear", "none")]


def _pair(pooling="attention", projection="linear", attention="separate", text="linear", temperature=0.7, seed=0):
    """A torch model with random parameters and a standardisation, and the NumpyModel of its state dict."""
    from zeroshot_audio.model import NumpyModel
    from zeroshot_audio.train.network import state_dict_to_numpy

    cfg = ModelConfig(audio_dim=12, text_dim=6, dim=8 if text == "linear" else 6, projection=projection, hidden=16,
                      pooling=pooling, attention=attention, temperature=temperature, text_projection=text)
    torch.manual_seed(seed)
    m = ZeroShotModel(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
        m.set_normalization(torch.randn(12), torch.rand(12) + 0.5)
    m.eval()
    return m, NumpyModel(cfg, state_dict_to_numpy(m.state_dict()))


@pytest.mark.parametrize("pooling, projection, attention, text", COMBOS)
def test_numpy_forward_equals_the_torch_forward(pooling, projection, attention, text):
    m, nm = _pair(pooling, projection, attention, text)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 9, 12, generator=gen)
    mask = torch.rand(4, 9, generator=gen) > 0.4
    mask[:, 0] = True
    mask[3] = True  # one clip without padding
    x[~mask] = 1e3  # garbage in the padding
    k = torch.randn(7, 6, generator=gen)
    for segments in (False, True):
        with torch.no_grad():
            ref = m(x, mask, k, return_segments=segments)
        out = nm.forward(x.numpy(), mask.numpy(), k.numpy(), return_segments=segments)
        assert out.clip_scores.dtype == np.float32 and out.clip_scores.shape == (4, 7)
        np.testing.assert_allclose(out.clip_scores, ref.clip_scores.numpy(), rtol=0, atol=1e-5)
        if segments:
            for name in ("segment_scores", "attention"):
                got, want = getattr(out, name), getattr(ref, name).numpy()
                assert got.dtype == np.float32 and got.shape == (4, 9, 7)
                real = mask.numpy()  # segment scores of the garbage padding are ~1e4: compared where real
                np.testing.assert_allclose(got[real], want[real], rtol=0, atol=1e-5, err_msg=name)
            np.testing.assert_array_equal(out.attention[~mask.numpy()], 0.0)
        else:
            assert out.segment_scores is None and out.attention is None
    with torch.no_grad():  # mask None: every segment is real
        ref = m(x[3:], None, k, return_segments=True)
    out = nm.forward(x[3:].numpy(), None, k.numpy(), return_segments=True)
    np.testing.assert_allclose(out.attention, ref.attention.numpy(), rtol=0, atol=1e-5)


def test_numpy_softmax_is_stable_for_large_logits():
    """Shared attention at a tiny temperature: logits of 1e4 and more overflow a naive exp, not this softmax."""
    m, nm = _pair(attention="shared", temperature=1e-3)
    x, mask, k = 30 * torch.randn(2, 6, 12), torch.tensor([[True] * 6, [True] * 2 + [False] * 4]), torch.randn(3, 6)
    out = nm.forward(x.numpy(), mask.numpy(), k.numpy(), return_segments=True)
    with torch.no_grad():
        ref = m(x, mask, k, return_segments=True)
    assert np.abs(out.segment_scores).max() / 1e-3 > 1e4
    assert np.isfinite(out.attention).all() and np.isfinite(out.clip_scores).all()
    np.testing.assert_allclose(out.attention, ref.attention.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.clip_scores, ref.clip_scores.numpy(), rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(out.attention[1, 2:], 0.0)


def test_numpy_model_checks_its_parameters_and_inputs():
    from zeroshot_audio.model import NumpyModel, parameter_shapes
    from zeroshot_audio.train.network import numpy_to_state_dict, state_dict_to_numpy

    for combo in COMBOS:  # parameter_shapes describes the torch module's state dict exactly
        m, nm = _pair(*combo)
        assert parameter_shapes(nm.config) == {k: tuple(v.shape) for k, v in m.state_dict().items()}
        back = numpy_to_state_dict(state_dict_to_numpy(m.state_dict()))
        assert all(torch.equal(back[k], v) for k, v in m.state_dict().items())
    m, nm = _pair()
    params = dict(nm.params)
    with pytest.raises(ParameterError, match=r"audio_proj.bias is \[3\], the config needs \[16\]"):
        NumpyModel(nm.config, {**params, "audio_proj.bias": np.zeros(3)})
    with pytest.raises(ParameterError, match="missing: text_proj.weight"):
        NumpyModel(nm.config, {k: v for k, v in params.items() if k != "text_proj.weight"})
    with pytest.raises(ParameterError, match=r"\[B, T, 12\]"):
        nm.forward(np.zeros((2, 12)), None, np.zeros((3, 6)))
    with pytest.raises(ParameterError, match=r"class_emb must be \[C, 6\]"):
        nm.forward(np.zeros((2, 3, 12)), None, np.zeros((3, 5)))
    with pytest.raises(ParameterError, match=r"mask must be \[2, 3\]"):
        nm.forward(np.zeros((2, 3, 12)), np.ones((2, 4), bool), np.zeros((3, 6)))
