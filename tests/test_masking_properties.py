"""Property-based tests of the masking functions (hypothesis draws shapes, values, fractions and fills)."""

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from art_sgt.masking import apply_mask, least_salient_mask

SETTINGS = settings(max_examples=150, deadline=None)

# (n, c, h, w) images or (n, features) flat data
shapes = st.one_of(
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
    st.tuples(st.integers(1, 3), st.integers(1, 12)),
)
fractions = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)


@st.composite
def saliency_maps(draw):
    shape = draw(shapes)
    values = draw(arrays(np.float32, shape, elements=st.floats(-1e4, 1e4, width=32)))
    return torch.from_numpy(values)


@st.composite
def inputs_and_masks(draw):
    shape = draw(shapes)
    low = float(np.float32(draw(st.floats(-2.0, 0.5))))
    high = float(np.float32(low + draw(st.floats(0.125, 3.0))))
    x = draw(arrays(np.float32, shape, elements=st.floats(low, high, width=32)))
    mask_shape = (shape[0], 1, *shape[2:]) if len(shape) == 4 else shape
    mask = draw(arrays(np.bool_, mask_shape))
    return torch.from_numpy(x), torch.from_numpy(mask), (float(low), float(high))


fills = st.one_of(st.sampled_from(["uniform", "uniform_channel", "mean", "zero"]), st.floats(-10.0, 10.0))


def expected_count(fraction: float, positions: int) -> int:
    """The stated rule in decimal arithmetic: floor(f * P), a product within P * 2**-52 of an integer being it."""
    with localcontext() as context:
        context.prec = 400
        product = Decimal(fraction) * positions  # exact: a float is a finite binary fraction
        nearest = product.to_integral_value(rounding=ROUND_HALF_EVEN)
        if abs(product - nearest) <= Decimal(positions) / Decimal(2**52):
            return int(nearest)
        return int(product.to_integral_value(rounding=ROUND_FLOOR))


def _scores(saliency: torch.Tensor, absolute: bool) -> torch.Tensor:
    s = saliency.mean(1) if saliency.ndim >= 3 else saliency  # the reference: channel mean, then abs
    return (s.abs() if absolute else s).reshape(len(s), -1)


@SETTINGS
@given(saliency_maps(), fractions, st.booleans())
def test_mask_size_is_exactly_the_requested_fraction(saliency, fraction, absolute):
    before = saliency.clone()
    mask = least_salient_mask(saliency, fraction, absolute=absolute)
    positions = _scores(saliency, absolute).shape[1]
    k = max(1, expected_count(fraction, positions)) if fraction > 0 else 0
    counts = mask.reshape(len(mask), -1).sum(1)
    assert counts.tolist() == [k] * len(saliency)
    assert torch.equal(saliency, before)


@SETTINGS
@given(saliency_maps(), fractions, st.booleans())
def test_masked_positions_are_the_least_salient(saliency, fraction, absolute):
    mask = least_salient_mask(saliency, fraction, absolute=absolute).reshape(len(saliency), -1)
    scores = _scores(saliency, absolute)
    for row, marked in zip(scores, mask):
        if marked.any() and (~marked).any():
            assert row[marked].max() <= row[~marked].min()


@SETTINGS
@given(inputs_and_masks(), fills, st.integers(0, 2**31 - 1))
def test_fill_stays_within_clip_values_and_keeps_unmasked_values(data, fill, seed):
    x, mask, (low, high) = data
    before = x.clone()
    generator = torch.Generator().manual_seed(seed)
    out = apply_mask(x, mask, fill=fill, generator=generator, clip_values=(low, high))
    assert out.shape == x.shape
    assert torch.equal(x, before)
    assert bool((out >= low).all()) and bool((out <= high).all())
    keep = ~mask.expand_as(x)
    assert torch.equal(out[keep], x[keep])


@SETTINGS
@given(inputs_and_masks(), st.integers(0, 2**31 - 1))
def test_uniform_fill_stays_within_each_samples_own_range(data, seed):
    x, mask, _ = data
    out = apply_mask(x, mask, fill="uniform", generator=torch.Generator().manual_seed(seed))
    flat_x, flat_out = x.reshape(len(x), -1), out.reshape(len(out), -1)
    assert bool((flat_out >= flat_x.amin(1, keepdim=True)).all())
    assert bool((flat_out <= flat_x.amax(1, keepdim=True)).all())
