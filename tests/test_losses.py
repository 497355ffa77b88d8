import pytest
import torch

from zeroshot_audio import ParameterError
from zeroshot_audio.train.losses import bce_loss, get_loss, rank_hinge_loss, rank_hinge_loss_pairwise


def test_hand_computed_case():
    # clip 1: positives 0 (F=3) and 1 (F=1); negatives 2 (2.5) and 3 (0), margin 1.
    #   p=0: h(q=2) = 0.5, h(q=3) = 0 -> r=1, beta=1 -> 0.5
    #   p=1: h(q=2) = 2.5, h(q=3) = 0 -> r=1, beta=1 -> 2.5       clip loss (0.5 + 2.5) / 2 = 1.5
    # clip 2: positive 0 (F=0); negatives 2, 1.5, -5
    #   h = 3, 2.5, 0 -> r=2, beta = (1 + 1/2) / 2 = 0.75 -> 0.75 * 5.5 = 4.125
    scores = torch.tensor([[3.0, 1.0, 2.5, 0.0], [0.0, 2.0, 1.5, -5.0]])
    targets = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    assert rank_hinge_loss(scores, targets).item() == pytest.approx((1.5 + 4.125) / 2)
    assert rank_hinge_loss_pairwise(scores, targets).item() == pytest.approx((1.5 + 4.125) / 2)


def test_zero_when_every_positive_beats_every_negative_by_the_margin():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.9, -1.0], [0.0, 10.0, 1.0, 9.0, 8.0]], requires_grad=True)
    targets = torch.tensor([[1, 1, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)
    loss = rank_hinge_loss(scores, targets)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(scores.grad) == 0
    # one violation brings it back
    worse = torch.tensor([[5.0, 4.0, 3.5, 2.9, -1.0]])
    assert rank_hinge_loss(worse, targets[:1]).item() == pytest.approx(0.5 / 2)


def test_sorted_form_equals_pairwise_form_with_gradients(rng):
    for _ in range(5):
        scores = torch.tensor(rng.standard_normal((9, 40)) * 2, dtype=torch.float64, requires_grad=True)
        targets = torch.tensor(rng.random((9, 40)) < 0.15)
        targets[0] = False  # a clip without positives contributes nothing
        targets[1] = True  # nor one without negatives
        a = rank_hinge_loss(scores, targets)
        b = rank_hinge_loss_pairwise(scores, targets)
        (ga,) = torch.autograd.grad(a, scores)
        (gb,) = torch.autograd.grad(b, scores)
        assert a.item() == pytest.approx(b.item(), rel=1e-12)
        torch.testing.assert_close(ga, gb)


def test_no_positive_in_batch_gives_zero_with_graph():
    scores = torch.randn(4, 6, requires_grad=True)
    loss = rank_hinge_loss(scores, torch.zeros(4, 6, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()


def test_bce_and_registry():
    scores = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    expected = (torch.log1p(torch.exp(torch.tensor(0.0))) + torch.log1p(torch.exp(torch.tensor(2.0)))) / 2
    assert bce_loss(scores, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    assert get_loss("bce") is bce_loss
    with pytest.raises(ParameterError, match="rank_hinge"):
        get_loss("warp")
    with pytest.raises(ParameterError, match=r"\[B, C\]"):
        rank_hinge_loss(torch.zeros(3), torch.zeros(3))
