"""Representation similarity between views: SVCCA, PWCCA and linear CKA, with calibration.

A *view* is an array of shape ``(n_sentences, dim)``; two views compared with each other hold
the same sentences in the same rows.

SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein, "SVCCA: Singular Vector Canonical Correlation
Analysis for Deep Learning Dynamics and Interpretability", NeurIPS 2017) as computed here:

1. centre every dimension over the sentences (no z-scoring);
2. thin SVD of each centred view;
3. keep the fewest directions whose squared singular values reach ``variance`` of the total
   (``>=``; ``variance=1.0`` keeps every numerically non-zero direction), or exactly ``k`` when
   ``k`` is given; never more than ``n - 1`` and never more than the numerical rank
   (``s_i > s_1 * max(n, dim) * eps``);
4. canonical correlations between the two reductions. With ``epsilon=0`` they are exactly the
   singular values of ``U_xᵀ U_y`` (``U`` = the orthonormal kept left singular vectors). With
   ``epsilon > 0`` they reproduce google/svcca ``cca_core.get_cca_similarity``: directions whose
   variance is below ``epsilon`` times the largest are dropped and ``epsilon`` is added to the
   max-normalised variances, which on an SVD reduction is the diagonal reweighting
   ``sqrt(d_i / (d_i + epsilon))``, ``d_i = s_i² / s_1²``, of the kept directions;
5. the score is the plain mean of all ``min(k_x, k_y)`` canonical correlations.

Public code that also calls itself SVCCA differs, and we do *not* follow it: the 99% rule on
singular-value mass ``Σs`` instead of variance ``Σs²`` (the google tutorial's printout, anatome);
no centring before the SVD (anatome); ``Σρ / sqrt(k_x k_y)`` instead of the mean (netrep, via
zero padding); a fixed ``k`` (google tutorial ``k=20``, platonic-rep ``k=10``); ReSi's threshold
bug that always gives ``k=1``; google's ``"mean"`` field, which drops the trailing 2% of the
coefficient mass. On the same data these variants range from 0.50 to 0.99, whereas the
project's anchor measurements put this definition within ~2e-8 of google/svcca's recipe run
with the 99%-variance rule and ``epsilon=1e-10`` (float64).

PWCCA (Morcos, Raghu & Bengio, NeurIPS 2018) follows google/svcca ``pwcca.compute_pwcca`` on
the same SVD reductions: the side with fewer kept directions (``x`` on ties) supplies the
weights; its canonical variates are orthonormalised (QR) and weight ``i`` is ``Σ_j |P_iᵀ z_j|``
over that side's reduced dimensions ``z_j``. Google's ``else`` branch (``y`` narrower) indexes
the wrong view; here it uses ``y``, so ``pwcca(x, y) == pwcca(y, x)`` whenever ``k_x != k_y``.

Linear CKA (Kornblith et al., ICML 2019) is ``‖Y_cᵀX_c‖²_F / (‖X_cᵀX_c‖_F ‖Y_cᵀY_c‖_F)``;
``debiased=True`` replaces each HSIC by the unbiased estimator of Song et al. (JMLR 2012), as in
Kornblith et al. 2019, Appendix; it needs ``n >= 4`` and may be slightly negative.

:func:`pairwise` decomposes each view once and reuses the basis for every pair, and adds the
calibrations (permutation null, split-half held-out score, bootstrap CI) described there.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from scipy.linalg import blas, lapack

__all__ = [
    "COLUMNS",
    "METRICS",
    "SvccaResult",
    "expected_null_mean_cca",
    "linear_cka",
    "pairwise",
    "pwcca",
    "svcca",
    "svcca_details",
]

METRICS = ("svcca", "pwcca", "cka", "cka_debiased")
COLUMNS = (
    "view_a",
    "view_b",
    "metric",
    "score",
    "null_mean",
    "null_std",
    "heldout",
    "ci_low",
    "ci_high",
    "n",
    "k_a",
    "k_b",
)

_F64 = torch.float64
_EPS64 = float(np.finfo(np.float64).eps)
# The Gram-matrix eigh path is used only when every kept eigenvalue is at least this fraction
# of the largest; otherwise the view is decomposed again with a thin SVD (better conditioned).
_GRAM_MIN_RATIO = 1e-6
# Random streams: (seed, stream, ...) seeds numpy's SeedSequence.
_NULL_STREAM, _HELDOUT_STREAM, _BOOTSTRAP_STREAM = 1, 2, 3
_BATCH_BYTES = 64 * 2**20
_MAX_BATCH = 512


@dataclass(frozen=True)
class SvccaResult:
    """SVCCA of one pair: score, all canonical correlations, kept dimensions and sentences."""

    score: float
    rho: np.ndarray
    k_x: int
    k_y: int
    n: int


@dataclass(frozen=True)
class _Reduction:
    """SVD reduction of one centred view (float64)."""

    u: torch.Tensor  # (n, k) orthonormal kept left singular vectors
    s: torch.Tensor  # (k,) kept singular values, descending
    w: torch.Tensor  # (k,) ridge factors sqrt(d / (d + epsilon)); ones when epsilon == 0
    rank: int

    @property
    def k(self) -> int:
        return int(self.s.shape[0])

    @property
    def basis(self) -> torch.Tensor:
        """Kept basis with the ridge factors applied: canonical correlations = svdvals(BaᵀBb)."""
        return self.u * self.w


# --------------------------------------------------------------------------- validation


def _as_tensor(x: Any, name: Hashable, device: torch.device | str = "cpu") -> torch.Tensor:
    """Validate one view and return it as a float64 tensor on ``device``."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device=device, dtype=_F64)
    else:
        arr = np.asarray(x)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f"view {name!r} must be a numeric array, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise ValueError(f"view {name!r} must be real, got dtype {arr.dtype}")
        t = torch.as_tensor(np.asarray(arr, dtype=np.float64), device=device)
    if t.ndim != 2:
        raise ValueError(
            f"view {name!r} must be 2-D (n_sentences, dim), got shape {tuple(t.shape)}"
        )
    n, d = t.shape
    if d < 1:
        raise ValueError(f"view {name!r} has no columns (shape {tuple(t.shape)})")
    if bool(torch.isfinite(t.sum())):  # fast path: a NaN or inf makes the sum non-finite
        n_bad = 0
    else:  # (an overflowing sum of finite values lands here too and passes the row check)
        bad = ~torch.isfinite(t).all(dim=1)
        n_bad = int(bad.sum())
    if n_bad:
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"view {name!r} has NaN or inf values in {n_bad} of {n} rows (first: row {first})"
        )
    if n < 3:
        raise ValueError(f"view {name!r} has {n} sentences; at least 3 are needed")
    return t


def _check_rows(a: Hashable, b: Hashable, na: int, nb: int) -> None:
    if na != nb:
        raise ValueError(
            f"views {a!r} and {b!r} have {na} and {nb} rows; "
            "both must hold the same sentences in the same order"
        )


def _check_cca_options(variance: float, k: int | None, epsilon: float) -> None:
    if not (isinstance(variance, int | float) and 0.0 < variance <= 1.0):
        raise ValueError(f"variance must be in (0, 1], got {variance!r}")
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise ValueError(f"k must be a positive integer or None, got {k!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
    if not (isinstance(epsilon, int | float) and 0.0 <= epsilon < 1.0):
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon!r}")


def _centre(x: torch.Tensor, name: Hashable, where: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Centre columns; exactly constant columns become exact zeros (no rounding residue)."""
    mean = x.mean(dim=0)
    xc = x - mean
    const = x.amax(dim=0) == x.amin(dim=0)
    if bool(const.all()):
        n, d = x.shape
        raise ValueError(
            f"view {name!r}{where} has zero variance: all {d} columns are constant "
            f"over the {n} sentences"
        )
    if bool(const.any()):
        xc[:, const] = 0.0
    return xc, mean


# --------------------------------------------------------------------------- SVD reduction


def _choose_k(lam: np.ndarray, variance: float, k: int | None, n: int, rank: int) -> int:
    """Number of kept directions from descending squared singular values ``lam``."""
    if k is not None:
        kk = int(k)
    elif variance >= 1.0:
        kk = rank
    else:
        cum = np.cumsum(lam)
        kk = int(np.searchsorted(cum, variance * cum[-1], side="left")) + 1
    return max(1, min(kk, n - 1, rank))


def _finish(
    u: torch.Tensor, s: torch.Tensor, lam: np.ndarray, lam0: float, epsilon: float, rank: int
) -> _Reduction:
    """Apply google's remove_small + ridge to a kept prefix of directions."""
    rel = lam / lam0
    keep = max(1, int((rel >= epsilon).sum()))  # rel is descending, so a prefix is kept
    rel = rel[:keep]
    w = np.sqrt(rel / (rel + epsilon)) if epsilon > 0 else np.ones(keep)
    return _Reduction(u[:, :keep], s[:keep], torch.as_tensor(w, dtype=_F64, device=u.device), rank)


def _top_eigh_lapack(
    xc: np.ndarray, pick: Callable[[np.ndarray], int]
) -> tuple[np.ndarray, torch.Tensor]:
    """CPU: eigenpairs of the Gram matrix ``xc xcᵀ`` from one tridiagonalisation, all
    eigenvalues, eigenvectors only for the kept top ones (``pick`` maps eigenvalues to k).

    Every BLAS/LAPACK call goes through scipy's OpenBLAS: mixing in numpy's (a separate
    library with its own thread pool) for the Gram matrix made the tridiagonalisation 2.5x
    slower on a 2-core machine, as the two pools' spinning threads competed.
    """
    g = blas.dsyrk(1.0, xc.T, trans=1, lower=1)  # lower triangle, Fortran order
    n = g.shape[0]
    c, d, e, tau, info = lapack.dsytrd(
        g, lower=1, lwork=int(lapack.dsytrd_lwork(n, lower=1)[0]), overwrite_a=1
    )
    if info != 0:
        raise np.linalg.LinAlgError(f"dsytrd failed (info={info})")
    lam = np.clip(scipy.linalg.eigvalsh_tridiagonal(d, e)[::-1], 0.0, None)
    kk = pick(lam)
    _, vt = scipy.linalg.eigh_tridiagonal(
        d, e, select="i", select_range=(n - kk, n - 1), lapack_driver="stemr"
    )
    # the blocked code needs kk * nb + 65 * nb of workspace; less silently falls back to the
    # unblocked one (about 6x slower here), so ask LAPACK for the optimum
    refl, vecs = np.asfortranarray(c[1:, : n - 1]), np.asfortranarray(vt[1:, :])
    lwork = int(lapack.dormqr("L", "N", refl, tau, vecs, lwork=-1)[1][0])
    q, _, info = lapack.dormqr("L", "N", refl, tau, vecs, lwork=max(1, lwork), overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dormqr failed (info={info})")
    vec = np.empty((n, kk))
    vec[0] = vt[0]
    vec[1:] = q
    return lam, torch.from_numpy(np.ascontiguousarray(vec[:, ::-1]))


def _reduce(xc: torch.Tensor, *, variance: float, k: int | None, epsilon: float) -> _Reduction:
    """Kept orthonormal basis of a centred view.

    When dim > n the basis comes from the n x n Gram matrix (on CPU: one LAPACK
    tridiagonalisation, all eigenvalues, eigenvectors for the kept ones only; on GPU: torch
    eigh), provided every kept eigenvalue is >= 1e-6 of the largest; otherwise, and when
    dim <= n, from a thin SVD of the view.
    """
    n, d = xc.shape
    tol = max(n, d) * _EPS64
    if d > n:
        ranks: list[int] = []

        def pick(lam: np.ndarray) -> int:
            ranks.append(int((lam > lam[0] * tol).sum()))
            return _choose_k(lam, variance, k, n, ranks[-1])

        try:
            if xc.device.type == "cpu":
                lam, u = _top_eigh_lapack(xc.numpy(), pick)
            else:
                g = xc @ xc.T
                lam_t, vec = torch.linalg.eigh(g)
                lam = lam_t.flip(0).clamp_min(0.0).cpu().numpy()
                u = vec[:, n - pick(lam) :].flip(1)
        except (np.linalg.LinAlgError, torch.linalg.LinAlgError):
            lam = None  # fall back to the SVD below
        if lam is not None:
            kk = u.shape[1]
            if lam[kk - 1] >= _GRAM_MIN_RATIO * lam[0]:
                s = torch.as_tensor(np.sqrt(lam[:kk]), dtype=_F64, device=xc.device)
                return _finish(u, s, lam[:kk], float(lam[0]), epsilon, ranks[-1])
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    s_np = s.cpu().numpy()
    rank = int((s_np > s_np[0] * tol).sum())
    lam = s_np**2
    kk = _choose_k(lam, variance, k, n, rank)
    return _finish(u[:, :kk], s[:kk], lam[:kk], float(lam[0]), epsilon, rank)


def _pw_weights(
    u: torch.Tensor, vh: torch.Tensor, s_a: torch.Tensor, s_b: torch.Tensor
) -> torch.Tensor:
    """PWCCA weights (unnormalised) from the SVD of BaᵀBb; works on batches."""
    if u.shape[-2] <= vh.shape[-1]:  # x side narrower (or tie): google's first branch
        c, s = s_a.unsqueeze(-1) * u, s_a
    else:  # y side narrower: the corrected else branch
        c, s = s_b.unsqueeze(-1) * vh.mT, s_b
    q, _ = torch.linalg.qr(c)
    # reduced data Z = U S, variates P = U Q: |PᵀZ|_{ij} = |Q_{ji}| s_j
    return (q.abs() * s.unsqueeze(-1)).sum(dim=-2)


def _pair_score(
    m: torch.Tensor, metric: str, s_a: torch.Tensor | None = None, s_b: torch.Tensor | None = None
) -> torch.Tensor:
    """SVCCA or PWCCA from (a batch of) ``BaᵀBb``."""
    if metric == "svcca":
        return torch.linalg.svdvals(m).clamp(max=1.0).mean(dim=-1)
    u, rho, vh = torch.linalg.svd(m, full_matrices=False)
    weights = _pw_weights(u, vh, s_a, s_b)
    return (weights * rho.clamp(max=1.0)).sum(dim=-1) / weights.sum(dim=-1)


# --------------------------------------------------------------------------- single pair


def svcca_details(
    x: Any, y: Any, *, variance: float = 0.99, k: int | None = None, epsilon: float = 1e-10
) -> SvccaResult:
    """SVCCA of one pair with its canonical correlations and kept dimensions.

    Raghu et al. 2017 (NeurIPS), as defined in the module docstring: centre, thin SVD, keep the
    fewest directions reaching ``variance`` of Σs² (``>=``) or exactly ``k`` (capped at
    ``n - 1`` and the numerical rank; ``k < 1`` is an error), canonical correlations between
    the reductions (google/svcca ``cca_core`` ridge ``epsilon``; ``epsilon=0`` gives exactly
    svdvals(U_xᵀU_y)), score = plain mean of all ``min(k_x, k_y)`` correlations. Not the
    Σs-mass rule (google tutorial printout, anatome), not uncentred (anatome), not
    Σρ/sqrt(k_x k_y) (netrep), not a fixed k (google tutorial 20, platonic-rep 10), not ReSi's
    k=1 bug, not google's trimmed ``"mean"`` field.
    """
    _check_cca_options(variance, k, epsilon)
    xt, yt = _as_tensor(x, "x"), _as_tensor(y, "y")
    _check_rows("x", "y", xt.shape[0], yt.shape[0])
    ra = _reduce(_centre(xt, "x")[0], variance=variance, k=k, epsilon=epsilon)
    rb = _reduce(_centre(yt, "y")[0], variance=variance, k=k, epsilon=epsilon)
    rho = torch.linalg.svdvals(ra.basis.T @ rb.basis).clamp(max=1.0)
    return SvccaResult(float(rho.mean()), rho.numpy(), ra.k, rb.k, int(xt.shape[0]))


def svcca(
    x: Any, y: Any, *, variance: float = 0.99, k: int | None = None, epsilon: float = 1e-10
) -> float:
    """SVCCA (Raghu et al. 2017): mean canonical correlation of the 99%-variance reductions.

    See :func:`svcca_details` (same arguments) for the exact definition and the public
    variants not followed; that function also reports ``k_x``, ``k_y`` and all correlations.
    """
    return svcca_details(x, y, variance=variance, k=k, epsilon=epsilon).score


def pwcca(
    x: Any, y: Any, *, variance: float = 0.99, k: int | None = None, epsilon: float = 1e-10
) -> float:
    """Projection-weighted CCA (Morcos et al. 2018) on the SVCCA reductions.

    Matches google/svcca ``pwcca.compute_pwcca`` applied to the reduced views, with its
    ``else``-branch bug fixed (the narrower side supplies the weights; ``x`` on ties).
    """
    _check_cca_options(variance, k, epsilon)
    xt, yt = _as_tensor(x, "x"), _as_tensor(y, "y")
    _check_rows("x", "y", xt.shape[0], yt.shape[0])
    ra = _reduce(_centre(xt, "x")[0], variance=variance, k=k, epsilon=epsilon)
    rb = _reduce(_centre(yt, "y")[0], variance=variance, k=k, epsilon=epsilon)
    return float(_pair_score(ra.basis.T @ rb.basis, "pwcca", ra.s, rb.s))


def _hsic_u(tr_kl: float, sum_k: float, sum_l: float, rows_kl: float, n: int) -> float:
    """Unbiased HSIC (Song et al. 2012) from the parts of zero-diagonal Grams K̃, L̃."""
    return (tr_kl + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * rows_kl / (n - 2)) / (n * (n - 3))


def _debiased_ratio(h_xy: float, h_xx: float, h_yy: float) -> float:
    if h_xx <= 0.0 or h_yy <= 0.0:
        return math.nan
    return h_xy / math.sqrt(h_xx * h_yy)


def linear_cka(x: Any, y: Any, *, debiased: bool = False) -> float:
    """Linear CKA, ``‖Y_cᵀX_c‖²_F / (‖X_cᵀX_c‖_F ‖Y_cᵀY_c‖_F)`` (Kornblith et al. 2019).

    Computed in Gram form (n x n) when that is cheaper (roughly n < dim). ``debiased=True``
    uses the unbiased HSIC estimator (Song et al. 2012; Kornblith et al. 2019, Appendix) and
    needs ``n >= 4``; it is NaN when a self-HSIC estimate is not positive.
    """
    xt, yt = _as_tensor(x, "x"), _as_tensor(y, "y")
    n = xt.shape[0]
    _check_rows("x", "y", n, yt.shape[0])
    if debiased and n < 4:
        raise ValueError(f"debiased CKA needs at least 4 sentences, views 'x' and 'y' have {n}")
    xc, _ = _centre(xt, "x")
    yc, _ = _centre(yt, "y")
    dx, dy = xc.shape[1], yc.shape[1]
    if n * (dx + dy) < dx * dx + dy * dy + dx * dy:
        kx, ky = xc @ xc.T, yc @ yc.T
        if not debiased:
            return float((kx * ky).sum() / (torch.linalg.norm(kx) * torch.linalg.norm(ky)))
        kx.fill_diagonal_(0.0)
        ky.fill_diagonal_(0.0)
        rx, ry = kx.sum(dim=1), ky.sum(dim=1)
        sx, sy = float(rx.sum()), float(ry.sum())
        h_xy = _hsic_u(float((kx * ky).sum()), sx, sy, float(rx @ ry), n)
        h_xx = _hsic_u(float((kx * kx).sum()), sx, sx, float(rx @ rx), n)
        h_yy = _hsic_u(float((ky * ky).sum()), sy, sy, float(ry @ ry), n)
        return _debiased_ratio(h_xy, h_xx, h_yy)
    cxy = torch.linalg.norm(yc.T @ xc) ** 2
    cxx = torch.linalg.norm(xc.T @ xc)
    cyy = torch.linalg.norm(yc.T @ yc)
    if not debiased:
        return float(cxy / (cxx * cyy))
    # feature-space form of the same estimator: K̃ = XXᵀ - diag, K̃1 = X(Xᵀ1) - diag(K)
    nx, ny = (xc * xc).sum(dim=1), (yc * yc).sum(dim=1)
    rx, ry = xc @ xc.sum(dim=0) - nx, yc @ yc.sum(dim=0) - ny
    sx, sy = float(rx.sum()), float(ry.sum())
    h_xy = _hsic_u(float(cxy - (nx * ny).sum()), sx, sy, float(rx @ ry), n)
    h_xx = _hsic_u(float(cxx**2 - (nx * nx).sum()), sx, sx, float(rx @ rx), n)
    h_yy = _hsic_u(float(cyy**2 - (ny * ny).sum()), sy, sy, float(ry @ ry), n)
    return _debiased_ratio(h_xy, h_xx, h_yy)


# --------------------------------------------------------------------------- chance level


@lru_cache(maxsize=256)
def _mc_null(m: int, p: int, q: int, trials: int, seed: int) -> float:
    """Mean canonical correlation of a uniformly random p-dim subspace of R^m with a fixed
    q-dim one (p <= q). Its squared correlations are the eigenvalues of W1 (W1 + W2)^-1 with
    independent Wishart_p(q) and Wishart_p(m - q) matrices, sampled by Bartlett's method."""
    rng = np.random.default_rng([seed, m, p, q])
    low = np.tril_indices(p, -1)
    diag = np.arange(p)

    def wishart(df: int, c: int) -> torch.Tensor:
        if df < p:  # rank-deficient: from the Gaussian factor itself
            g = torch.from_numpy(rng.standard_normal((c, df, p)))
            return g.mT @ g
        a = np.zeros((c, p, p))
        a[:, diag, diag] = np.sqrt(rng.chisquare(df - diag, size=(c, p)))
        a[:, low[0], low[1]] = rng.standard_normal((c, len(low[0])))
        at = torch.from_numpy(a)
        return at @ at.mT

    total, done = 0.0, 0
    step = _batch_len(p, p, 4)
    while done < trials:
        c = min(step, trials - done)
        w1 = wishart(q, c)
        chol = torch.linalg.cholesky(w1 + wishart(m - q, c))
        half = torch.linalg.solve_triangular(chol, w1, upper=False)
        sym = torch.linalg.solve_triangular(chol, half.mT, upper=False)  # L⁻¹ W1 L⁻ᵀ
        lam = torch.linalg.eigvalsh((sym + sym.mT) / 2)
        total += float(lam.clamp(0.0, 1.0).sqrt().sum())
        done += c
    return total / (trials * p)


def _wachter_null(m: int, p: int, q: int) -> float:
    from scipy import integrate

    a, b = p / m, q / m
    centre, half = a + b - 2 * a * b, 2 * math.sqrt(a * b * (1 - a) * (1 - b))
    lo, hi = max(centre - half, 0.0), min(centre + half, 1.0)

    def density(lam: float) -> float:
        return math.sqrt(max((lam - lo) * (hi - lam), 0.0)) / (2 * math.pi * lam * (1 - lam))

    cont = integrate.quad(lambda lam: math.sqrt(lam) * density(lam), lo, hi, limit=200)[0]
    return (cont + max(0.0, a + b - 1)) / a


def expected_null_mean_cca(
    n: int, k_a: int, k_b: int, *, method: str = "montecarlo", trials: int = 200, seed: int = 0
) -> float:
    """Chance level of the mean canonical correlation for independent views.

    With ``n`` sentences (centring leaves ``m = n - 1`` dimensions) the column spaces of two
    independent Gaussian views are uniformly random ``k_a``- and ``k_b``-dimensional subspaces
    of R^m, and the squared canonical correlations follow the Jacobi/MANOVA law (Wachter 1980).
    The same holds for the SVCCA reductions of i.i.d.-row Gaussian views whatever their
    covariance, and approximately for the row-permutation null used by :func:`pairwise`.

    ``method="montecarlo"`` (default): exact finite-n value up to Monte-Carlo error (mean over
    ``trials`` random subspace pairs from a fixed ``seed``; cached). ``method="wachter"``: the
    large-n limit, integrating sqrt(λ) against Wachter's density (plus the atom at 1 when
    ``k_a + k_b > m``); it is within about 3e-3 of the Monte-Carlo value for m >= 30.
    """
    m = int(n) - 1
    p, q = sorted((int(k_a), int(k_b)))
    if m < 2 or not 1 <= p <= q <= m:
        raise ValueError(f"need 1 <= k_a, k_b <= n - 1 and n >= 3, got n={n}, k={k_a},{k_b}")
    if method == "montecarlo":
        if trials < 1:
            raise ValueError(f"trials must be >= 1, got {trials}")
        return _mc_null(m, p, q, int(trials), int(seed))
    if method == "wachter":
        return _wachter_null(m, p, q)
    raise ValueError(f"method must be 'montecarlo' or 'wachter', got {method!r}")


# --------------------------------------------------------------------------- pairwise helpers


def _name_text(name: Any) -> str:
    """Stable text of a view name (numpy scalars as their Python values)."""
    if isinstance(name, str):
        return str(name)
    if isinstance(name, np.generic):
        return _name_text(name.item())
    if isinstance(name, tuple):
        return "(" + ", ".join(_name_text(p) for p in name) + ")"
    return repr(name)


def _pair_rng(seed: int, stream: int, a: Hashable, b: Hashable) -> np.random.Generator:
    ka = zlib.crc32(_name_text(a).encode("utf-8"))
    kb = zlib.crc32(_name_text(b).encode("utf-8"))
    return np.random.default_rng([seed, stream, ka, kb])


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.float32 if device.type == "cuda" else _F64
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dtype


def _batch_len(*dims: int) -> int:
    return max(1, min(_MAX_BATCH, _BATCH_BYTES // (8 * max(1, math.prod(dims)))))


def _batched_scores(
    jobs: Iterable[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]],
    metric: str,
    out: np.ndarray,
) -> None:
    """Score (index, BaᵀBb, s_a, s_b) jobs, batching matrices of equal shape."""
    buckets: dict[tuple[int, int], list] = {}

    def flush(shape: tuple[int, int]) -> None:
        items = buckets.pop(shape)
        idx = [i for i, _, _, _ in items]
        m = torch.stack([mm for _, mm, _, _ in items])
        sa = torch.stack([a for _, _, a, _ in items]) if metric == "pwcca" else None
        sb = torch.stack([b for _, _, _, b in items]) if metric == "pwcca" else None
        out[idx] = _pair_score(m, metric, sa, sb).to(_F64).cpu().numpy()

    for i, m, sa, sb in jobs:
        shape = (m.shape[0], m.shape[1])
        buckets.setdefault(shape, []).append((i, m, sa, sb))
        if len(buckets[shape]) >= _batch_len(*shape):
            flush(shape)
    for shape in list(buckets):
        flush(shape)


def _cca_scores(
    pair_list: list[tuple[Hashable, Hashable]],
    reds: dict[Hashable, _Reduction],
    metric: str,
    dt: torch.dtype,
) -> np.ndarray:
    bases = {nm: r.basis.to(dt) for nm, r in reds.items()}
    svals = {nm: r.s.to(dt) for nm, r in reds.items()}
    out = np.full(len(pair_list), np.nan)
    jobs = ((i, bases[a].T @ bases[b], svals[a], svals[b]) for i, (a, b) in enumerate(pair_list))
    _batched_scores(jobs, metric, out)
    return out


def _cca_null(
    ra: _Reduction, rb: _Reduction, perms: torch.Tensor, metric: str, dt: torch.dtype
) -> np.ndarray:
    """Scores with the rows of view b permuted (the kept basis of b is reused, rows permuted)."""
    ba, bb = ra.basis.to(dt), rb.basis.to(dt)
    sa, sb = ra.s.to(dt), rb.s.to(dt)
    n = bb.shape[0]
    step = _batch_len(n, bb.shape[1])
    scores = []
    for start in range(0, perms.shape[0], step):
        m = ba.T @ bb[perms[start : start + step]]
        scores.append(_pair_score(m, metric, sa, sb).to(_F64).cpu())
    return torch.cat(scores).numpy()


@dataclass(frozen=True)
class _Fold:
    """A view's reduction on the fit half and the test half projected into that basis."""

    red: _Reduction
    proj: torch.Tensor  # (n_test, k): test variate for coefficients c is proj @ c


def _fold(
    x: torch.Tensor,
    fit: torch.Tensor,
    test: torch.Tensor,
    name: Hashable,
    variance: float,
    k: int | None,
    epsilon: float,
) -> _Fold:
    xc_fit, mean = _centre(x[fit], name, " (held-out fit half)")
    red = _reduce(xc_fit, variance=variance, k=k, epsilon=epsilon)
    # fit variate B c = U W c = Xc_fit V S⁻¹ W c and V S⁻¹ = Xc_fitᵀ U S⁻²
    coef = xc_fit.T @ (red.u * (red.w / red.s**2))
    return _Fold(red, (x[test] - mean) @ coef)


def _column_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=0)
    b = b - b.mean(dim=0)
    return (a * b).sum(dim=0) / torch.sqrt((a * a).sum(dim=0) * (b * b).sum(dim=0))


def _heldout_pair(fa: _Fold, fb: _Fold, metric: str) -> float:
    u, _, vh = torch.linalg.svd(fa.red.basis.T @ fb.red.basis, full_matrices=False)
    r = _column_pearson(fa.proj @ u, fb.proj @ vh.mT)
    if metric == "svcca":
        return float(r.mean())
    weights = _pw_weights(u, vh, fa.red.s, fb.red.s)
    return float((weights * r).sum() / weights.sum())


def _split(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, _HELDOUT_STREAM, n]).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def _resamples(seed: int, n: int, count: int) -> np.ndarray:
    return np.random.default_rng([seed, _BOOTSTRAP_STREAM, n]).integers(0, n, size=(count, n))


@dataclass(frozen=True)
class _GramView:
    """Centred Gram matrix of one view, prepared for (debiased) linear CKA."""

    k: torch.Tensor  # (n, n) centred Gram; zero diagonal when debiased
    norm: float  # ‖K‖_F, or sqrt(unbiased self-HSIC) (NaN when not positive)
    rows: torch.Tensor | None  # K̃1 (debiased only)
    total: float  # 1ᵀK̃1 (debiased only)


def _gram_view(g: torch.Tensor, debiased: bool, dt: torch.dtype) -> _GramView:
    """From a Gram matrix of centred data (re-centred here, so resampled rows are fine)."""
    g = g - g.mean(dim=0) - g.mean(dim=1, keepdim=True) + g.mean()
    if not debiased:
        return _GramView(g.to(dt), float(torch.linalg.norm(g)), None, 0.0)
    n = g.shape[0]
    g = g.clone()
    g.fill_diagonal_(0.0)
    rows = g.sum(dim=1)
    total = float(rows.sum())
    h = _hsic_u(float((g * g).sum()), total, total, float(rows @ rows), n)
    norm = math.sqrt(h) if h > 0 else math.nan
    return _GramView(g.to(dt), norm, rows.to(dt), total)


def _gram_score(
    ga: _GramView, gb: _GramView, debiased: bool, perm: torch.Tensor | None = None
) -> float:
    kb = gb.k if perm is None else gb.k[perm][:, perm]
    tr = float((ga.k * kb).sum())
    if not debiased:
        return tr / (ga.norm * gb.norm)
    n = ga.k.shape[0]
    rb = gb.rows if perm is None else gb.rows[perm]
    h = _hsic_u(tr, ga.total, gb.total, float(ga.rows @ rb), n)
    return h / (ga.norm * gb.norm)


def _summarise_null(values: list[float] | np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


# --------------------------------------------------------------------------- pairwise


def pairwise(
    views: Mapping[Hashable, Any],
    pairs: Iterable[tuple[Hashable, Hashable]],
    *,
    metric: str = "svcca",
    variance: float = 0.99,
    k: int | None = None,
    epsilon: float = 1e-10,
    null_permutations: int = 0,
    heldout: bool = False,
    bootstrap: int = 0,
    ci: float = 0.95,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: Any = None,
) -> pd.DataFrame:
    """Similarity of many view pairs, one decomposition per view, with optional calibration.

    ``views`` maps any hashable name to an ``(n, dim)`` array (rows aligned across views);
    ``pairs`` lists ``(name_a, name_b)``. ``metric`` is one of ``svcca``, ``pwcca``, ``cka``,
    ``cka_debiased`` (definitions in the module docstring; ``variance``, ``k`` and ``epsilon``
    apply to the CCA metrics). SVCCA/PWCCA: each view is centred and reduced once (eigh of the
    Gram matrix when dim > n, else thin SVD) and the canonical correlations of a pair are the
    singular values of ``BaᵀBb``, batched over pairs of equal shape; scores equal those of
    :func:`svcca` / :func:`pwcca` on the same pair. CKA: one centred n x n
    Gram matrix per view (8 n² bytes each).

    Calibration (all optional, NaN when not requested):

    - ``null_permutations``: scores with the rows of view b shuffled relative to view a
      (``null_mean``, ``null_std`` with ddof=1; the SVD basis of b is reused with its rows
      permuted). Its expectation for CCA is about :func:`expected_null_mean_cca`.
    - ``heldout``: split-half score. Sentences are split in two halves; on the fit half each
      view is centred and reduced and the canonical directions are fitted; the other half is
      projected with the fit-half centring, reduction and canonical weights, and the score is
      the mean (PWCCA: the fit-half PWCCA-weighted mean) of the held-out Pearson correlations
      of paired variates; the two folds are averaged. Needs n >= 6. CKA: NaN (no fitted
      directions to hold out).
    - ``bootstrap``: resample sentences with replacement ``bootstrap`` times, recompute the
      score from scratch (reduction included), percentile interval at ``ci``. A resample
      in which a view is constant gives NaN, which makes the interval NaN. Duplicated
      sentences lower the effective sample size (about 0.63 n distinct), so resampled CCA
      scores (and debiased CKA) sit above the full-sample score, most visibly when k is a
      large fraction of n: read the interval as a spread, and use the null and the held-out
      score for chance level.

    Seeds: permutations come from ``(seed, crc32 of each view name)``; the held-out split and
    the bootstrap resamples from ``(seed, n)`` only, shared by all pairs of the call so each
    view is decomposed once per fold / resample. Either way a pair's numbers depend only on
    ``seed``, its two views and the options, never on the other pairs in the call.

    ``device``: None means CUDA when available. Decompositions (and the choice of k) are float64
    on the device; pair products and singular values use ``dtype`` (default float64 on CPU,
    float32 on CUDA).

    Returns one row per pair with columns :data:`COLUMNS`; ``k_a``/``k_b`` are the kept
    dimensions for svcca/pwcca and the view widths (dim) for the CKA metrics.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    _check_cca_options(variance, k, epsilon)
    for label, value in (
        ("null_permutations", null_permutations),
        ("bootstrap", bootstrap),
        ("seed", seed),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{label} must be a non-negative integer, got {value!r}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    pair_list: list[tuple[Hashable, Hashable]] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"each pair must be (name_a, name_b), got {pair!r}")
        for nm in pair:
            if nm not in views:
                raise ValueError(f"pair {tuple(pair)!r} names unknown view {nm!r}")
        pair_list.append((pair[0], pair[1]))
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype, dev)
    names = list(dict.fromkeys(nm for pair in pair_list for nm in pair))
    data = {nm: _as_tensor(views[nm], nm, dev) for nm in names}
    for a, b in pair_list:
        _check_rows(a, b, data[a].shape[0], data[b].shape[0])
    if metric == "cka_debiased":
        for a, b in pair_list:
            if data[a].shape[0] < 4:
                raise ValueError(
                    f"debiased CKA needs at least 4 sentences, views {a!r} and {b!r} have "
                    f"{data[a].shape[0]}"
                )
    cca = metric in ("svcca", "pwcca")
    if heldout and cca:
        for a, b in pair_list:
            if data[a].shape[0] < 6:
                raise ValueError(
                    f"the held-out score needs at least 6 sentences (3 per half), views {a!r} "
                    f"and {b!r} have {data[a].shape[0]}"
                )
    # from here on only centred data is used (the held-out halves and the resamples are
    # re-centred), which halves the memory held
    data = {nm: _centre(x, nm)[0] for nm, x in data.items()}
    opts = {"variance": variance, "k": k, "epsilon": epsilon}
    num = len(pair_list)
    null_mean, null_std = np.full(num, np.nan), np.full(num, np.nan)
    held, ci_low, ci_high = np.full(num, np.nan), np.full(num, np.nan), np.full(num, np.nan)

    def null_perms(a: Hashable, b: Hashable, n: int) -> torch.Tensor:
        rng = _pair_rng(seed, _NULL_STREAM, a, b)
        perms = np.stack([rng.permutation(n) for _ in range(null_permutations)])
        return torch.as_tensor(perms, device=dev)

    if cca:
        reds = {nm: _reduce(xc, **opts) for nm, xc in data.items()}
        scores = _cca_scores(pair_list, reds, metric, dt)
        k_a = [reds[a].k for a, _ in pair_list]
        k_b = [reds[b].k for _, b in pair_list]
        if null_permutations:
            for i, (a, b) in enumerate(pair_list):
                perms = null_perms(a, b, data[a].shape[0])
                null_mean[i], null_std[i] = _summarise_null(
                    _cca_null(reds[a], reds[b], perms, metric, dt)
                )
        if heldout:
            folds: dict[tuple[Hashable, int], _Fold] = {}
            for i, (a, b) in enumerate(pair_list):
                n = data[a].shape[0]
                halves = [torch.as_tensor(h, device=dev) for h in _split(seed, n)]
                fold_scores = []
                for f, (fit, test) in enumerate((halves, halves[::-1])):
                    for nm in (a, b):
                        if (nm, f) not in folds:
                            folds[(nm, f)] = _fold(data[nm], fit, test, nm, **opts)
                    fold_scores.append(_heldout_pair(folds[(a, f)], folds[(b, f)], metric))
                held[i] = float(np.mean(fold_scores))
    else:
        debiased = metric == "cka_debiased"
        grams = {nm: _gram_view(xc @ xc.T, debiased, dt) for nm, xc in data.items()}
        scores = np.array([_gram_score(grams[a], grams[b], debiased) for a, b in pair_list])
        k_a = [data[a].shape[1] for a, _ in pair_list]
        k_b = [data[b].shape[1] for _, b in pair_list]
        if null_permutations:
            for i, (a, b) in enumerate(pair_list):
                perms = null_perms(a, b, data[a].shape[0])
                null_mean[i], null_std[i] = _summarise_null(
                    [_gram_score(grams[a], grams[b], debiased, p) for p in perms]
                )
        del grams
    if bootstrap:
        boot = np.full((num, bootstrap), np.nan)
        by_n: dict[int, list[int]] = {}
        for i, (a, _) in enumerate(pair_list):
            by_n.setdefault(int(data[a].shape[0]), []).append(i)
        for n, rows in by_n.items():
            sub = [pair_list[i] for i in rows]
            used = list(dict.fromkeys(nm for pair in sub for nm in pair))
            for r, idx in enumerate(_resamples(seed, n, bootstrap)):
                idx_t = torch.as_tensor(idx, device=dev)
                boot[rows, r] = _bootstrap_once(sub, used, data, idx_t, metric, opts, dt)
        lo, hi = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
        for i in range(num):
            if np.isnan(boot[i]).any():
                continue
            ci_low[i], ci_high[i] = np.quantile(boot[i], [lo, hi])
    frame = pd.DataFrame(
        {
            "view_a": pd.Series([a for a, _ in pair_list], dtype=object),
            "view_b": pd.Series([b for _, b in pair_list], dtype=object),
            "metric": [metric] * num,
            "score": np.asarray(scores, dtype=np.float64),
            "null_mean": null_mean,
            "null_std": null_std,
            "heldout": held,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "n": np.array([data[a].shape[0] for a, _ in pair_list], dtype=np.int64),
            "k_a": np.array(k_a, dtype=np.int64),
            "k_b": np.array(k_b, dtype=np.int64),
        },
        columns=list(COLUMNS),
    )
    return frame


def _bootstrap_once(
    sub: list[tuple[Hashable, Hashable]],
    used: list[Hashable],
    centred: dict[Hashable, torch.Tensor],
    idx: torch.Tensor,
    metric: str,
    opts: dict[str, Any],
    dt: torch.dtype,
) -> np.ndarray:
    """Scores of ``sub`` on one resample (views redone from scratch; NaN for constant views)."""
    out = np.full(len(sub), np.nan)
    ok = {}
    cca = metric in ("svcca", "pwcca")
    debiased = metric == "cka_debiased"
    for nm in used:
        x = centred[nm][idx]
        try:
            xc, _ = _centre(x, nm)
        except ValueError:
            continue
        ok[nm] = _reduce(xc, **opts) if cca else _gram_view(xc @ xc.T, debiased, dt)
    good = [i for i, (a, b) in enumerate(sub) if a in ok and b in ok]
    if cca:
        out[good] = _cca_scores([sub[i] for i in good], ok, metric, dt)
    else:
        out[good] = [_gram_score(ok[sub[i][0]], ok[sub[i][1]], debiased) for i in good]
    return out


log = logging.getLogger(__name__)


# --- workflow glue: one pair of activation stores -> tidy rows ------------------------------

# which two views, then pairwise's own columns from ``metric`` on
TIDY_COLUMNS = [
    "model",
    "comparison",
    "lang_a",
    "modality_a",
    "tap_a",
    "lang_b",
    "modality_b",
    "tap_b",
    *COLUMNS[COLUMNS.index("metric") :],
]
_SAME_RUN_ATTRS = ("model", "adapter", "checkpoint", "revision", "init", "pooling", "recording")


def align_ids(
    ids_a: np.ndarray, ids_b: np.ndarray, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the sentence ids both views hold, in ascending id order.

    Views are aligned by id, never by position; ids held by only one view are dropped and
    counted in the log, so N is the size of the intersection (recorded with every score).
    """
    for ids, name in zip((ids_a, ids_b), names, strict=True):
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"view {name}: duplicate sentence ids in its store")
    common, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    if len(common) < 3:
        raise ValueError(
            f"views {names[0]} and {names[1]} share {len(common)} sentence ids; at least 3 needed"
        )
    only_a, only_b = len(ids_a) - len(common), len(ids_b) - len(common)
    if only_a or only_b:
        log.warning(
            "%s: %d ids only in %s, %d only in %s; comparing %d shared ids",
            "alignment",
            only_a,
            names[0],
            only_b,
            names[1],
            len(common),
        )
    return ia, ib


def compare_stores(path_a, path_b, *, model: str, adapter: str, options: Mapping) -> pd.DataFrame:
    """Every configured metric at every matching tap of two stores, as tidy rows."""
    from gapscope.models import cross_modal_pairs
    from gapscope.store import StoreError, open_view

    va, vb = open_view(path_a), open_view(path_b)
    aa, ab = va.attrs, vb.attrs
    for key in _SAME_RUN_ATTRS:
        if aa.get(key) != ab.get(key):
            raise StoreError(
                f"{path_a} and {path_b} come from different runs: {key} is "
                f"{aa.get(key)!r} vs {ab.get(key)!r}; rerun the stale store"
            )
    if aa["model"] != model:
        raise StoreError(f"{path_a}: store of model {aa['model']!r}, expected {model!r}")
    lang_a, mod_a, lang_b, mod_b = aa["language"], aa["modality"], ab["language"], ab["modality"]
    ia, ib = align_ids(va.sentence_ids, vb.sentence_ids, (str(path_a), str(path_b)))
    if mod_a != mod_b:
        comparison = "cross_modal"
        tap_pairs = cross_modal_pairs(adapter, va.taps, vb.taps)
    else:
        comparison = f"cross_lingual_{mod_a}"
        tap_pairs = [(t, t) for t in va.taps if t in set(vb.taps)]
    views, pairs = {}, []
    for tap_a, tap_b in tap_pairs:
        name_a, name_b = f"{lang_a}/{mod_a}/{tap_a}", f"{lang_b}/{mod_b}/{tap_b}"
        views.setdefault(name_a, va.read(tap_a)[ia].astype(np.float64))
        views.setdefault(name_b, vb.read(tap_b)[ib].astype(np.float64))
        pairs.append((name_a, name_b))
    svcca_opts = options.get("svcca", {})
    frames = []
    for metric in options["metrics"]:
        frames.append(
            pairwise(
                views,
                pairs,
                metric=metric,
                variance=svcca_opts.get("variance", 0.99),
                k=svcca_opts.get("k"),
                null_permutations=options.get("null_permutations", 0),
                heldout=options.get("heldout", True),
                bootstrap=options.get("bootstrap", 0),
                seed=options.get("seed", 0),
            )
        )
    table = pd.concat(frames, ignore_index=True)
    taps = dict(zip(map(tuple, pairs), tap_pairs, strict=True))
    table["tap_a"] = [
        taps[(a, b)][0] for a, b in zip(table["view_a"], table["view_b"], strict=True)
    ]
    table["tap_b"] = [
        taps[(a, b)][1] for a, b in zip(table["view_a"], table["view_b"], strict=True)
    ]
    table = table.assign(
        model=model,
        comparison=comparison,
        lang_a=lang_a,
        modality_a=mod_a,
        lang_b=lang_b,
        modality_b=mod_b,
    )
    return table[TIDY_COLUMNS]
