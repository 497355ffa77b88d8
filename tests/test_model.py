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
