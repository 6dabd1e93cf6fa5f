"""genmarl.sampling: batched categorical kernels, compared with torch.distributions.Categorical."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genmarl import _core
from genmarl.sampling import categorical_entropy, categorical_log_prob, categorical_sample

DRAWS = 200_000
P_MIN = 1e-4


def random_logits(rng: np.random.Generator, shape: tuple[int, ...], neg_inf_rate: float = 0.2) -> np.ndarray:
    """float32 logits of `shape` with some -inf entries, never a whole row (column 0 stays finite)."""
    x = (rng.standard_normal(shape) * 2.0).astype(np.float32)
    if shape[-1] > 1:
        mask = rng.random(shape) < neg_inf_rate
        mask[..., 0] = False
        x[mask] = -np.inf
    return x


def torch_module():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def mixed_probs(torch, logits: np.ndarray, unimix: float):
    """(1 - unimix) * softmax + unimix / k as a float64 torch tensor."""
    p = torch.softmax(torch.from_numpy(logits).double(), dim=-1)
    return (1.0 - unimix) * p + unimix / logits.shape[-1]


def counts(index: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(index.ravel(), minlength=k).astype(np.float64)


# ---- statistics against torch -------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, 32])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("unimix", [0.0, 0.01])
def test_frequencies_match_torch_categorical(k: int, seed: int, unimix: float) -> None:
    torch = torch_module()
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1000 * k + seed)
    row = random_logits(rng, (k,), neg_inf_rate=0.3)
    logits = np.broadcast_to(row, (DRAWS, k))
    index, log_prob = categorical_sample(logits, seed, stream=7, unimix=unimix)
    assert index.shape == (DRAWS,) and index.dtype == np.int64
    assert log_prob.shape == (DRAWS,) and log_prob.dtype == np.float32
    probs = mixed_probs(torch, row, unimix).numpy()
    observed = counts(index, k)
    if k == 1:
        assert observed[0] == DRAWS and np.all(log_prob == 0.0)
        return
    # Goodness of fit against torch's probabilities; impossible outcomes never drawn.
    possible = probs > 0
    assert observed[~possible].sum() == 0, "drew an outcome of probability 0 (-inf logit)"
    fit = stats.chisquare(observed[possible], probs[possible] * DRAWS)
    assert fit.pvalue > P_MIN, (fit, observed, probs)
    # Homogeneity with torch's own draws.
    gen = torch.Generator().manual_seed(seed)
    dist = torch.distributions.Categorical(probs=torch.from_numpy(probs))
    theirs = torch.multinomial(dist.probs, DRAWS, replacement=True, generator=gen).numpy()
    table = np.stack([observed[possible], counts(theirs, k)[possible]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        assert stats.chi2_contingency(table).pvalue > P_MIN


def test_frequencies_differ_per_row() -> None:
    """Each row is its own distribution: a batch of distinct rows, each sampled many times."""
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    rows, reps, k = 4, 50_000, 6
    base = random_logits(rng, (rows, k))
    logits = np.broadcast_to(base, (reps, rows, k))
    index, _ = categorical_sample(logits, 11)
    e = np.exp(base.astype(np.float64) - base.max(axis=-1, keepdims=True))
    probs = e / e.sum(axis=-1, keepdims=True)
    for r in range(rows):
        observed = counts(index[:, r], k)
        possible = probs[r] > 0
        assert observed[~possible].sum() == 0
        assert stats.chisquare(observed[possible], probs[r][possible] * reps).pvalue > P_MIN


@pytest.mark.parametrize("unimix", [0.0, 0.01, 0.3])
@pytest.mark.parametrize("k", [1, 2, 5, 8, 32, 100])
def test_log_prob_and_entropy_match_torch(k: int, unimix: float) -> None:
    torch = torch_module()
    rng = np.random.default_rng(k)
    logits = random_logits(rng, (3, 7, k))
    index = rng.integers(0, k, size=(3, 7))
    t = torch.from_numpy(logits)
    if unimix == 0.0:
        dist = torch.distributions.Categorical(logits=t)
    else:
        dist = torch.distributions.Categorical(probs=(1 - unimix) * torch.softmax(t, -1) + unimix / k)
    want_lp = dist.log_prob(torch.from_numpy(index)).numpy()
    want_h = dist.entropy().numpy()
    got_lp = categorical_log_prob(logits, index, unimix=unimix)
    got_h = categorical_entropy(logits, unimix=unimix)
    assert got_lp.shape == (3, 7) and got_lp.dtype == np.float32
    assert got_h.shape == (3, 7) and got_h.dtype == np.float32
    np.testing.assert_allclose(got_lp, want_lp, rtol=1e-5, atol=1e-6)  # -inf where torch has -inf
    np.testing.assert_allclose(got_h, want_h, rtol=1e-5, atol=1e-6)
    # The sampler's log_prob is the same function of its draws.
    drawn, lp, hot = categorical_sample(logits, 5, unimix=unimix, one_hot=True)
    np.testing.assert_allclose(lp, dist.log_prob(torch.from_numpy(drawn)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lp, categorical_log_prob(logits, drawn, unimix=unimix))
    assert np.all(np.isfinite(lp))


def test_extreme_logits_match_torch() -> None:
    torch = torch_module()
    logits = np.array([[0.0, -170.0, -50.0, 80.0], [1e30, -1e30, 0.0, -np.inf], [3.0, 3.0, 3.0, 3.0]], np.float32)
    index = np.array([1, 2, 0])
    dist = torch.distributions.Categorical(logits=torch.from_numpy(logits))
    np.testing.assert_allclose(
        categorical_log_prob(logits, index), dist.log_prob(torch.from_numpy(index)).numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(categorical_entropy(logits), dist.entropy().numpy(), rtol=1e-5, atol=1e-6)


# ---- outputs, determinism, shapes ---------------------------------------------------------


def test_one_hot_matches_index() -> None:
    rng = np.random.default_rng(0)
    logits = random_logits(rng, (64, 3, 9))
    index, log_prob, hot = categorical_sample(logits, 1, 2, unimix=0.01, one_hot=True)
    assert hot.shape == (64, 3, 9) and hot.dtype == np.float32
    np.testing.assert_array_equal(hot, np.eye(9, dtype=np.float32)[index])
    plain_index, plain_log_prob = categorical_sample(logits, 1, 2, unimix=0.01)
    np.testing.assert_array_equal(index, plain_index)
    np.testing.assert_array_equal(log_prob, plain_log_prob)


def test_neg_inf_logits_are_never_drawn() -> None:
    rng = np.random.default_rng(4)
    logits = random_logits(rng, (20_000, 12), neg_inf_rate=0.7)
    for seed in range(3):
        index, log_prob = categorical_sample(logits, seed)
        assert np.all(np.isfinite(np.take_along_axis(logits, index[:, None], axis=1)))
        assert np.all(np.isfinite(log_prob))


def test_determinism() -> None:
    rng = np.random.default_rng(5)
    logits = random_logits(rng, (5000, 7))
    a, la = categorical_sample(logits, 123, 4)
    b, lb = categorical_sample(logits.copy(), 123, 4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    two, l2 = categorical_sample(logits, 123, 4, num_threads=2)
    np.testing.assert_array_equal(a, two)
    np.testing.assert_array_equal(la, l2)
    other_stream, _ = categorical_sample(logits, 123, 5)
    other_seed, _ = categorical_sample(logits, 124, 4)
    assert np.mean(a != other_stream) > 0.3
    assert np.mean(a != other_seed) > 0.3
    big, _ = categorical_sample(logits, 2**64 - 1, 2**64 - 1)
    assert big.shape == (5000,)


def test_row_draws_depend_only_on_their_row_number() -> None:
    """Row r uses counter r: the first rows of a larger batch draw the same outcomes."""
    rng = np.random.default_rng(6)
    logits = random_logits(rng, (3000, 5))
    full, _ = categorical_sample(logits, 9, 1)
    head, _ = categorical_sample(logits[:1000], 9, 1)
    np.testing.assert_array_equal(full[:1000], head)
    # ... and leading dimensions are flattened in C order.
    shaped, _ = categorical_sample(logits.reshape(30, 100, 5), 9, 1)
    np.testing.assert_array_equal(shaped.ravel(), full)


@pytest.mark.parametrize(
    ("shape", "lead"), [((5,), ()), ((4, 5), (4,)), ((2, 3, 5), (2, 3)), ((0, 5), (0,)), ((2, 0, 5), (2, 0))]
)
def test_shapes(shape: tuple[int, ...], lead: tuple[int, ...]) -> None:
    logits = np.zeros(shape, np.float32)
    index, log_prob, hot = categorical_sample(logits, 0, one_hot=True)
    assert index.shape == lead and log_prob.shape == lead and hot.shape == shape
    assert categorical_log_prob(logits, np.zeros(lead, np.int64)).shape == lead
    entropy = categorical_entropy(logits)
    assert entropy.shape == lead
    np.testing.assert_allclose(entropy, np.log(5), rtol=1e-6)


def test_array_likes_are_converted() -> None:
    rng = np.random.default_rng(7)
    x = random_logits(rng, (40, 6), neg_inf_rate=0.0)
    want, want_lp = categorical_sample(x, 3)
    for like in (x.tolist(), x.astype(np.float64), np.asfortranarray(x), x.T.copy().T, x.astype(">f4")):
        got, got_lp = categorical_sample(like, 3)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_lp, want_lp)
    ints = np.arange(12).reshape(2, 6)
    np.testing.assert_allclose(categorical_entropy(ints), categorical_entropy(ints.astype(np.float32)))
    index = want.astype(np.int32)
    np.testing.assert_array_equal(categorical_log_prob(x, index), categorical_log_prob(x, want))
    np.testing.assert_array_equal(categorical_log_prob(x, want.tolist()), categorical_log_prob(x, want))


def test_torch_tensors_cross_without_copies() -> None:
    torch = torch_module()
    t = torch.randn(128, 3, 8)
    index, log_prob = categorical_sample(t.numpy(), 0)
    index_t, log_prob_t = torch.from_numpy(index), torch.from_numpy(log_prob)
    assert index_t.shape == (128, 3) and log_prob_t.dtype == torch.float32
    want = torch.distributions.Categorical(logits=t).log_prob(index_t)
    torch.testing.assert_close(log_prob_t, want, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**64 - 1),
    unimix=st.sampled_from([0.0, 0.01, 0.5]),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_sample_properties(lead: list[int], k: int, seed: int, unimix: float, data_seed: int) -> None:
    logits = random_logits(np.random.default_rng(data_seed), (*lead, k))
    index, log_prob, hot = categorical_sample(logits, seed, unimix=unimix, one_hot=True)
    assert index.shape == tuple(lead) and hot.shape == logits.shape
    assert np.all((index >= 0) & (index < k))
    assert np.all(log_prob <= 1e-6) and np.all(np.isfinite(log_prob))
    np.testing.assert_array_equal(log_prob, categorical_log_prob(logits, index, unimix=unimix))
    entropy = categorical_entropy(logits, unimix=unimix)
    assert np.all(entropy >= -1e-6) and np.all(entropy <= np.log(k) + 1e-5)


# ---- bad input ----------------------------------------------------------------------------

GOOD = np.zeros((4, 3), np.float32)


@pytest.mark.parametrize(
    ("logits", "error", "match"),
    [
        (np.array([[1.0, 2.0]], dtype=object), TypeError, "real-valued .* dtype object"),
        (np.array([["a", "b"]]), TypeError, "real-valued"),
        (np.array([[True, False]]), TypeError, "real-valued"),
        (np.array([[1 + 2j, 3j]]), TypeError, "real-valued"),
        (np.float32(1.0), ValueError, "at least one dimension"),
        (np.zeros((3, 0), np.float32), ValueError, "k >= 1"),
        ([[1.0, 2.0], [3.0]], ValueError, "real-valued array"),
    ],
)
def test_bad_logits_array(logits: object, error: type[Exception], match: str) -> None:
    for call in (
        lambda: categorical_sample(logits, 0),
        lambda: categorical_entropy(logits),
        lambda: categorical_log_prob(logits, np.zeros(1, np.int64)),
    ):
        with pytest.raises(error, match=match):
            call()


@pytest.mark.parametrize(
    ("value", "where", "match"),
    [
        (np.nan, (1, 2), r"logits\[1, 2\] is nan"),
        (np.inf, (3, 0), r"logits\[3, 0\] is \+inf"),
    ],
)
def test_non_finite_logits(value: float, where: tuple[int, int], match: str) -> None:
    x = GOOD.copy()
    x[where] = value
    with pytest.raises(ValueError, match=match):
        categorical_sample(x, 0)
    with pytest.raises(ValueError, match=match):
        categorical_entropy(x)
    with pytest.raises(ValueError, match=match):
        categorical_log_prob(x, np.zeros(4, np.int64))


@pytest.mark.parametrize("unimix", [0.0, 0.01])
def test_row_of_only_neg_inf(unimix: float) -> None:
    x = np.zeros((2, 3, 4), np.float32)
    x[1, 2] = -np.inf
    with pytest.raises(ValueError, match=r"logits\[1, 2, :\] is -inf everywhere"):
        categorical_sample(x, 0, unimix=unimix)
    with pytest.raises(ValueError, match="-inf everywhere"):
        categorical_entropy(x, unimix=unimix)
    with pytest.raises(ValueError, match="-inf everywhere"):
        categorical_log_prob(x, np.zeros((2, 3), np.int64), unimix=unimix)


@pytest.mark.parametrize(
    ("index", "error", "match"),
    [
        (np.array([0, 1, 3, 0]), ValueError, r"index\[2\] = 3 is out of range for k = 3"),
        (np.array([0, -1, 0, 0]), ValueError, r"index\[1\] = -1 is out of range"),
        (np.zeros(3, np.int64), ValueError, r"shape of logits without its last dimension, \(4,\), got \(3,\)"),
        (np.zeros((4, 1), np.int64), ValueError, "shape of logits without its last dimension"),
        (np.zeros(4, np.float32), TypeError, "integer array"),
        (np.array([2**63, 0, 0, 0], np.uint64), ValueError, "too large"),
    ],
)
def test_bad_index(index: np.ndarray, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        categorical_log_prob(GOOD, index)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"unimix": -0.1}, ValueError, r"unimix must be in \[0, 1\)"),
        ({"unimix": 1.0}, ValueError, r"unimix must be in \[0, 1\)"),
        ({"unimix": float("nan")}, ValueError, r"unimix must be in \[0, 1\)"),
        ({"unimix": "0.1"}, TypeError, "unimix must be a number"),
        ({"seed": -1}, ValueError, r"seed must be an int in \[0, 2\*\*64\)"),
        ({"seed": 2**64}, ValueError, r"seed must be an int in \[0, 2\*\*64\)"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"stream": -3}, ValueError, "stream must be an int"),
        ({"num_threads": 0}, ValueError, "num_threads must be in"),
        ({"num_threads": 2.0}, TypeError, "num_threads must be an int"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"seed": 0, **kwargs}
    seed = args.pop("seed")
    with pytest.raises(error, match=match):
        categorical_sample(GOOD, seed, **args)
    if set(kwargs) == {"unimix"}:
        with pytest.raises(error, match=match):
            categorical_entropy(GOOD, **kwargs)
        with pytest.raises(error, match=match):
            categorical_log_prob(GOOD, np.zeros(4, np.int64), **kwargs)


def test_core_checks_its_own_input() -> None:
    """The binding validates too (for callers that skip the Python wrapper)."""
    with pytest.raises(TypeError, match="float32"):
        _core.categorical_sample(np.zeros((2, 3)), 0, 0, 0.0, False, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.categorical_entropy(np.zeros((3, 2), np.float32).T, 0.0)
    with pytest.raises(ValueError, match=r"unimix must be in \[0, 1\)"):
        _core.categorical_entropy(GOOD, 1.5)
    with pytest.raises(TypeError, match="int64"):
        _core.categorical_log_prob(GOOD, np.zeros(4, np.int32), 0.0)
    with pytest.raises(ValueError, match="num_threads"):
        _core.categorical_sample(GOOD, 0, 0, 0.0, False, 0)
    with pytest.raises(TypeError, match="numpy array"):
        _core.categorical_entropy([[0.0, 1.0]], 0.0)
