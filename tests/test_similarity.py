"""Tests for gapscope.similarity: SVCCA, PWCCA, linear CKA, pairwise and calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from gapscope.similarity import (
    COLUMNS,
    compare_views,
    expected_null_mean_cca,
    linear_cka,
    pair_permutations,
    pairwise,
    prepare_view,
    pwcca,
    resolve_device,
    svcca,
    svcca_details,
)

# --------------------------------------------------------------------------- references


def ref_reduce(x: np.ndarray, *, variance: float = 0.99, k: int | None = None) -> np.ndarray:
    """Textbook SVCCA reduction: centre, SVD, keep k (or 99% of Σs²); returns U_k S_k."""
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    if k is None:
        cum = np.cumsum(s**2)
        k = int(np.searchsorted(cum, variance * cum[-1])) + 1
    return u[:, :k] * s[:k]


def inv_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = scipy.linalg.eigh(c)
    return (v / np.sqrt(w)) @ v.T


def ref_cca(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CCA through Σxx^-1/2 Σxy Σyy^-1/2 (epsilon=0); returns (u, rho, vt) of that matrix."""
    n = a.shape[0]
    ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
    sxx, syy, sxy = ac.T @ ac / (n - 1), bc.T @ bc / (n - 1), ac.T @ bc / (n - 1)
    return np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy))


def ref_svcca(x, y, *, k_x: int, k_y: int) -> float:
    _, rho, _ = ref_cca(ref_reduce(x, k=k_x), ref_reduce(y, k=k_y))
    return float(rho.mean())


def ref_ridge_rho(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Canonical correlations with google cca_core's recipe (normalise, drop small, +eps*I)."""
    ka = a.shape[1]
    cov = np.cov(a.T, b.T)
    sxx, syy, sxy = cov[:ka, :ka], cov[ka:, ka:], cov[:ka, ka:]
    xmax, ymax = np.abs(sxx).max(), np.abs(syy).max()
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    kx, ky = np.diag(sxx) >= eps, np.diag(syy) >= eps
    sxx, syy, sxy = sxx[kx][:, kx], syy[ky][:, ky], sxy[kx][:, ky]
    sxx = sxx + eps * np.eye(len(sxx))
    syy = syy + eps * np.eye(len(syy))
    ixx = scipy.linalg.sqrtm(np.linalg.pinv(sxx)).real
    iyy = scipy.linalg.sqrtm(np.linalg.pinv(syy)).real
    return np.linalg.svd(ixx @ sxy @ iyy, compute_uv=False)


def ref_pwcca(x: np.ndarray, y: np.ndarray, variance: float = 0.99) -> float:
    """Projection-weighted CCA with google pwcca semantics in sentence space (epsilon=0)."""
    a, b = ref_reduce(x, variance=variance), ref_reduce(y, variance=variance)
    u, rho, vt = ref_cca(a, b)
    if a.shape[1] <= b.shape[1]:
        acts, coef = a, u
    else:
        acts, coef = b, vt.T
    dirns = (acts - acts.mean(axis=0)) @ coef
    p, _ = np.linalg.qr(dirns)
    weights = np.abs(p.T @ acts).sum(axis=1)
    weights /= weights.sum()
    return float((weights * rho[: len(weights)]).sum())


def gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA as HSIC of centred Gram matrices (Kornblith et al. 2019, Gram form)."""
    n = x.shape[0]
    h = np.eye(n) - 1.0 / n
    kx, ky = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float((kx * ky).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky)))


def gram_cka_debiased(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased CKA from the unbiased HSIC estimator (Song et al. 2012) on raw Gram matrices."""

    def hsic(k: np.ndarray, l_: np.ndarray) -> float:
        n = k.shape[0]
        k, l_ = k - np.diag(np.diag(k)), l_ - np.diag(np.diag(l_))
        one = np.ones(n)
        return (
            np.trace(k @ l_)
            + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * one @ k @ l_ @ one
        ) / (n * (n - 3))

    kx, ky = x @ x.T, y @ y.T
    return float(hsic(kx, ky) / np.sqrt(hsic(kx, kx) * hsic(ky, ky)))


# --------------------------------------------------------------------------- data


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def decaying(rng: np.random.Generator, n: int, d: int, decay: float = 0.85) -> np.ndarray:
    """Gaussian rows with a decaying spectrum and a random mean offset."""
    scales = decay ** np.arange(d)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((n, d)) * scales) @ q.T + 5.0 * rng.standard_normal(d)


def planted(rng: np.random.Generator, n: int, sigmas=(0.25, 0.6, 1.0), extra: int = 2):
    """x = [z + σ e_x, noise], y = [z + σ e_y, noise]: canonical correlations 1/(1+σ²)."""
    sig = np.asarray(sigmas)
    z = rng.standard_normal((n, len(sig)))
    x = np.hstack([z + sig * rng.standard_normal(z.shape), rng.standard_normal((n, extra))])
    y = np.hstack([z + sig * rng.standard_normal(z.shape), rng.standard_normal((n, extra))])
    return x, y, np.sort(1.0 / (1.0 + sig**2))[::-1]


def random_orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------------------- identities


@pytest.mark.parametrize("fn", [svcca, pwcca, linear_cka])
def test_identical_views_score_one(fn):
    x = decaying(rng_for(0), 80, 20)
    # the default epsilon=1e-10 ridge (google's recipe) shrinks weak directions by ~eps/d_i
    assert fn(x, x) == pytest.approx(1.0, abs=1e-7)
    if fn is not linear_cka:
        assert fn(x, x, epsilon=0.0) == pytest.approx(1.0, abs=1e-12)


def test_identical_views_debiased_cka_one():
    x = decaying(rng_for(0), 80, 20)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("fn", [svcca, pwcca, linear_cka])
def test_rotated_scaled_offset_copy_scores_one(fn):
    rng = rng_for(1)
    x = decaying(rng, 100, 24)
    y = 3.7 * x @ random_orthogonal(rng, 24) + rng.standard_normal(24) * 10
    assert fn(x, y) == pytest.approx(1.0, abs=1e-7)
    if fn is not linear_cka:
        assert fn(x, y, epsilon=0.0) == pytest.approx(1.0, abs=1e-10)


def test_invertible_map_plain_cca_one_but_svcca_not():
    rng = rng_for(2)
    d = 12
    scales = 0.6 ** np.arange(d)
    x = rng.standard_normal((400, d)) * scales + 1.0
    # invertible, far from orthogonal: reverses the variance spectrum, then rotates
    a = np.diag(scales**-2) @ random_orthogonal(rng, d)
    y = x @ a
    # plain CCA (all directions, no ridge) cannot tell y from x
    assert svcca(x, y, variance=1.0, epsilon=0.0) == pytest.approx(1.0, abs=1e-9)
    assert svcca(x, y, k=d, epsilon=0.0) == pytest.approx(1.0, abs=1e-9)
    # SVCCA keeps the high-variance directions, which differ between x and y
    det = svcca_details(x, y)
    assert det.k_x < d and det.k_y < d
    assert det.score < 0.5


def test_symmetry():
    rng = rng_for(3)
    x, y = decaying(rng, 90, 30), decaying(rng, 90, 17, decay=0.7)
    assert svcca(x, y) == pytest.approx(svcca(y, x), abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)
    # the narrower side supplies PWCCA's weights whichever argument it is (google's else-branch
    # bug fixed), so PWCCA is symmetric when the kept dimensions differ
    dx, dy = svcca_details(x, y), svcca_details(y, x)
    assert dx.k_x != dx.k_y and (dx.k_x, dx.k_y) == (dy.k_y, dy.k_x)
    assert pwcca(x, y) == pytest.approx(pwcca(y, x), abs=1e-12)


# --------------------------------------------------------------------------- references


def _shapes():
    rng = rng_for(4)
    cases = {}
    cases["n>d"] = (decaying(rng, 150, 40), decaying(rng, 150, 25))
    cases["d>n"] = (decaying(rng, 50, 90), decaying(rng, 50, 70))
    cases["square"] = (decaying(rng, 64, 64, 0.95), decaying(rng, 64, 64, 0.95))
    low = rng.standard_normal((120, 6)) @ rng.standard_normal((6, 40))  # rank 6
    cases["rank-deficient"] = (low, decaying(rng, 120, 30))
    low_wide = rng.standard_normal((40, 5)) @ rng.standard_normal((5, 100))  # rank 5, d>n
    cases["rank-deficient d>n"] = (low_wide, decaying(rng, 40, 60))
    return cases


@pytest.mark.parametrize("case", list(_shapes()))
@pytest.mark.parametrize("opts", [{"variance": 0.99}, {"variance": 0.9}, {"k": 4}])
def test_matches_slow_reference(case, opts):
    x, y = _shapes()[case]
    det = svcca_details(x, y, epsilon=0.0, **opts)
    ref = ref_svcca(x, y, k_x=det.k_x, k_y=det.k_y)
    assert det.score == pytest.approx(ref, abs=1e-7)
    assert det.rho.shape == (min(det.k_x, det.k_y),)
    if "variance" in opts:  # same k as the textbook rule
        assert det.k_x == ref_reduce(x, variance=opts["variance"]).shape[1]


def test_k_capped_at_rank_and_n_minus_1():
    rng = rng_for(5)
    low = rng.standard_normal((30, 4)) @ rng.standard_normal((4, 50))
    det = svcca_details(low, decaying(rng, 30, 50), k=100)
    assert det.k_x == 4  # numerical rank
    assert det.k_y == 29  # n - 1
    assert svcca_details(low, low, variance=1.0).k_x == 4


def test_epsilon_ridge_matches_google_recipe():
    rng = rng_for(6)
    x, y = decaying(rng, 300, 60, 0.9), decaying(rng, 300, 50, 0.9)
    det = svcca_details(x, y, epsilon=1e-10)
    rho = ref_ridge_rho(ref_reduce(x, k=det.k_x), ref_reduce(y, k=det.k_y), 1e-10)
    assert det.rho == pytest.approx(rho, abs=1e-9)
    assert det.score == pytest.approx(svcca(x, y, epsilon=0.0), abs=1e-7)
    # a large ridge drops and shrinks the weak directions exactly like the recipe
    det = svcca_details(x, y, variance=1.0, epsilon=1e-3)
    a, b = ref_reduce(x, variance=1.0), ref_reduce(y, variance=1.0)
    assert det.k_x < a.shape[1]
    assert det.rho == pytest.approx(ref_ridge_rho(a, b, 1e-3), abs=1e-9)


def test_pwcca_matches_google_semantics():
    rng = rng_for(7)
    z = rng.standard_normal((250, 8))
    x = np.hstack([z, rng.standard_normal((250, 12))]) @ rng.standard_normal((20, 30))
    y = np.hstack([z + 0.5 * rng.standard_normal(z.shape), rng.standard_normal((250, 4))])
    for a, b in ((x, y), (y, x)):
        assert pwcca(a, b, epsilon=0.0) == pytest.approx(ref_pwcca(a, b), abs=1e-9)
    assert pwcca(x, y) == pytest.approx(pwcca(x, y, epsilon=0.0), abs=1e-7)


@pytest.mark.parametrize("shape", [(60, 200, 150), (300, 20, 35)])
def test_linear_cka_matches_gram_formula(shape):
    n, dx, dy = shape
    rng = rng_for(8)
    x = rng.standard_normal((n, dx)) + 3.0
    y = x[:, :1] * rng.standard_normal((1, dy)) + rng.standard_normal((n, dy))
    assert linear_cka(x, y) == pytest.approx(gram_cka(x, y), abs=1e-12)
    assert linear_cka(x, y, debiased=True) == pytest.approx(gram_cka_debiased(x, y), abs=1e-12)


def test_debiased_cka_of_independent_views_near_zero():
    rng = rng_for(9)
    biased, debiased = [], []
    for _ in range(5):
        x, y = rng.standard_normal((100, 30)), rng.standard_normal((100, 30))
        biased.append(linear_cka(x, y))
        debiased.append(linear_cka(x, y, debiased=True))
    assert abs(np.mean(debiased)) < 0.01
    assert np.mean(biased) > 0.15


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("n", [2000, 20000])
def test_planted_canonical_correlations_recovered(n):
    x, y, rho_pop = planted(rng_for(10), n)
    det = svcca_details(x, y, variance=1.0)
    assert (det.k_x, det.k_y) == (5, 5)
    tol = 3.0 / np.sqrt(n)
    assert np.abs(det.rho[:3] - rho_pop).max() < tol
    assert det.rho[3:].max() < tol


def test_independent_views_at_chance_level():
    rng = rng_for(11)
    n, dx, dy = 200, 20, 30
    scores = [
        svcca(rng.standard_normal((n, dx)), rng.standard_normal((n, dy)), variance=1.0)
        for _ in range(8)
    ]
    assert np.mean(scores) == pytest.approx(expected_null_mean_cca(n, dx, dy), abs=0.01)


@pytest.mark.parametrize("n,k_a,k_b", [(400, 40, 60), (60, 25, 40), (1000, 91, 92)])
def test_expected_null_wachter_agrees_with_montecarlo(n, k_a, k_b):
    mc = expected_null_mean_cca(n, k_a, k_b)
    assert expected_null_mean_cca(n, k_b, k_a) == mc
    assert expected_null_mean_cca(n, k_a, k_b, method="wachter") == pytest.approx(mc, abs=5e-3)
    # E[Σρ²] = k_a k_b / (n - 1) exactly, so mean ρ lies between that bound's pieces
    assert np.sqrt(max(k_a, k_b) / (n - 1)) > mc > max(k_a, k_b) / (n - 1)


# --------------------------------------------------------------------------- pairwise


def _views(seed: int = 12, n: int = 120):
    rng = rng_for(seed)
    shared = rng.standard_normal((n, 6))
    views = {}
    for i, d in enumerate((30, 45, 30, 60)):
        mix = rng.standard_normal((6, d))
        views[f"lang{i}/text/layer03"] = (
            shared @ mix + 0.7 * rng.standard_normal((n, d)) + rng.standard_normal(d)
        )
    views[("eng_Latn", "speech", "layer03")] = rng.standard_normal((n, 200))  # d > n
    return views


@pytest.mark.parametrize("metric", ["svcca", "pwcca", "cka", "cka_debiased"])
def test_pairwise_matches_single_pair(metric):
    views = _views()
    names = list(views)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    table = pairwise(views, pairs, metric=metric)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == len(pairs)
    single = {
        "svcca": svcca,
        "pwcca": pwcca,
        "cka": linear_cka,
        "cka_debiased": lambda x, y: linear_cka(x, y, debiased=True),
    }[metric]
    for row in table.itertuples():
        assert row.score == pytest.approx(single(views[row.view_a], views[row.view_b]), abs=1e-10)
        assert row.metric == metric and row.n == 120
    if metric in ("svcca", "pwcca"):
        for row in table.itertuples():
            det = svcca_details(views[row.view_a], views[row.view_b])
            assert (row.k_a, row.k_b) == (det.k_x, det.k_y)
    else:
        assert (table["k_a"] == [views[a].shape[1] for a in table["view_a"]]).all()
    calib = ["null_mean", "null_std", "heldout", "ci_low", "ci_high"]
    assert table[calib].isna().all().all()
    assert table["k_a"].dtype == np.int64 and table["n"].dtype == np.int64


def test_pairwise_float32_close_to_float64():
    views = _views()
    pairs = [(a, b) for a in views for b in views if a != b][:8]
    f64 = pairwise(views, pairs, device="cpu")
    f32 = pairwise(views, pairs, device="cpu", dtype="float32")
    assert np.abs(f64["score"] - f32["score"]).max() < 1e-5
    assert (f64["k_a"] == f32["k_a"]).all()


def test_null_near_chance_and_far_below_planted_score():
    x, y, _ = planted(rng_for(13), 400, sigmas=(0.2, 0.3, 0.4, 0.5), extra=10)
    table = pairwise({"x": x, "y": y}, [("x", "y")], null_permutations=40, seed=1)
    row = table.iloc[0]
    chance = expected_null_mean_cca(400, row.k_a, row.k_b)
    assert row.null_mean == pytest.approx(chance, abs=0.02)
    assert row.null_std > 0
    assert row.score > row.null_mean + 10 * row.null_std


def test_heldout_independent_near_zero_while_in_sample_inflated():
    rng = rng_for(14)
    views = {"a": rng.standard_normal((60, 50)), "b": rng.standard_normal((60, 50))}
    row = pairwise(views, [("a", "b")], heldout=True, seed=3).iloc[0]
    assert row.score > 0.5  # in-sample CCA of 60 sentences with ~45 kept dims
    assert abs(row.heldout) < 0.15
    row = pairwise(views, [("a", "b")], metric="pwcca", heldout=True, seed=3).iloc[0]
    assert abs(row.heldout) < 0.15


def test_heldout_on_planted_data_is_positive_and_below_in_sample():
    x, y, _ = planted(rng_for(15), 600, sigmas=(0.2, 0.3), extra=6)
    for metric in ("svcca", "pwcca"):
        row = pairwise({"x": x, "y": y}, [("x", "y")], metric=metric, heldout=True).iloc[0]
        assert 0.1 < row.heldout < row.score
    row = pairwise({"x": x, "y": y}, [("x", "y")], metric="cka", heldout=True).iloc[0]
    assert np.isnan(row.heldout)


def test_bootstrap_interval():
    x, y, _ = planted(rng_for(16), 300, sigmas=(0.2, 0.3), extra=3)
    for metric in ("svcca", "cka"):
        row = pairwise({"x": x, "y": y}, [("x", "y")], metric=metric, bootstrap=30).iloc[0]
        assert 0.0 < row.ci_low < row.ci_high < 1.0
        assert row.ci_high - row.ci_low < 0.3


def test_reproducible_and_independent_of_other_pairs():
    views = _views()
    names = list(views)
    opts = {"null_permutations": 5, "heldout": True, "bootstrap": 4, "seed": 7}
    target = (names[0], names[4])
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    for metric in ("svcca", "pwcca", "cka"):
        alone = pairwise(views, [target], metric=metric, **opts)
        again = pairwise(views, [target], metric=metric, **opts)
        pd.testing.assert_frame_equal(alone, again)
        many = pairwise(views, pairs, metric=metric, **opts)
        row = many[(many["view_a"] == target[0]) & many["view_b"].map(lambda v: v == target[1])]
        pd.testing.assert_frame_equal(row.reset_index(drop=True), alone)
        other_seed = pairwise(views, [target], metric=metric, **{**opts, "seed": 8})
        assert other_seed["null_mean"].iloc[0] != alone["null_mean"].iloc[0]


def test_nulls_equal_the_permuted_pairs_scored_from_scratch():
    """Known answer for the shared draws: each null draw equals SVCCA/PWCCA/CKA of x against
    y with its rows permuted, reduced again from scratch by the single-pair functions; to
    1e-9 with float64 draws, to 1e-6 with the default single-precision ones."""
    rng = rng_for(30)
    x, y, _ = planted(rng, 90, sigmas=(0.3, 0.5, 0.8), extra=25)
    y = y @ rng.standard_normal((28, 120))  # wider than it has sentences: the Gram path
    perms = pair_permutations(4, "x", "y", 90, 6)
    for dtype, tol in ((None, 1e-6), ("float64", 1e-9)):
        table = pairwise(
            {"x": x, "y": y}, [("x", "y")], metric=["svcca", "pwcca", "cka"],
            null_permutations=6, seed=4, dtype=dtype,
        )  # fmt: skip
        for metric, fn in (("svcca", svcca), ("pwcca", pwcca), ("cka", linear_cka)):
            draws = [fn(x, y[p]) for p in perms]
            row = table[table["metric"] == metric].iloc[0]
            assert row.null_mean == pytest.approx(np.mean(draws), abs=tol), (dtype, metric)
            assert row.null_std == pytest.approx(np.std(draws, ddof=1), abs=tol), (dtype, metric)


@pytest.mark.parametrize(
    "metrics", [["svcca"], ["pwcca"], ["svcca", "pwcca", "cka", "cka_debiased"]]
)
def test_single_precision_draws_equal_double_precision(metrics):
    """The default null draws (float32; for SVCCA/PWCCA through LAPACK, one matrix at a time)
    equal float64 draws to 1e-6, with x or y the narrower side, with and without PWCCA's
    eigenvectors; the scores themselves stay float64 and do not move at all."""
    rng = rng_for(31)
    views = {
        name: rng.standard_normal((80, r)) @ rng.standard_normal((r, 40))
        + 0.05 * rng.standard_normal((80, 40))
        for name, r in (("x", 9), ("y", 15))
    }
    opts = {"metric": metrics, "null_permutations": 8, "seed": 1}
    single = pairwise(views, [("x", "y"), ("y", "x")], **opts)
    double = pairwise(views, [("x", "y"), ("y", "x")], dtype="float64", **opts)
    cca = single["metric"].isin(["svcca", "pwcca"])
    assert (single["k_a"] != single["k_b"])[cca].all()
    assert single["score"].tolist() == double["score"].tolist()
    for column in ("null_mean", "null_std"):
        np.testing.assert_allclose(single[column], double[column], rtol=0, atol=1e-6)
    assert (single["null_mean"] != double["null_mean"]).any()  # two routes were taken


@pytest.mark.parametrize(("spread", "route"), [(3.0, "_q_cholesky"), (6.0, "_q_single")])
def test_single_precision_pwcca_weights_equal_householder_in_float64(monkeypatch, spread, route):
    """The null draws' PWCCA weights from float32 vectors: by float64 Cholesky QR where
    max(s)/min(s) is at most 1e4, else by single-precision Householder QR (the other route
    is made to fail); either equals float64 Householder QR of the same matrices to 1e-5."""
    from gapscope import similarity as sim

    rng = rng_for(34)
    k = 40
    s = np.logspace(0, -spread, k).astype(np.float32)[None, :].repeat(3, 0)
    vecs = np.stack([np.linalg.qr(rng.standard_normal((k, k)))[0] for _ in range(3)])
    vecs = vecs.astype(np.float32)
    want = [
        (abs(np.linalg.qr(si[:, None].astype(np.float64) * v)[0]) * si[:, None]).sum(0)
        for si, v in zip(s, vecs.astype(np.float64), strict=True)
    ]
    other = {"_q_cholesky": "_q_single", "_q_single": "_q_cholesky"}[route]
    monkeypatch.setattr(sim, other, lambda a: pytest.fail(f"{other} taken"))
    got = sim._pw_side_weights(vecs, s)
    np.testing.assert_allclose(got, np.stack(want), rtol=0, atol=1e-5)


@pytest.mark.parametrize("k", [24, 30])
def test_pwcca_of_bases_that_must_share_directions_keeps_float64(k):
    """With k_a + k_b > n - 1 some canonical correlations are exactly 1, and single
    precision mixed their eigenvectors: PWCCA's null drifted by several null stds. Such
    tap pairs are computed in float64 whatever the dtype, so every route gives its numbers."""
    rng = rng_for(32)
    z = rng.standard_normal((40, 6))
    views = {
        name: z @ rng.standard_normal((6, 60)) + rng.standard_normal((40, 60))
        for name in ("x", "y")
    }
    opts = {"metric": ["svcca", "pwcca"], "null_permutations": 10, "seed": 2, "k": k}
    double = pairwise(views, [("x", "y")], dtype="float64", **opts)
    assert (double["k_a"] + double["k_b"] > 40 - 1).all()
    for dtype in (None, "float32"):
        got = pairwise(views, [("x", "y")], dtype=dtype, **opts)
        pd.testing.assert_frame_equal(got, double)


def test_float32_scores_on_the_cpu_equal_float64_to_single_precision():
    """dtype="float32" computes scores (and PWCCA's weights from one unbatched SVD) in
    single precision: they equal float64's to 1e-5."""
    rng = rng_for(33)
    z = rng.standard_normal((80, 5))
    views = {
        name: z @ rng.standard_normal((5, 40)) + 0.5 * rng.standard_normal((80, 40))
        for name in ("x", "y")
    }
    opts = {"metric": ["svcca", "pwcca"], "null_permutations": 0, "heldout": True}
    single = pairwise(views, [("x", "y")], dtype="float32", **opts)
    double = pairwise(views, [("x", "y")], dtype="float64", **opts)
    for column in ("score", "heldout"):
        np.testing.assert_allclose(single[column], double[column], rtol=0, atol=1e-5)


def ref_heldout(
    x: np.ndarray, y: np.ndarray, halves, variance: float = 0.99, fixed_k: int | None = None
) -> float:
    """Held-out SVCCA from the textbook recipe: per fold, SVD reductions of the centred fit
    halves, canonical weights by inverse square roots, test halves projected with the fit
    means and weights, mean Pearson correlation of the paired variates; folds averaged."""
    scores = []
    for fit, test in (halves, halves[::-1]):
        proj = []
        for v in (x, y):
            mean = v[fit].mean(axis=0)
            u, s, vt = np.linalg.svd(v[fit] - mean, full_matrices=False)
            cum = np.cumsum(s**2)
            k = fixed_k or int(np.searchsorted(cum, variance * cum[-1])) + 1
            proj.append(((v[fit] - mean) @ vt[:k].T, (v[test] - mean) @ vt[:k].T))
        (fa, ta), (fb, tb) = proj
        n = len(fit)
        ia, ib = inv_sqrt(fa.T @ fa / n), inv_sqrt(fb.T @ fb / n)
        u, _, vt = np.linalg.svd(ia @ (fa.T @ fb / n) @ ib)
        k = min(fa.shape[1], fb.shape[1])
        va, vb = ta @ ia @ u[:, :k], tb @ ib @ vt.T[:, :k]
        scores.append(np.mean([np.corrcoef(va[:, i], vb[:, i])[0, 1] for i in range(k)]))
    return float(np.mean(scores))


@pytest.mark.parametrize("wide", [False, True])
def test_heldout_equals_the_textbook_split_half_recipe(wide):
    """Known answer for the folds (from the view's Gram matrix when dim > n, else from the
    data): the same split, reductions and canonical weights as a from-scratch recipe."""
    rng = rng_for(31)
    x, y, _ = planted(rng, 80, sigmas=(0.2, 0.45, 0.7, 1.1), extra=6)
    if wide:
        x, y = x @ rng.standard_normal((10, 150)), y @ rng.standard_normal((10, 150))
    row = pairwise({"x": x, "y": y}, [("x", "y")], heldout=True, seed=5, epsilon=0.0).iloc[0]
    from gapscope.similarity import _split

    assert row.heldout == pytest.approx(ref_heldout(x, y, _split(5, 80)), abs=1e-8)


def test_heldout_when_the_gram_route_falls_back_to_the_svd():
    """Wide views far from the origin with a steep spectrum: at k = 15 the fit half's Gram
    eigenvalues fall below the 1e-6 ratio, so each fold is reduced by an SVD of the fit
    half, which must be centred with the fit half's own mean, as the Gram route is."""
    rng = rng_for(32)
    n, d = 120, 300
    z = rng.standard_normal((n, 3))
    scales = np.concatenate([np.logspace(0, -5, 15), np.full(d - 15, 1e-7)])

    def view(offset: float) -> np.ndarray:
        return (z @ rng.standard_normal((3, d)) + rng.standard_normal((n, d))) * scales + offset

    x, y = view(5.0), view(-3.0)
    from gapscope.similarity import _GRAM_MIN_RATIO, _split

    fit = x[_split(2, n)[0]]
    lam = np.linalg.svd(fit - fit.mean(0), compute_uv=False) ** 2
    assert lam[14] < _GRAM_MIN_RATIO * lam[0]  # the fallback is what this test exercises
    row = pairwise({"x": x, "y": y}, [("x", "y")], k=15, heldout=True, seed=2, epsilon=0.0)
    expected = ref_heldout(x, y, _split(2, n), fixed_k=15)
    assert row.iloc[0].heldout == pytest.approx(expected, abs=1e-6)


def test_prepared_views_serve_every_pair_and_metric_as_pairwise_does():
    views = _views()
    names = list(views)
    metrics = ["svcca", "pwcca", "cka", "cka_debiased"]
    opts = {"null_permutations": 4, "heldout": True, "seed": 3}
    together = pairwise(views, [(names[0], names[1]), (names[2], names[4])], metric=metrics, **opts)
    for metric in metrics:
        alone = pairwise(views, [(names[0], names[1]), (names[2], names[4])], metric=metric, **opts)
        pd.testing.assert_frame_equal(
            together[together["metric"] == metric].reset_index(drop=True), alone
        )
    prepared = {nm: prepare_view(views[nm], name=nm, heldout=True, seed=3) for nm in names[:2]}
    perms = pair_permutations(3, names[0], names[1], 120, 4)
    (scores,) = compare_views([(prepared[names[0]], prepared[names[1]], perms)], metrics,
                              heldout=True)  # fmt: skip
    for metric in metrics:
        row = together[(together["metric"] == metric)].iloc[0]
        got = scores[metric]
        assert (got.score, got.null_mean, got.null_std) == pytest.approx(
            (row.score, row.null_mean, row.null_std), abs=1e-12
        )
        assert (got.k_a, got.k_b, got.n) == (row.k_a, row.k_b, row.n)


@pytest.mark.parametrize(("dtype", "tol"), [("float64", 1e-7), (None, 1e-5)])
def test_torch_arrays_give_the_numbers_of_numpy(dtype, tol):
    """The GPU code path (torch tensors), run on the CPU, equals the numpy path: to 1e-7 in
    float64, and to single precision at the defaults (float32 products and draws on a GPU,
    float32 draws on the CPU)."""
    torch = pytest.importorskip("torch")
    views = _views()
    a, b = list(views)[0], list(views)[2]
    metrics = ["svcca", "pwcca", "cka", "cka_debiased", "retrieval", "retrieval_cosine", "mknn"]
    perms = pair_permutations(0, a, b, 120, 5)
    results = []
    for device in ("cpu", torch.device("cpu")):
        va, vb = (prepare_view(views[nm], name=nm, heldout=True, device=device) for nm in (a, b))
        (scores,) = compare_views([(va, vb, perms)], metrics, heldout=True, dtype=dtype)
        results.append(scores)
    for metric in metrics:
        got, want = results[1][metric], results[0][metric]
        # torch's LAPACK (MKL) rounds differently from numpy's (OpenBLAS): PWCCA's weights
        # move by ~1e-9, and the held-out score amplifies rounding where canonical
        # correlations nearly tie (docs/performance.md)
        for field in ("score", "null_mean", "null_std"):
            assert getattr(got, field) == pytest.approx(getattr(want, field), abs=tol), metric
        assert got.heldout == pytest.approx(want.heldout, abs=max(tol, 1e-6), nan_ok=True)


def test_auto_device_is_the_cpu_without_a_visible_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_device("auto") == "cpu"
    assert resolve_device(None) == "cpu"
    assert resolve_device("cpu") == "cpu"


def test_math_module_knows_no_store_model_or_workflow():
    """gapscope.similarity is pure math on arrays: no store, model, stage or Snakemake import,
    and importing it (as a pair job does) loads no torch, pandas or zarr."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "gapscope/similarity.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    forbidden = ("gapscope.models", "gapscope.store", "gapscope.stages", "snakemake", "zarr")
    assert not [m for m in imported if m.startswith(forbidden)], imported
    code = (
        "import sys, gapscope.stages.similarity; "
        "print(sorted(m for m in ('torch', 'pandas', 'zarr', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


@pytest.mark.parametrize("scipy_found", [True, False])
def test_lapack_wrappers_are_scipys_own_without_importing_scipy_linalg(scipy_found):
    """The BLAS/LAPACK wrappers the CPU path calls are the very functions scipy.linalg
    exports, loaded without the package when their files are where scipy keeps them, and
    from the package import when they are not."""
    import subprocess
    import sys

    code = (
        "import sys, scipy\n"
        + ("" if scipy_found else "scipy.__file__ = '/nowhere/scipy/__init__.py'\n")
        + "from gapscope.similarity import _scipy_wrappers\n"
        "lapack, blas = _scipy_wrappers('_flapack'), _scipy_wrappers('_fblas')\n"
        "alone = 'scipy.linalg' in sys.modules\n"
        "import scipy.linalg.blas as b, scipy.linalg.lapack as la\n"
        "names = ('dsytrd', 'dsytrd_lwork', 'dstevd', 'dormqr', 'ssyevd', 'sgeqrf', "
        "'sgeqrf_lwork', 'sorgqr')\n"
        "print(alone, all(getattr(lapack, n) is getattr(la, n) for n in names), "
        "blas.dsyrk is b.dsyrk)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == [str(not scipy_found), "True", "True"], result.stderr


# --------------------------------------------------------------------------- bad input


def test_mismatched_rows_name_both_views():
    rng = rng_for(17)
    views = {
        "eng_Latn/text/layer03": rng.standard_normal((60, 5)),
        "deu_Latn/text/layer03": rng.standard_normal((59, 5)),
    }
    with pytest.raises(
        ValueError,
        match=r"'eng_Latn/text/layer03' and 'deu_Latn/text/layer03' "
        r"have 60 and 59 rows",
    ):
        pairwise(views, [tuple(views)])
    with pytest.raises(ValueError, match="'x' and 'y' have 60 and 59 rows"):
        svcca(*views.values())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_view_and_rows(bad):
    rng = rng_for(18)
    x = rng.standard_normal((40, 6))
    x[[3, 17], 2] = bad
    views = {"ok": rng.standard_normal((40, 6)), "deu_Latn/speech/layer01": x}
    with pytest.raises(
        ValueError,
        match=r"'deu_Latn/speech/layer01' has NaN or inf values in "
        r"2 of 40 rows",
    ):
        pairwise(views, [("ok", "deu_Latn/speech/layer01")], metric="cka")
    with pytest.raises(ValueError, match="'y' has NaN or inf values in 2 of 40 rows"):
        pwcca(views["ok"], x)


def test_too_few_sentences():
    views = {"a": np.ones((2, 4)), "b": np.zeros((2, 4))}
    with pytest.raises(ValueError, match="'a' has 2 sentences; at least 3"):
        pairwise(views, [("a", "b")])
    with pytest.raises(ValueError, match="at least 4 sentences"):
        linear_cka(np.eye(3), np.eye(3), debiased=True)


def test_all_constant_view_is_an_error_but_constant_columns_are_fine():
    rng = rng_for(19)
    x = rng.standard_normal((30, 5))
    const = np.full((30, 4), 0.1)
    views = {"a": x, "flat": const}
    for metric in ("svcca", "cka"):
        with pytest.raises(
            ValueError, match="'flat' has zero variance: all 4 columns are constant"
        ):
            pairwise(views, [("a", "flat")], metric=metric)
    with pytest.raises(ValueError, match="'y' has zero variance"):
        linear_cka(x, const)
    # constant columns carry no variance and change nothing
    padded = np.hstack([x, const])
    assert svcca(padded, x, variance=1.0, epsilon=0.0) == pytest.approx(1.0, abs=1e-10)
    assert svcca_details(padded, x, variance=1.0).k_x == 5
    assert linear_cka(padded, x) == pytest.approx(1.0, abs=1e-12)


def test_option_errors():
    rng = rng_for(20)
    x, y = rng.standard_normal((20, 4)), rng.standard_normal((20, 4))
    with pytest.raises(ValueError, match="k must be >= 1"):
        svcca(x, y, k=0)
    with pytest.raises(ValueError, match="variance must be in"):
        svcca(x, y, variance=1.5)
    with pytest.raises(ValueError, match="metric must be one of"):
        pairwise({"x": x}, [("x", "x")], metric="cca")
    with pytest.raises(ValueError, match="unknown view 'z'"):
        pairwise({"x": x}, [("x", "z")])
    with pytest.raises(ValueError, match="must be 2-D"):
        svcca(x[:, 0], y)
    with pytest.raises(ValueError, match="at least 6 sentences"):
        pairwise({"x": x[:5], "y": y[:5]}, [("x", "y")], heldout=True)
    assert svcca_details(x, y, k=50).k_x == 4  # capped, not an error


# --------------------------------------------------------------------------- properties


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(8, 60),
    dx=st.integers(1, 40),
    dy=st.integers(1, 40),
)
def test_property_symmetric_and_bounded(seed, n, dx, dy):
    rng = rng_for(seed)
    x, y = rng.standard_normal((n, dx)), rng.standard_normal((n, dy))
    a, b = svcca_details(x, y), svcca_details(y, x)
    assert a.score == pytest.approx(b.score, abs=1e-10)
    assert 0.0 <= a.score <= 1.0
    assert 1 <= a.k_x <= min(n - 1, dx)
    assert 0.0 <= linear_cka(x, y) <= 1.0 + 1e-12


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_property_invariant_to_rotation_scale_offset(seed, scale, shift):
    rng = rng_for(seed)
    x, y = decaying(rng, 50, 10), decaying(rng, 50, 8)
    y2 = scale * y @ random_orthogonal(rng, 8) + shift
    assert svcca(x, y2) == pytest.approx(svcca(x, y), abs=1e-8)
    assert pwcca(x, y2) == pytest.approx(pwcca(x, y), abs=1e-8)
    assert linear_cka(x, y2) == pytest.approx(linear_cka(x, y), abs=1e-8)


# --------------------------------------------------------------------------- sentence-level


POINTWISE = ["retrieval", "retrieval_cosine", "mknn"]


def paired(rng, n: int = 150, d: int = 40, noise: float = 0.4):
    """Two noisy copies of the same sentences, with a shared mean offset (raw pooled vectors
    are not centred)."""
    z = rng.standard_normal((n, d))
    offset = 2.0 * rng.standard_normal(d)
    return offset + z + noise * rng.standard_normal(
        (n, d)
    ), offset + z + noise * rng.standard_normal((n, d))


def test_identical_views_retrieve_and_agree_perfectly():
    x, _ = paired(rng_for(40))
    table = pairwise({"a": x, "b": x.copy()}, [("a", "b")], metric=POINTWISE)
    assert (table["score"] == 1.0).all()
    assert table.set_index("metric").loc[
        ["retrieval", "retrieval_cosine", "mknn"], "k_a"
    ].tolist() == [4, 0, 10]


def test_independent_views_score_chance():
    rng = rng_for(41)
    n, k = 300, 10
    x, y = rng.standard_normal((n, 50)), rng.standard_normal((n, 50))
    table = pairwise({"x": x, "y": y}, [("x", "y")], metric=POINTWISE, null_permutations=30,
                     mknn_k=k).set_index("metric")  # fmt: skip
    for metric in ("retrieval", "retrieval_cosine"):
        spread = np.sqrt(1 / n / (2 * n))  # mean of 2n Bernoulli(1/n)
        assert table.loc[metric, "score"] < 1 / n + 5 * spread
        assert table.loc[metric, "null_mean"] == pytest.approx(1 / n, abs=5 * spread)
    chance = k / (n - 1)
    spread = np.sqrt(chance / (n * k))
    assert table.loc["mknn", "score"] == pytest.approx(chance, abs=6 * spread)
    assert table.loc["mknn", "null_mean"] == pytest.approx(chance, abs=3 * spread)


def test_retrieval_and_mknn_invariant_to_rotation_and_global_scale():
    rng = rng_for(42)
    x, y = paired(rng, noise=1.0)
    q = random_orthogonal(rng, x.shape[1])
    base = pairwise({"x": x, "y": y}, [("x", "y")], metric=POINTWISE)
    # one space: rotate both views alike, scale each as it likes
    moved = pairwise({"x": 3.0 * x @ q, "y": 0.2 * y @ q}, [("x", "y")], metric=POINTWISE)
    np.testing.assert_array_equal(moved["score"], base["score"])
    # neighbours live within a view: mknn does not care how the other view is rotated
    other = pairwise({"x": x, "y": 7.0 * y @ random_orthogonal(rng, x.shape[1])},
                     [("x", "y")], metric="mknn")  # fmt: skip
    assert other["score"].iloc[0] == base.set_index("metric").loc["mknn", "score"]
    assert 0.2 < base.set_index("metric").loc["retrieval", "score"] < 1.0  # not trivial


def test_margin_beats_cosine_on_a_planted_hub():
    """A hub is close to every query: here b's vector of one sentence points along the mean
    that all raw vectors share. It captures queries under plain cosine; the ratio margin
    divides by how close a candidate is to everything, which is what it exists for."""
    scores = {}
    for hub in (False, True):
        rng = rng_for(43)
        n, d = 200, 50
        mean = 8.0 * np.ones(d) / np.sqrt(d)
        z = rng.standard_normal((n, d))
        x = mean + z + rng.standard_normal((n, d))
        y = mean + z + rng.standard_normal((n, d))
        if hub:
            y[7] = mean + 0.05 * rng.standard_normal(d)
        table = pairwise({"x": x, "y": y}, [("x", "y")], metric=POINTWISE[:2])
        scores[hub] = table.set_index("metric")["score"]
    cosine_loss = scores[False]["retrieval_cosine"] - scores[True]["retrieval_cosine"]
    margin_loss = scores[False]["retrieval"] - scores[True]["retrieval"]
    assert cosine_loss >= 0.03  # the hub takes queries from plain cosine
    assert margin_loss <= cosine_loss / 4
    assert scores[True]["retrieval"] > scores[True]["retrieval_cosine"] + 0.05


def test_ties_go_to_the_lowest_index():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]])
    y = x.copy()
    y[1] = y[0]  # sentences 0 and 1 of b are the same vector
    table = pairwise({"x": x, "y": y}, [("x", "y")], metric="retrieval_cosine")
    # a->b: sentence 1 (x=[0,1]) retrieves b's 2 ([1,1]); the others are right (0 beats 1)
    # b->a: b's 1 ([1,0]) retrieves a's 0; the others are right: (3/4 + 3/4) / 2
    assert table["score"].iloc[0] == 0.75


def test_pointwise_null_equals_the_permuted_pairs_scored_from_scratch():
    """Without ties, relabelling b's best matches and neighbours by a permutation is the
    same as permuting b's rows and scoring again."""
    x, y = paired(rng_for(44), n=80, noise=1.2)
    perms = pair_permutations(1, "x", "y", 80, 5)
    table = pairwise({"x": x, "y": y}, [("x", "y")], metric=POINTWISE, null_permutations=5,
                     seed=1, mknn_k=5).set_index("metric")  # fmt: skip
    for metric in POINTWISE:
        draws = [
            pairwise({"x": x, "y": y[p]}, [("x", "y")], metric=metric, mknn_k=5)["score"].iloc[0]
            for p in perms
        ]
        assert table.loc[metric, "null_mean"] == pytest.approx(np.mean(draws), abs=1e-12)
        assert table.loc[metric, "null_std"] == pytest.approx(np.std(draws, ddof=1), abs=1e-12)


def test_standardize_removes_a_rogue_dimension():
    """One dimension with a huge value of its own per view dominates cosine, CKA and even
    SVCCA's 99%-variance reduction (it keeps that dimension alone); z-scoring every
    dimension restores the shared structure for every metric."""
    rng = rng_for(45)
    x, y = paired(rng, n=200, d=20, noise=0.3)
    x[:, 0], y[:, 0] = 80.0 * rng.standard_normal(200), 80.0 * rng.standard_normal(200)
    metrics = [*POINTWISE, "cka", "svcca"]
    raw = pairwise({"x": x, "y": y}, [("x", "y")], metric=metrics).set_index("metric")
    std = pairwise({"x": x, "y": y}, [("x", "y")], metric=metrics, standardize=True)
    std = std.set_index("metric")
    assert raw.loc["svcca", "k_a"] == 1
    for metric in metrics:
        assert std.loc[metric, "score"] > raw.loc[metric, "score"] + 0.3, metric


def test_pointwise_metrics_get_no_bootstrap_interval_and_check_k():
    x, y = paired(rng_for(46), n=40)
    table = pairwise({"x": x, "y": y}, [("x", "y")], metric=["mknn", "svcca"], bootstrap=5)
    assert table.set_index("metric").loc["mknn", ["ci_low", "ci_high"]].isna().all()
    assert table.set_index("metric").loc["svcca", ["ci_low", "ci_high"]].notna().all()
    with pytest.raises(ValueError, match=r"mknn: k must be an integer in \[1, n - 1\] = \[1, 39\]"):
        pairwise({"x": x, "y": y}, [("x", "y")], metric="mknn", mknn_k=40)
    zero = x.copy()
    zero[3] = 0.0
    with pytest.raises(ValueError, match="'z' has 1 zero vectors \\(first: row 3\\)"):
        pairwise({"x": x, "z": zero}, [("x", "z")], metric="retrieval")
