import numpy as np
import pytest
import torch

from art_sgt.masking import apply_mask, least_salient_mask, masked_count


def test_signed_mask_marks_lowest_values():
    s = torch.tensor([[3.0, -1.0, 2.0, 0.0, 5.0]])
    assert least_salient_mask(s, 0.4).tolist() == [[False, True, False, True, False]]


def test_absolute_mask_marks_values_closest_to_zero():
    s = torch.tensor([[3.0, -1.0, 2.0, 0.0, -5.0]])
    assert least_salient_mask(s, 0.4, absolute=True).tolist() == [[False, True, False, True, False]]
    assert least_salient_mask(s, 0.4).tolist() == [[False, True, False, False, True]]


def test_k_is_floor_of_fraction_times_positions():
    s = torch.arange(10.0).reshape(1, 10)
    assert int(least_salient_mask(s, 0.39).sum()) == 3
    assert int(least_salient_mask(s, 0.0).sum()) == 0


def test_k_is_the_exact_floor_where_float_products_fall_just_below_an_integer():
    assert 0.7 * 90 < 63 and masked_count(0.7, 90) == 63  # int(0.7 * 90) would give 62
    assert [masked_count(f, 10) for f in (0.0, 0.1, 0.29, 0.3, 0.99, 1.0)] == [0, 1, 2, 3, 9, 10]
    assert int(least_salient_mask(torch.arange(90.0).reshape(1, 90), 0.7).sum()) == 63


def test_a_product_within_float_rounding_of_an_integer_counts_as_it_and_no_other_product_does():
    assert 0.9999999999999999 * 2 < 2 and masked_count(0.9999999999999999, 2) == 2
    assert int(least_salient_mask(torch.arange(2.0).reshape(1, 2), 0.9999999999999999).sum()) == 2
    assert masked_count(0.1 + 0.2, 10) == 3  # 0.30000000000000004 * 10, just above 3
    assert masked_count(0.5 - 2**-40, 2) == 0  # far beyond float rounding of 1: floored
    assert masked_count(1 / 3, 3) == 1 and masked_count(0.3333333, 3) == 0


def test_at_least_one_position_is_masked_as_in_the_reference():
    # 0.2 * 4 positions floors to 0: the reference masks max(1, int(f * P)) so the KL term never vanishes
    assert int(least_salient_mask(torch.arange(4.0).reshape(1, 4), 0.2).sum()) == 1


def test_absolute_ranking_takes_the_channel_mean_before_abs():
    # position 0: channels +3 and -3 cancel (mean 0, least salient); position 1: |mean| = 1
    s = torch.tensor([[[[3.0, 1.0]], [[-3.0, 1.0]]]])  # (1, 2, 1, 2)
    assert least_salient_mask(s, 0.5, absolute=True).tolist() == [[[[True, False]]]]


def test_ties_broken_by_lower_index():
    s = torch.zeros(1, 6)
    assert least_salient_mask(s, 0.5).tolist() == [[True, True, True, False, False, False]]


def test_channels_are_averaged_and_mask_broadcasts():
    # channel means per position: [1, 0, 2, -1]
    s = torch.tensor([[[[2.0, 0.0], [4.0, -3.0]], [[0.0, 0.0], [0.0, 1.0]]]])
    mask = least_salient_mask(s, 0.5)
    assert mask.shape == (1, 1, 2, 2)
    assert mask.tolist() == [[[[False, True], [False, True]]]]


def test_zero_float_and_clip_fill():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    m = torch.tensor([[True, False, True]])
    assert apply_mask(x, m, "zero").tolist() == [[0.0, 2.0, 0.0]]
    assert apply_mask(x, m, 7.0, clip_values=(0.0, 4.0)).tolist() == [[4.0, 2.0, 4.0]]


def test_mean_fill_is_per_sample_per_channel():
    x = torch.tensor([[[[1.0, 3.0]], [[10.0, 20.0]]]])  # (1, 2, 1, 2)
    m = torch.tensor([[[[True, False]]]])
    out = apply_mask(x, m, "mean")
    assert out.tolist() == [[[[2.0, 3.0]], [[15.0, 20.0]]]]


def test_uniform_fill_within_each_sample_range_and_seeded():
    x = torch.tensor([[0.2, 0.5, 0.4, 0.3], [10.0, 12.0, 11.0, 10.5]])
    m = torch.ones_like(x, dtype=torch.bool)
    a = apply_mask(x, m, "uniform", generator=torch.Generator().manual_seed(1))
    b = apply_mask(x, m, "uniform", generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a[0].min() >= 0.2 and a[0].max() <= 0.5
    assert a[1].min() >= 10.0 and a[1].max() <= 12.0


def test_uniform_channel_fill_stays_within_each_channels_range():
    x = torch.tensor([[[[0.0, 0.1]], [[0.8, 1.0]]]])  # (1, 2, 1, 2): channel ranges [0, 0.1] and [0.8, 1]
    m = torch.ones(1, 1, 1, 2, dtype=torch.bool)
    out = apply_mask(x, m, "uniform_channel", generator=torch.Generator().manual_seed(0))
    assert out[0, 0].max() <= 0.1 and out[0, 1].min() >= 0.8
    wide = apply_mask(x, m, "uniform", generator=torch.Generator().manual_seed(0))
    assert wide[0, 0].max() > 0.1  # the per-sample range mixes the channels


def test_per_feature_clip_values_bound_each_feature():
    x = torch.tensor([[0.5, 0.5]])
    out = apply_mask(x, torch.tensor([[True, True]]), 9.0, clip_values=(torch.zeros(2), torch.tensor([1.0, 0.3])))
    assert out.tolist() == [[1.0, 0.30000001192092896]]


def test_callable_fill_and_input_untouched():
    x = torch.tensor([[1.0, 2.0]])
    before = x.clone()
    out = apply_mask(x, torch.tensor([[True, False]]), lambda x_, m_: x_ * 10)
    assert out.tolist() == [[10.0, 2.0]]
    assert torch.equal(x, before)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        least_salient_mask(torch.zeros(1, 4), fraction)


def test_bad_fill():
    x = torch.zeros(1, 2)
    m = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="fill"):
        apply_mask(x, m, "median")
    with pytest.raises(TypeError, match="fill"):
        apply_mask(x, m, [1.0])
    with pytest.raises(ValueError, match="mask"):
        apply_mask(x, torch.ones(3, 3, dtype=torch.bool), "zero")


def test_saliency_must_be_batched():
    with pytest.raises(ValueError, match="saliency"):
        least_salient_mask(torch.zeros(4), 0.5)


def test_mask_on_numpy_roundtrip_shape():
    s = torch.from_numpy(np.random.default_rng(0).random((3, 2, 4, 4), dtype=np.float32))
    mask = least_salient_mask(s, 0.25)
    assert mask.sum(dim=(1, 2, 3)).tolist() == [4, 4, 4]
