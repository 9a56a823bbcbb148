"""Representation similarity between views: SVCCA, PWCCA and linear CKA, with calibration.

A *view* is an array of shape ``(n_sentences, dim)``; two views compared with each other hold
the same sentences in the same rows. Everything here is a function of arrays: no files, no
models, no configuration (the similarity stage, :mod:`gapscope.stages.similarity`, reads the
stores and pairs the taps).

SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein, "SVCCA: Singular Vector Canonical Correlation
Analysis for Deep Learning Dynamics and Interpretability", NeurIPS 2017) as computed here:

1. centre every dimension over the sentences (no z-scoring);
2. thin SVD of each centred view;
3. keep the fewest directions whose squared singular values reach ``variance`` of the total
   (``>=``; ``variance=1.0`` keeps every numerically non-zero direction), or exactly ``k`` when
   ``k`` is given; never more than ``n - 1`` and never more than the numerical rank
   (``s_i > s_1 * max(n, dim) * eps``; from the Gram matrix, when dim > n, its eigenvalues
   ``s_i²`` are compared with that bound, ``s_i > s_1 * sqrt(max(n, dim) * eps)``, the
   rounding floor of a Gram eigenvalue: directions between the two bounds carry less than
   ``max(n, dim) * eps``, about 1e-13, of the largest one's variance, and the default
   ``epsilon`` of 1e-10 drops them anyway);
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

How many pairs are computed cheaply: :func:`prepare_view` does everything that depends on one
view (centring, the reduction, the held-out folds, the Gram matrix) once, and
:func:`compare_views` scores a pair of prepared views at every requested metric, sharing one
set of null draws between SVCCA and PWCCA and batching the draws of many tap pairs.
:func:`pairwise` is both, for in-memory views. Arrays are numpy (CPU, float64) or torch
tensors (a GPU); the same code serves both. Null draws run in single precision by default
(:func:`_draw_dtype`): their rounding is far below the null's own sampling error.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CCA_METRICS",
    "COLUMNS",
    "GRAM_METRICS",
    "MARGIN_NEIGHBOURS",
    "METRICS",
    "NEIGHBOUR_METRICS",
    "POINTWISE_METRICS",
    "RETRIEVAL_METRICS",
    "PairScores",
    "PreparedView",
    "SvccaResult",
    "compare_views",
    "expected_null_mean_cca",
    "linear_cka",
    "pair_permutations",
    "pairwise",
    "prepare_view",
    "pwcca",
    "resolve_device",
    "svcca",
    "svcca_details",
    "to_numpy",
]

CCA_METRICS = ("svcca", "pwcca")
GRAM_METRICS = ("cka", "cka_debiased")
RETRIEVAL_METRICS = ("retrieval", "retrieval_cosine")
NEIGHBOUR_METRICS = ("mknn",)
METRICS = (*CCA_METRICS, *GRAM_METRICS, *RETRIEVAL_METRICS, *NEIGHBOUR_METRICS)
# metrics that compare sentences one by one (need both views in one space only for retrieval)
POINTWISE_METRICS = (*RETRIEVAL_METRICS, *NEIGHBOUR_METRICS)
MARGIN_NEIGHBOURS = 4  # k of the ratio margin (Artetxe & Schwenk 2019; LASER's xsim)
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

Array = Any  # numpy.ndarray or torch.Tensor
_EPS64 = float(np.finfo(np.float64).eps)
# The Gram-matrix eigh path is used only when every kept eigenvalue is at least this fraction
# of the largest; otherwise the view is decomposed again with a thin SVD (better conditioned).
_GRAM_MIN_RATIO = 1e-6
# Random streams: (seed, stream, ...) seeds numpy's SeedSequence.
_NULL_STREAM, _HELDOUT_STREAM, _BOOTSTRAP_STREAM = 1, 2, 3
_BATCH_BYTES = 16 * 2**20
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
class Reduction:
    """The kept SVD directions of one centred view (float64)."""

    u: Array  # (n, k) orthonormal kept left singular vectors
    s: Array  # (k,) kept singular values, descending
    w: Array  # (k,) ridge factors sqrt(d / (d + epsilon)); ones when epsilon == 0
    rank: int

    @property
    def k(self) -> int:
        return int(self.s.shape[0])

    @property
    def basis(self) -> Array:
        """Kept basis with the ridge factors applied: canonical correlations = svdvals(BaᵀBb)."""
        return self.u * self.w


@dataclass(frozen=True)
class Fold:
    """A view's reduction on the fit half, and the test half projected into that basis."""

    red: Reduction
    proj: Array  # (n_test, k): the test variate for coefficients c is proj @ c


@dataclass(frozen=True)
class PreparedView:
    """Everything a pair needs from one view (one tap), computed once per view.

    ``cca``: the SVCCA reduction (CCA metrics); ``folds``: the two held-out folds
    (CCA metrics with ``heldout``); ``gram``: the doubly centred Gram matrix (CKA metrics);
    ``unit``: the rows scaled to unit length, in float32 (retrieval); ``knn``: each
    sentence's nearest neighbours in the view by cosine, itself excluded, nearest first,
    ties to the lowest row (mknn). Each is None when no requested metric needs it.
    """

    n: int
    dim: int
    cca: Reduction | None = None
    folds: tuple[Fold, Fold] | None = None
    gram: Array | None = None
    unit: Array | None = None
    knn: np.ndarray | None = None

    def map(self, convert: Callable[[Array], Array]) -> PreparedView:
        """The same view with every array passed through ``convert`` (e.g. to a device)."""

        def red(r: Reduction | None) -> Reduction | None:
            return (
                None if r is None else Reduction(convert(r.u), convert(r.s), convert(r.w), r.rank)
            )

        folds = None
        if self.folds is not None:
            folds = tuple(Fold(red(f.red), convert(f.proj)) for f in self.folds)
        gram = None if self.gram is None else convert(self.gram)
        unit = None if self.unit is None else convert(self.unit)
        return PreparedView(self.n, self.dim, red(self.cca), folds, gram, unit, self.knn)


@dataclass(frozen=True)
class PairScores:
    """One metric of one pair of prepared views (NaN where a calibration was not asked for)."""

    score: float
    null_mean: float
    null_std: float
    heldout: float
    n: int
    k_a: int
    k_b: int


# --------------------------------------------------------------------------- backends


def _is_numpy(x: Array) -> bool:
    return isinstance(x, np.ndarray)


def _xp(x: Array) -> Any:
    """The array module of ``x``: numpy, or torch for tensors (same names for what we use)."""
    if _is_numpy(x):
        return np
    import torch

    return torch


def _mT(x: Array) -> Array:
    """The transpose of the last two axes (``ndarray.mT`` needs numpy 2; 1.26 is supported)."""
    return np.swapaxes(x, -1, -2) if _is_numpy(x) else x.mT


def _concat(parts: Sequence[Array]) -> Array:
    return np.concatenate(parts) if _is_numpy(parts[0]) else _xp(parts[0]).cat(parts)


def _clip1(x: Array) -> Array:
    """Clip canonical correlations at 1 (rounding can put a perfect one a hair above)."""
    return _xp(x).clip(x, None, 1.0)


def to_numpy(x: Array) -> np.ndarray:
    """A numpy array of ``x`` (a copy from the device for a tensor)."""
    return x if _is_numpy(x) else x.detach().cpu().numpy()


def _like(values: Any, ref: Array) -> Array:
    """``values`` as an array of ``ref``'s kind, device and dtype."""
    if _is_numpy(ref):
        return np.asarray(values, dtype=ref.dtype)
    import torch

    return torch.as_tensor(np.asarray(values), dtype=ref.dtype, device=ref.device)


def _index(ref: Array, idx: np.ndarray) -> Array:
    """Integer index array usable on ``ref`` (a tensor on ``ref``'s device for torch)."""
    if _is_numpy(ref):
        return idx
    import torch

    return torch.as_tensor(idx, device=ref.device)


def resolve_device(device: Any = None) -> Any:
    """``None``/``"auto"``: CUDA when a CUDA GPU is visible, else ``"cpu"``; else as given.

    ``"cpu"`` means numpy. torch is imported only when a GPU may be there (an NVIDIA driver
    reports one and ``CUDA_VISIBLE_DEVICES`` does not hide it), so CPU jobs stay cheap to start.
    """
    if device is None or device == "auto":
        import os
        from pathlib import Path

        gpus = Path("/proc/driver/nvidia/gpus")
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1")
        if hidden or not (gpus.is_dir() and any(gpus.iterdir())):
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device) == "cpu":
        return "cpu"
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available here")
    return dev


def _on_device(x: np.ndarray, device: Any) -> Array:
    """A float64 numpy array on the computing device (numpy for ``"cpu"``)."""
    if device == "cpu":
        return x
    import torch

    return torch.as_tensor(x, device=device, dtype=torch.float64)


def _resolve_dtype(dtype: Any, device: Any) -> Any:
    """Dtype of pair products: float64 on the CPU, float32 on a GPU, unless given."""
    name = None if dtype is None else str(getattr(dtype, "__name__", dtype))
    name = None if name is None else name.removeprefix("torch.")
    if name not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if device == "cpu":
        return np.float32 if name == "float32" else np.float64
    import torch

    return torch.float64 if name == "float64" else torch.float32


def _draw_dtype(dtype: Any, device: Any) -> Any:
    """Dtype of the null draws: float32 on every device unless ``dtype`` asks otherwise.

    A draw's rounding in single precision (about 1e-6 on SVCCA and PWCCA) is far below the
    Monte-Carlo error of a null of a few dozen draws (its std / sqrt(draws), about 5e-4 at
    paper shape), and on the CPU single-precision LAPACK takes two thirds of the time. The
    one exception, PWCCA of bases that must share directions, is :func:`_pair_dtypes`.
    """
    return _resolve_dtype("float32" if dtype is None else dtype, device)


def _cast(x: Array, dtype: Any) -> Array:
    return x.astype(dtype, copy=False) if _is_numpy(x) else x.to(dtype)


# --------------------------------------------------------------------------- validation


def _as_array(x: Any, name: Hashable) -> np.ndarray:
    """Validate one view and return it as a float64 numpy array."""
    if not isinstance(x, np.ndarray) and type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"view {name!r} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"view {name!r} must be real, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"view {name!r} must be 2-D (n_sentences, dim), got shape {tuple(arr.shape)}"
        )
    n, d = arr.shape
    if d < 1:
        raise ValueError(f"view {name!r} has no columns (shape {tuple(arr.shape)})")
    if not np.isfinite(arr.sum()):  # a NaN or inf makes the sum non-finite
        bad = ~np.isfinite(arr).all(axis=1)
        n_bad = int(bad.sum())
        if n_bad:  # (an overflowing sum of finite values lands here too and passes)
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"view {name!r} has NaN or inf values in {n_bad} of {n} rows (first: row {first})"
            )
    if n < 3:
        raise ValueError(f"view {name!r} has {n} sentences; at least 3 are needed")
    return arr


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


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    chosen = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    bad = [m for m in chosen if m not in METRICS]
    if bad or not chosen:
        raise ValueError(f"metric must be one of {METRICS}, got {bad[0] if bad else metrics!r}")
    return chosen


def _centre(x: Array, name: Hashable, where: str = "") -> tuple[Array, Array]:
    """Centre columns; exactly constant columns become exact zeros (no rounding residue)."""
    mean = x.mean(0)
    xc = x - mean
    const = _constant_columns(x)
    if bool(const.all()):
        n, d = x.shape
        raise ValueError(
            f"view {name!r}{where} has zero variance: all {d} columns are constant "
            f"over the {n} sentences"
        )
    if bool(const.any()):
        xc[:, const] = 0.0
    return xc, mean


def _constant_columns(x: Array) -> Array:
    if _is_numpy(x):
        return x.max(axis=0) == x.min(axis=0)
    return x.amax(0) == x.amin(0)


# --------------------------------------------------------------------------- reduction


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
    u: Array, s: Array, lam: np.ndarray, lam0: float, epsilon: float, rank: int
) -> Reduction:
    """Apply google's remove_small + ridge to a kept prefix of directions."""
    rel = lam / lam0
    keep = max(1, int((rel >= epsilon).sum()))  # rel is descending, so a prefix is kept
    rel = rel[:keep]
    w = np.sqrt(rel / (rel + epsilon)) if epsilon > 0 else np.ones(keep)
    return Reduction(u[:, :keep], s[:keep], _like(w, u), rank)


@cache
def _scipy_wrappers(name: str) -> Any:
    """scipy's f2py wrappers of BLAS (``"_fblas"``) or LAPACK (``"_flapack"``).

    Importing ``scipy.linalg`` costs 0.2 CPU-s (its array-API layer imports numpy's optional
    submodules: f2py, testing, ma), a sixth of a similarity job at paper shape. So unless
    the package is imported already, the extension module is loaded from its own file and
    registered under its own name; a later ``import scipy.linalg`` reuses it (from
    ``sys.modules``: the package gains no ``_flapack`` attribute, and none of scipy's code
    needs one). These are the very functions ``scipy.linalg.blas`` and ``.lapack`` export.
    Any other layout falls back to importing the package.
    """
    import importlib.machinery
    import importlib.util
    import sys
    from pathlib import Path

    full = f"scipy.linalg.{name}"
    if full in sys.modules or "scipy.linalg" in sys.modules:
        return importlib.import_module(full)
    try:
        import scipy

        folder = Path(scipy.__file__).parent / "linalg"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                path = str(folder / f"{name}{suffix}")
                loader = importlib.machinery.ExtensionFileLoader(full, path)
                spec = importlib.util.spec_from_file_location(full, path, loader=loader)
                module = importlib.util.module_from_spec(spec)
                loader.exec_module(module)
                sys.modules[full] = module
                return module
    except ImportError:
        pass
    return importlib.import_module(full)


def _gram(xc: Array) -> Array:
    """The full symmetric Gram matrix ``xc xcᵀ``.

    On the CPU a ``dsyrk`` from scipy's OpenBLAS: mixing in numpy's BLAS (a separate library
    with its own thread pool) made the tridiagonalisation that follows 2.5x slower on a
    2-core machine, as the two pools' spinning threads competed.
    """
    if not _is_numpy(xc):
        return xc @ _mT(xc)
    dsyrk = _scipy_wrappers("_fblas").dsyrk
    low = np.tril(dsyrk(1.0, xc.T, trans=1, lower=1))  # the lower triangle, Fortran order
    low += np.tril(low, -1).T  # the upper triangle mirrored from it, exactly
    return low


def _top_eigh_lapack(
    g: np.ndarray, pick: Callable[[np.ndarray], int]
) -> tuple[np.ndarray, np.ndarray]:
    """CPU: eigenpairs of a Gram matrix, eigenvectors back-transformed only for the kept top
    ones (``pick`` maps the descending eigenvalues to k). ``g`` is read, not modified.

    One tridiagonalisation (``dsytrd``), every eigenpair of the tridiagonal matrix by divide
    and conquer (``dstevd``, BLAS-3 work: at n = 350 it takes a third of the time that MRRR
    ``stemr`` needs for the top 40%), then the kept vectors back through the reflectors
    (``dormqr``).
    """
    lapack = _scipy_wrappers("_flapack")
    n = g.shape[0]
    c, d, e, tau, info = lapack.dsytrd(
        np.asfortranarray(g), lower=1, lwork=int(lapack.dsytrd_lwork(n, lower=1)[0])
    )
    if info != 0:
        raise np.linalg.LinAlgError(f"dsytrd failed (info={info})")
    lam, vt, info = lapack.dstevd(d, e, compute_v=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dstevd failed (info={info})")
    lam = np.clip(lam[::-1], 0.0, None)
    kk = pick(lam)
    vt = vt[:, n - kk :]
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
    return lam, np.ascontiguousarray(vec[:, ::-1])


def _reduce(
    xc: Array,
    *,
    variance: float,
    k: int | None,
    epsilon: float,
    gram: Array | None = None,
) -> Reduction:
    """Kept orthonormal basis of a centred view.

    When dim > n the basis comes from the n x n Gram matrix (``gram`` when given; on CPU:
    one LAPACK tridiagonalisation, all eigenvalues, eigenvectors for the kept ones only; on
    a GPU: torch eigh), provided every kept eigenvalue is >= 1e-6 of the largest; otherwise,
    and when dim <= n, from a thin SVD of the view.
    """
    xp = _xp(xc)
    n, d = xc.shape
    tol = max(n, d) * _EPS64
    if d > n:
        ranks: list[int] = []

        def pick(lam: np.ndarray) -> int:
            ranks.append(int((lam > lam[0] * tol).sum()))
            return _choose_k(lam, variance, k, n, ranks[-1])

        g = _gram(xc) if gram is None else gram
        try:
            if _is_numpy(g):
                lam, u = _top_eigh_lapack(g, pick)
            else:
                lam_t, vec = xp.linalg.eigh(g)
                lam = to_numpy(xp.flip(lam_t, (0,)).clamp_min(0.0))
                u = xp.flip(vec[:, n - pick(lam) :], (1,))
        except np.linalg.LinAlgError:
            lam = None  # fall back to the SVD below
        except Exception as err:  # torch's LinAlgError, without importing torch here
            if type(err).__name__ != "_LinAlgError":
                raise
            lam = None
        if lam is not None:
            kk = u.shape[1]
            if lam[kk - 1] >= _GRAM_MIN_RATIO * lam[0]:
                s = _like(np.sqrt(lam[:kk]), u)
                return _finish(u, s, lam[:kk], float(lam[0]), epsilon, ranks[-1])
    u, s, _ = xp.linalg.svd(xc, full_matrices=False)
    s_np = to_numpy(s)
    rank = int((s_np > s_np[0] * tol).sum())
    lam = s_np**2
    kk = _choose_k(lam, variance, k, n, rank)
    return _finish(u[:, :kk], s[:kk], lam[:kk], float(lam[0]), epsilon, rank)


def _double_centre(g: Array) -> Array:
    """``C g C`` with ``C`` the centring matrix: the Gram of the same rows centred."""
    return g - g.mean(0) - g.mean(1)[:, None] + g.mean()


def _fold(
    xc: Array,
    fit: np.ndarray,
    test: np.ndarray,
    name: Hashable,
    gram: Array | None,
    variance: float,
    k: int | None,
    epsilon: float,
) -> Fold:
    """Reduce the fit half (centred with its own mean) and project the test half into it.

    The fit variate for coefficients ``c`` is ``B c = U W c = Xf V S⁻¹ W c`` with
    ``V S⁻¹ = Xfᵀ U S⁻²``, so the test variate is ``(Xt - mean_f) Xfᵀ U W S⁻² c``. When the
    view's Gram matrix is at hand, ``Xf Xfᵀ`` and ``(Xt - mean_f) Xfᵀ`` are blocks of it,
    re-centred with the fit half's mean, and no dim-sized product is needed.
    """
    xf_c, mean = _centre(xc[_index(xc, fit)], name, " (held-out fit half)")
    n_fit, d = xf_c.shape
    if gram is not None and d > n_fit:
        fi, ti = _index(gram, fit), _index(gram, test)
        g_ff = gram[fi][:, fi]
        g_tf = gram[ti][:, fi]
        # xf_c, centred with the fit half's own mean, is what _reduce decomposes when it
        # falls back from the Gram matrix to an SVD; ``cross`` holds for either basis
        red = _reduce(xf_c, variance=variance, k=k, epsilon=epsilon, gram=_double_centre(g_ff))
        cross = g_tf - g_tf.mean(1)[:, None] - g_ff.mean(0) + g_ff.mean()
        return Fold(red, cross @ (red.u * (red.w / red.s**2)))
    red = _reduce(xf_c, variance=variance, k=k, epsilon=epsilon)
    coef = _mT(xf_c) @ (red.u * (red.w / red.s**2))
    return Fold(red, (xc[_index(xc, test)] - mean) @ coef)


def _split(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out halves: a seeded random split of ``n`` sentences, each half sorted."""
    perm = np.random.default_rng([seed, _HELDOUT_STREAM, n]).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def _resamples(seed: int, n: int, count: int) -> np.ndarray:
    return np.random.default_rng([seed, _BOOTSTRAP_STREAM, n]).integers(0, n, size=(count, n))


def prepare_view(
    x: Any,
    *,
    name: Hashable = "x",
    metrics: str | Sequence[str] = METRICS,
    variance: float = 0.99,
    k: int | None = None,
    epsilon: float = 1e-10,
    heldout: bool = False,
    seed: int = 0,
    mknn_k: int = 10,
    standardize: bool = False,
    device: Any = "cpu",
) -> PreparedView:
    """Everything one view contributes to any pair, for the requested metrics.

    Validates and centres ``x`` (``name`` appears in errors), then keeps what the metrics
    need: the SVCCA reduction (CCA metrics), the two held-out folds (CCA metrics with
    ``heldout``; halves from ``seed`` and n, as :func:`pairwise` splits them), the doubly
    centred Gram matrix (CKA), the unit-length rows (retrieval) and the ``mknn_k`` nearest
    neighbours of every sentence (mknn). One Gram matrix serves the CKA metrics, the
    reduction when dim > n and the folds. ``standardize``: z-score every dimension first (see
    :func:`pairwise`). ``device``: ``"cpu"`` (numpy) or a torch device.
    """
    chosen = _check_metrics(metrics)
    _check_cca_options(variance, k, epsilon)
    arr = _as_array(x, name)
    n, d = arr.shape
    cca = any(m in CCA_METRICS for m in chosen)
    gram_metrics = any(m in GRAM_METRICS for m in chosen)
    if cca and heldout and n < 6:
        raise ValueError(
            f"the held-out score needs at least 6 sentences (3 per half), view {name!r} has {n}"
        )
    if "cka_debiased" in chosen and n < 4:
        raise ValueError(f"debiased CKA needs at least 4 sentences, view {name!r} has {n}")
    if "mknn" in chosen and not (isinstance(mknn_k, int | np.integer) and 1 <= mknn_k < n):
        raise ValueError(
            f"mknn: k must be an integer in [1, n - 1] = [1, {n - 1}] for view {name!r}, "
            f"got {mknn_k!r}"
        )
    x_dev = _on_device(arr, device)
    xc, _ = _centre(x_dev, name)
    if standardize:
        xc = x_dev = _standardized(xc)
    need_gram = gram_metrics or (cca and (d > n or heldout))
    gram = _gram(xc) if need_gram else None
    opts = {"variance": variance, "k": k, "epsilon": epsilon}
    red = _reduce(xc, gram=gram if d > n else None, **opts) if cca else None
    folds = None
    if cca and heldout:
        halves = _split(seed, n)
        folds = tuple(
            _fold(xc, fit, test, name, gram, **opts) for fit, test in (halves, halves[::-1])
        )
    unit = knn = None
    if any(m in POINTWISE_METRICS for m in chosen):
        unit = _unit_rows(x_dev, name)
        if "mknn" in chosen:
            knn = _neighbours(unit, mknn_k)
    return PreparedView(n, d, red, folds, _double_centre(gram) if gram_metrics else None, unit, knn)


def _standardized(xc: Array) -> Array:
    """Centred columns divided by their standard deviation (constant columns stay zero)."""
    std = (xc * xc).mean(0) ** 0.5
    return xc / _xp(xc).where(std > 0, std, 1.0)


def _unit_rows(x: Array, name: Hashable) -> Array:
    """Rows scaled to unit length, rounded to float32 (the activations' precision)."""
    norm = (x * x).sum(1) ** 0.5
    zero = to_numpy(norm == 0)
    if zero.any():
        rows = np.flatnonzero(zero)
        raise ValueError(
            f"view {name!r} has {len(rows)} zero vectors (first: row {rows[0]}); cosine "
            "similarity is undefined for them"
        )
    unit = x / norm[:, None]
    return unit.astype(np.float32) if _is_numpy(unit) else unit.float()


def _cosines(ua: Array, ub: Array) -> Array:
    """Cosine similarities of float32 unit rows, computed in float64."""
    if _is_numpy(ua):
        return ua.astype(np.float64) @ ub.astype(np.float64).T
    return ua.double() @ ub.double().mT


def _neighbours(unit: Array, k: int) -> np.ndarray:
    """(n, k) nearest neighbours of every row by cosine, itself excluded, nearest first;
    ties go to the lowest row index."""
    sim = _cosines(unit, unit)
    n = sim.shape[0]
    diag = _index(sim, np.arange(n))
    sim[diag, diag] = -np.inf
    if _is_numpy(sim):
        order = np.argsort(-sim, axis=1, kind="stable")
    else:
        order = _xp(sim).argsort(-sim, dim=1, stable=True)
    return to_numpy(order[:, :k]).astype(np.int32)


# --------------------------------------------------------------------------- pair kernels


def _batch_len(*dims: int) -> int:
    return max(1, min(_MAX_BATCH, _BATCH_BYTES // (8 * max(1, math.prod(dims)))))


def _pw_weights(u: Array, vh: Array, s_a: Array, s_b: Array) -> Array:
    """PWCCA weights (unnormalised) from the SVD of BaᵀBb; works on batches."""
    if u.shape[-2] <= vh.shape[-1]:  # x side narrower (or tie): google's first branch
        return _pw_side_weights(u, s_a)
    return _pw_side_weights(_mT(vh), s_b)  # y side narrower: the corrected else branch


def _pw_side_weights(vecs: Array, s: Array) -> Array:
    """Weights from the narrower side's singular vectors ``vecs`` (k x k, columns by rho).

    Reduced data Z = U S, google's variates P = U Q with Q from QR(S vecs):
    ``|PᵀZ|_ij = |Q_ji| s_j``. Single-precision batches (the null draws on the CPU) take Q
    from a float64 Cholesky QR where S is well conditioned, else from Householder QR.
    """
    a = s[..., :, None] * vecs
    if _is_numpy(a) and a.dtype == np.float32:
        q = _q_cholesky(a) if (s.max(-1) <= _CHOLQR_MAX_COND * s.min(-1)).all() else None
        q = _q_single(a) if q is None else q
        np.abs(q, out=q)
        return (s[..., None, :].astype(q.dtype) @ q)[..., 0, :]  # faster than a strided sum
    q, _ = _xp(vecs).linalg.qr(a)
    return (abs(q) * s[..., :, None]).sum(-2)


# numpy computes float32 linear algebra in float64 (its eigh and qr take as long for either);
# scipy's single-precision LAPACK, one matrix at a time, takes 0.67x (eigh) and 0.6x (qr) of
# numpy's time at k = 145


def _eigh_single(
    m: np.ndarray, x_side: bool, vectors: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Ascending eigenvalues (and eigenvectors) of ``m mᵀ`` (``x_side``) or ``mᵀ m`` for
    float32 matrices ``m`` (one, or a batch of them), one at a time: the lower triangle by
    BLAS ``ssyrk`` (half a product's work), then LAPACK ``ssyevd``."""
    blas, lapack = _scipy_wrappers("_fblas"), _scipy_wrappers("_flapack")
    flat = m.reshape(-1, *m.shape[-2:])
    side = flat.shape[-2] if x_side else flat.shape[-1]
    lam = np.empty((flat.shape[0], side), dtype=np.float32)
    vecs = np.empty((flat.shape[0], side, side), dtype=np.float32) if vectors else None
    for i, matrix in enumerate(flat):
        # Fortran-ordered views, so no copy: (mᵀ)ᵀ mᵀ = m mᵀ, or mᵀ (mᵀ)ᵀ = mᵀ m
        small = blas.ssyrk(1.0, matrix.T, trans=int(x_side), lower=1)
        *got, info = lapack.ssyevd(small, compute_v=int(vectors), lower=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"ssyevd failed (info={info})")
        lam[i] = got[0]
        if vecs is not None:
            vecs[i] = got[1]
    shape = (*m.shape[:-2], side)
    return lam.reshape(shape), None if vecs is None else vecs.reshape((*shape, side))


# Cholesky QR in float64 (Gram, Cholesky factor, triangular solve) takes 0.75x the time of
# single-precision Householder QR at k = 145; its Q is accurate to about eps64 cond(a)^2,
# cond(a) = max(s) / min(s) for a = S V with V orthogonal: 1e-8 at most below this bound
_CHOLQR_MAX_COND = 1e4


def _q_cholesky(a: np.ndarray) -> np.ndarray | None:
    """The Q factor (float64) of square matrices (one, or a batch of them) by Cholesky QR,
    through ``dsyrk``, ``dpotrf`` and ``dtrsm``; None if one's Gram is not positive definite.
    Columns may differ in sign from Householder's Q."""
    blas, lapack = _scipy_wrappers("_fblas"), _scipy_wrappers("_flapack")
    flat = a.reshape(-1, *a.shape[-2:]).astype(np.float64)
    q = np.empty_like(flat)
    for i, matrix in enumerate(flat):
        gram = blas.dsyrk(1.0, matrix.T, trans=0, lower=0)  # aᵀa, upper triangle
        factor, info = lapack.dpotrf(gram, lower=0, clean=1)
        if info != 0:
            return None
        q[i] = blas.dtrsm(1.0, factor, matrix, side=1, lower=0)  # a R⁻¹
    return q.reshape(a.shape)


def _q_single(a: np.ndarray) -> np.ndarray:
    """The Q factor of the QR decomposition of square float32 matrices (one, or a batch of
    them), through LAPACK ``sgeqrf`` and ``sorgqr``."""
    lapack = _scipy_wrappers("_flapack")
    k = a.shape[-1]
    lwork = max(1, int(lapack.sgeqrf_lwork(k, k)[0]), 64 * k)
    flat = a.reshape(-1, *a.shape[-2:])
    q = np.empty_like(flat)
    for i, matrix in enumerate(flat):
        packed, tau, _, info = lapack.sgeqrf(matrix, lwork=lwork)
        if info == 0:
            q[i], _, info = lapack.sorgqr(packed, tau, lwork=lwork)
        if info != 0:
            raise np.linalg.LinAlgError(f"sgeqrf/sorgqr failed (info={info})")
    return q.reshape(a.shape)


def _cca_from_svd(
    metrics: Sequence[str], u: Array, rho: Array, vh: Array, s_a: Array, s_b: Array
) -> dict[str, Array]:
    """SVCCA and/or PWCCA (batched) from the SVD of BaᵀBb."""
    rho = _clip1(rho)
    out = {}
    if "svcca" in metrics:
        out["svcca"] = rho.mean(-1)
    if "pwcca" in metrics:
        w = _pw_weights(u, vh, s_a, s_b)
        out["pwcca"] = (w * rho).sum(-1) / w.sum(-1)
    return out


def _cca_draws(metrics: Sequence[str], m: Array, s_a: Array, s_b: Array) -> dict[str, Array]:
    """SVCCA and/or PWCCA of a batch of null draws ``m`` = BaᵀP Bb (B, k_a, k_b).

    A draw computes only what the metrics need, from the eigen-decomposition of the smaller
    of ``m mᵀ`` and ``mᵀ m``: its eigenvalues are the squared canonical correlations, and
    its eigenvectors (PWCCA only) are the narrower side's singular vectors. In float64 equal
    to the SVD route to about 1e-9 (rho = sqrt of an eigenvalue loses relative precision only
    for correlations near 1e-8); in float32 (the default) to about 1e-6.
    """
    xp = _xp(m)
    x_side = m.shape[-2] <= m.shape[-1]
    vectors = "pwcca" in metrics
    if _is_numpy(m) and m.dtype == np.float32:
        lam, vecs = _eigh_single(m, x_side, vectors)
    else:
        small = m @ _mT(m) if x_side else _mT(m) @ m
        lam, vecs = xp.linalg.eigh(small) if vectors else (xp.linalg.eigvalsh(small), None)
    if not vectors:
        return {"svcca": _clip1(xp.sqrt(xp.clip(lam, 0.0, None))).mean(-1)}
    lam, vecs = xp.flip(lam, (-1,)), xp.flip(vecs, (-1,))
    rho = _clip1(xp.sqrt(xp.clip(lam, 0.0, None)))
    out = {"svcca": rho.mean(-1)} if "svcca" in metrics else {}
    w = _pw_side_weights(vecs, s_a if x_side else s_b)
    out["pwcca"] = (w * rho).sum(-1) / w.sum(-1)
    return out


def _column_pearson(a: Array, b: Array) -> Array:
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / ((a * a).sum(0) * (b * b).sum(0)) ** 0.5


def _heldout(metrics: Sequence[str], fa: tuple[Fold, ...], fb: tuple[Fold, ...]) -> dict:
    """Held-out SVCCA/PWCCA: canonical directions of the fit halves, correlations on the
    test halves (PWCCA: weighted by the fit half's PWCCA weights), averaged over the folds."""
    scores: dict[str, list[float]] = {m: [] for m in metrics}
    xp = _xp(fa[0].proj)
    for a, b in zip(fa, fb, strict=True):
        u, _, vh = xp.linalg.svd(_mT(a.red.basis) @ b.red.basis, full_matrices=False)
        r = _column_pearson(a.proj @ u, b.proj @ _mT(vh))
        if "svcca" in metrics:
            scores["svcca"].append(float(r.mean()))
        if "pwcca" in metrics:
            w = _pw_weights(u, vh, a.red.s, b.red.s)
            scores["pwcca"].append(float((w * r).sum() / w.sum()))
    return {m: float(np.mean(v)) for m, v in scores.items()}


def _hsic_u(tr_kl: float, sum_k: float, sum_l: float, rows_kl: float, n: int) -> float:
    """Unbiased HSIC (Song et al. 2012) from the parts of zero-diagonal Grams K̃, L̃."""
    return (tr_kl + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * rows_kl / (n - 2)) / (n * (n - 3))


def _debiased_ratio(h_xy: float, h_xx: float, h_yy: float) -> float:
    if h_xx <= 0.0 or h_yy <= 0.0:
        return math.nan
    return h_xy / math.sqrt(h_xx * h_yy)


@dataclass(frozen=True)
class _GramView:
    """A doubly centred Gram matrix prepared for (debiased) linear CKA."""

    k: Array  # (n, n); zero diagonal when debiased
    norm: float  # ‖K‖_F, or sqrt(unbiased self-HSIC) (NaN when not positive)
    rows: Array | None  # K̃1 (debiased only)
    total: float  # 1ᵀK̃1 (debiased only)


def _gram_view(g: Array, debiased: bool) -> _GramView:
    """From a doubly centred Gram matrix."""
    if not debiased:
        return _GramView(g, float((g * g).sum()) ** 0.5, None, 0.0)
    n = g.shape[0]
    g = g * 1.0  # a copy, for either array kind
    diag = _index(g, np.arange(n))
    g[diag, diag] = 0.0
    rows = g.sum(1)
    total = float(rows.sum())
    h = _hsic_u(float((g * g).sum()), total, total, float(rows @ rows), n)
    return _GramView(g, math.sqrt(h) if h > 0 else math.nan, rows, total)


def _gram_cast(g: _GramView, dtype: Any) -> _GramView:
    """The same Gram view with its arrays in ``dtype`` (the null draws' precision)."""
    rows = None if g.rows is None else _cast(g.rows, dtype)
    return _GramView(_cast(g.k, dtype), g.norm, rows, g.total)


def _permuted(k: Array, p: Array) -> Array:
    """``k[p][:, p]``, rows first (whole-row copies are cheap); on the CPU through ``take``,
    which gathers in 0.75x the time of fancy indexing."""
    return k.take(p, 0).take(p, 1) if _is_numpy(k) else k[p][:, p]


def _gram_scores(ga: _GramView, gb: _GramView, perms: Array | None, debiased: bool) -> list:
    """CKA of a pair of Gram views, unpermuted (``perms`` None) or for each row of ``perms``
    (the rows and columns of b's Gram matrix permuted alike)."""
    n = ga.k.shape[0]
    out = []
    for p in [None] if perms is None else perms:
        kb = gb.k if p is None else _permuted(gb.k, p)
        tr = float((ga.k * kb).sum())
        if not debiased:
            out.append(tr / (ga.norm * gb.norm))
            continue
        rb = gb.rows if p is None else gb.rows[p]
        h = _hsic_u(tr, ga.total, gb.total, float(ga.rows @ rb), n)
        out.append(h / (ga.norm * gb.norm))
    return out


def _summarise_null(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


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


def pair_permutations(seed: int, a: Hashable, b: Hashable, n: int, count: int) -> np.ndarray:
    """The ``count`` row permutations of the null of the pair named ``(a, b)``, (count, n).

    Seeded by ``seed`` and the two view names only, so a pair's null never depends on the
    other pairs computed with it.
    """
    rng = _pair_rng(seed, _NULL_STREAM, a, b)
    return np.stack([rng.permutation(n) for _ in range(count)]) if count else np.empty((0, n), int)


def compare_views(
    items: Sequence[tuple[PreparedView, PreparedView, np.ndarray | None]],
    metrics: str | Sequence[str],
    *,
    heldout: bool = False,
    dtype: Any = None,
) -> list[dict[str, PairScores]]:
    """Score pairs of prepared views: every metric, with the permutation null and held-out score.

    ``items`` holds ``(view_a, view_b, perms)``; ``perms`` is a (draws, n) array of row
    permutations of b (from :func:`pair_permutations`) or None for no null. Returns, per item,
    metric -> :class:`PairScores`. SVCCA and PWCCA share one SVD per pair and one
    eigen-decomposition per null draw; the draws of all items are batched by shape. ``dtype``:
    of the pair products (default float64 on the CPU, float32 on a GPU) and of the null draws
    (default float32 on every device, see :func:`_draw_dtype`); decompositions stay as
    prepared.
    """
    chosen = _check_metrics(metrics)
    cca = [m for m in chosen if m in CCA_METRICS]
    out: list[dict[str, PairScores]] = [{} for _ in items]
    if not items:
        return out
    device = "cpu" if _is_numpy(_any_array(items[0][0])) else _any_array(items[0][0]).device
    dt, draw_dt = _resolve_dtype(dtype, device), _draw_dtype(dtype, device)
    for va, vb, perms in items:
        _check_rows("a", "b", va.n, vb.n)
        if perms is not None and perms.shape[1:] != (va.n,):
            raise ValueError(f"permutations of shape {perms.shape} for {va.n} sentences")
    if cca:
        _compare_cca(items, cca, heldout, (dt, draw_dt), out)
    for metric in (m for m in chosen if m in GRAM_METRICS):
        debiased = metric == "cka_debiased"
        for i, (va, vb, perms) in enumerate(items):
            if va.gram is None or vb.gram is None:
                raise ValueError(f"{metric}: the views were prepared without a Gram matrix")
            ga, gb = _gram_view(va.gram, debiased), _gram_view(vb.gram, debiased)
            score = _gram_scores(ga, gb, None, debiased)[0]
            p = None if perms is None else _index(gb.k, perms)
            null = (
                _gram_scores(_gram_cast(ga, draw_dt), _gram_cast(gb, draw_dt), p, debiased)
                if p is not None and len(p)
                else []
            )
            mean, std = _summarise_null(null)
            out[i][metric] = PairScores(score, mean, std, math.nan, va.n, va.dim, vb.dim)
    retrieval = [m for m in chosen if m in RETRIEVAL_METRICS]
    for i, (va, vb, perms) in enumerate(items):
        if retrieval:
            out[i].update(_retrieval_scores(va, vb, perms, retrieval))
        if "mknn" in chosen:
            out[i]["mknn"] = _mknn_scores(va, vb, perms)
    return [{m: row[m] for m in chosen} for row in out]


def _any_array(view: PreparedView) -> Array:
    for array in (view.cca.u if view.cca else None, view.gram, view.unit):
        if array is not None:
            return array
    return np.empty(0)


def _topk_mean(s: Array, k: int, axis: int) -> np.ndarray:
    """Mean of the k largest values along ``axis``."""
    if _is_numpy(s):
        n = s.shape[axis]
        return np.partition(s, n - k, axis=axis).take(range(n - k, n), axis=axis).mean(axis)
    return to_numpy(_xp(s).topk(s, k, dim=axis).values.mean(axis))


def _accuracy(rows: np.ndarray, cols: np.ndarray, perm: np.ndarray | None) -> float:
    """Top-1 accuracy both ways from each row's and column's best match; with ``perm``,
    sentence i of a counts as paired with sentence perm[i] of b."""
    n = len(rows)
    gold = np.arange(n) if perm is None else perm
    return float(((rows == gold).mean() + (cols[gold] == np.arange(n)).mean()) / 2)


def _retrieval_scores(
    va: PreparedView, vb: PreparedView, perms: np.ndarray | None, metrics: Sequence[str]
) -> dict[str, PairScores]:
    """Top-1 retrieval accuracy between two views, both directions averaged (xsim = 1 - it).

    ``retrieval`` scores candidates with the ratio margin of Artetxe & Schwenk (2019):
    cos(x, y) / ((mean cos of x to its 4 nearest in b + mean cos of y to its 4 nearest in a)
    / 2); ``retrieval_cosine`` with the cosine alone. Ties go to the lowest index. The null
    pairs sentence i of a with sentence perm[i] of b and keeps every best match (a
    permutation relabels b's rows; it does not move them), so a draw costs O(n).
    """
    if va.unit is None or vb.unit is None:
        raise ValueError("retrieval: the views were prepared without their unit rows")
    if va.dim != vb.dim:
        raise ValueError(
            f"retrieval: views of widths {va.dim} and {vb.dim} cannot live in one space"
        )
    cos = _cosines(va.unit, vb.unit)
    out = {}
    for metric in metrics:
        k = min(MARGIN_NEIGHBOURS, va.n) if metric == "retrieval" else 0
        score = cos
        if k:
            ra = _like(_topk_mean(cos, k, 1), cos)
            rb = _like(_topk_mean(cos, k, 0), cos)
            score = cos / ((ra[:, None] + rb[None, :]) / 2)
        rows, cols = to_numpy(score.argmax(1)), to_numpy(score.argmax(0))
        null = [_accuracy(rows, cols, p) for p in (() if perms is None else perms)]
        mean, std = _summarise_null(null)
        out[metric] = PairScores(_accuracy(rows, cols, None), mean, std, math.nan, va.n, k, k)
    return out


def _mknn_scores(va: PreparedView, vb: PreparedView, perms: np.ndarray | None) -> PairScores:
    """Mutual k-NN alignment (Huh et al. 2024): mean over sentences of |NN_a(i) ∩ NN_b(i)|/k.

    The null relabels b's neighbour lists by each permutation: sentence i of a meets
    sentence perm[i] of b, whose neighbours perm⁻¹(NN_b(perm[i])) count, in O(n k).
    """
    if va.knn is None or vb.knn is None:
        raise ValueError("mknn: the views were prepared without their neighbours")
    ka, kb = va.knn, vb.knn
    n, k = ka.shape
    if kb.shape != ka.shape:
        raise ValueError(f"mknn: neighbour lists of shapes {ka.shape} and {kb.shape}")
    member = np.zeros((n, n), dtype=bool)
    member[np.arange(n)[:, None], kb] = True
    score = float(member[np.arange(n)[:, None], ka].mean())
    null = [float(member[p[:, None], p[ka]].mean()) for p in (() if perms is None else perms)]
    mean, std = _summarise_null(null)
    return PairScores(score, mean, std, math.nan, n, k, k)


def _compare_cca(
    items: Sequence[tuple[PreparedView, PreparedView, np.ndarray | None]],
    metrics: list[str],
    heldout: bool,
    dtypes: tuple[Any, Any],
    out: list[dict[str, PairScores]],
) -> None:
    """SVCCA/PWCCA of every item: scores by SVD, nulls by batched draws, held-out folds.

    ``dtypes``: of the scores' products and of the null draws (see :func:`_pair_dtypes`)."""
    scores: dict[str, np.ndarray] = {m: np.full(len(items), np.nan) for m in metrics}
    draws: dict[int, dict[str, list[np.ndarray]]] = {}
    buckets: dict[tuple, list[tuple[int, Array, Array, Array]]] = {}  # by shape and dtype
    pending: dict[tuple, int] = {}  # draws waiting in each bucket

    def flush(key: tuple) -> None:
        batch = buckets.pop(key)
        values = _cca_draws(metrics, *(_concat([b[j] for b in batch]) for j in (1, 2, 3)))
        start = 0
        for i, m, _, _ in batch:
            stop = start + m.shape[0]
            for metric, v in values.items():
                draws[i][metric].append(to_numpy(v[start:stop]).astype(np.float64))
            start = stop

    for i, (va, vb, perms) in enumerate(items):
        if va.cca is None or vb.cca is None:
            raise ValueError("svcca/pwcca: the views were prepared without their reduction")
        dt, draw_dt = _pair_dtypes(dtypes, metrics, va, vb)
        ba, bb = _cast(va.cca.basis, dt), _cast(vb.cca.basis, dt)
        sa, sb = _cast(va.cca.s, dt), _cast(vb.cca.s, dt)
        u, rho, vh = _xp(ba).linalg.svd(_mT(ba) @ bb, full_matrices=False)
        for metric, v in _cca_from_svd(metrics, u, rho, vh, sa, sb).items():
            scores[metric][i] = float(v)
        draws[i] = {m: [] for m in metrics}
        if perms is None or not len(perms):
            continue
        shape = (ba.shape[1], bb.shape[1])
        step = _batch_len(bb.shape[0], *shape)
        idx = _index(bb, perms)
        da, db = _cast(ba, draw_dt), _cast(bb, draw_dt)
        sa, sb = _cast(sa, draw_dt), _cast(sb, draw_dt)
        key = (shape, str(draw_dt))
        for start in range(0, len(perms), step):
            m = _mT(da) @ db[idx[start : start + step]]
            reps = m.shape[0]
            sa_b = _expand(sa, reps)
            sb_b = _expand(sb, reps)
            buckets.setdefault(key, []).append((i, m, sa_b, sb_b))
            pending[key] = pending.get(key, 0) + reps
            if pending[key] >= _batch_len(*shape):
                pending[key] = 0
                flush(key)
    for key in list(buckets):
        flush(key)
    for i, (va, vb, _) in enumerate(items):
        if heldout and (va.folds is None or vb.folds is None):
            raise ValueError("heldout: the views were prepared without their folds")
        held = _heldout(metrics, va.folds, vb.folds) if heldout else {}
        for metric in metrics:
            null = np.concatenate(draws[i][metric]) if draws[i][metric] else np.empty(0)
            mean, std = _summarise_null(null)
            out[i][metric] = PairScores(
                float(scores[metric][i]),
                mean,
                std,
                held.get(metric, math.nan),
                va.n,
                va.cca.k,
                vb.cca.k,
            )


def _pair_dtypes(
    dtypes: tuple[Any, Any], metrics: Sequence[str], va: PreparedView, vb: PreparedView
) -> tuple[Any, Any]:
    """The dtypes of one tap pair's score and null draws: ``dtypes``, except float64 for
    PWCCA where the two kept bases must share directions.

    Both bases span directions of centred data, n - 1 at most, so with k_a + k_b > n - 1
    some canonical correlations are exactly 1. Single precision then mixes the eigenvectors
    of that cluster with their neighbours', and PWCCA's weights drift (its null mean by 5e-3,
    9 null stds, at n = 350 and k = 300, as with random-init models), where float64 draws
    are stable to 1e-8.
    """
    shared = va.cca.basis.shape[1] + vb.cca.basis.shape[1] > va.n - 1
    if "pwcca" not in metrics or not shared:
        return dtypes
    wide = _resolve_dtype("float64", "cpu" if _is_numpy(va.cca.basis) else va.cca.basis.device)
    return wide, wide


def _expand(s: Array, reps: int) -> Array:
    """``s`` repeated as a batch of ``reps`` rows."""
    return s[None, :].repeat(reps, 0) if _is_numpy(s) else s[None, :].expand(reps, -1)


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
    ra, rb, n = _single_pair(x, y, variance, k, epsilon)
    rho = np.clip(np.linalg.svd(ra.basis.T @ rb.basis, compute_uv=False), None, 1.0)
    return SvccaResult(float(rho.mean()), rho, ra.k, rb.k, n)


def _single_pair(
    x: Any, y: Any, variance: float, k: int | None, epsilon: float
) -> tuple[Reduction, Reduction, int]:
    _check_cca_options(variance, k, epsilon)
    xa, ya = _as_array(x, "x"), _as_array(y, "y")
    _check_rows("x", "y", xa.shape[0], ya.shape[0])
    opts = {"variance": variance, "k": k, "epsilon": epsilon}
    return _reduce(_centre(xa, "x")[0], **opts), _reduce(_centre(ya, "y")[0], **opts), len(xa)


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
    ra, rb, _ = _single_pair(x, y, variance, k, epsilon)
    u, rho, vh = np.linalg.svd(ra.basis.T @ rb.basis, full_matrices=False)
    return float(_cca_from_svd(["pwcca"], u, rho, vh, ra.s, rb.s)["pwcca"])


def linear_cka(x: Any, y: Any, *, debiased: bool = False) -> float:
    """Linear CKA, ``‖Y_cᵀX_c‖²_F / (‖X_cᵀX_c‖_F ‖Y_cᵀY_c‖_F)`` (Kornblith et al. 2019).

    Computed in Gram form (n x n) when that is cheaper (roughly n < dim). ``debiased=True``
    uses the unbiased HSIC estimator (Song et al. 2012; Kornblith et al. 2019, Appendix) and
    needs ``n >= 4``; it is NaN when a self-HSIC estimate is not positive.
    """
    xa, ya = _as_array(x, "x"), _as_array(y, "y")
    n = xa.shape[0]
    _check_rows("x", "y", n, ya.shape[0])
    if debiased and n < 4:
        raise ValueError(f"debiased CKA needs at least 4 sentences, views 'x' and 'y' have {n}")
    xc, _ = _centre(xa, "x")
    yc, _ = _centre(ya, "y")
    dx, dy = xc.shape[1], yc.shape[1]
    if n * (dx + dy) < dx * dx + dy * dy + dx * dy:
        ga, gb = _gram_view(xc @ xc.T, debiased), _gram_view(yc @ yc.T, debiased)
        return _gram_scores(ga, gb, None, debiased)[0]
    cxy = np.linalg.norm(yc.T @ xc) ** 2
    cxx = np.linalg.norm(xc.T @ xc)
    cyy = np.linalg.norm(yc.T @ yc)
    if not debiased:
        return float(cxy / (cxx * cyy))
    # feature-space form of the same estimator: K̃ = XXᵀ - diag, K̃1 = X(Xᵀ1) - diag(K)
    nx, ny = (xc * xc).sum(axis=1), (yc * yc).sum(axis=1)
    rx, ry = xc @ xc.sum(axis=0) - nx, yc @ yc.sum(axis=0) - ny
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

    def wishart(df: int, c: int) -> np.ndarray:
        if df < p:  # rank-deficient: from the Gaussian factor itself
            g = rng.standard_normal((c, df, p))
            return _mT(g) @ g
        a = np.zeros((c, p, p))
        a[:, diag, diag] = np.sqrt(rng.chisquare(df - diag, size=(c, p)))
        a[:, low[0], low[1]] = rng.standard_normal((c, len(low[0])))
        return a @ _mT(a)

    total, done = 0.0, 0
    step = _batch_len(p, p, 4)
    while done < trials:
        c = min(step, trials - done)
        w1 = wishart(q, c)
        chol = np.linalg.cholesky(w1 + wishart(m - q, c))
        half = np.linalg.solve(chol, w1)
        sym = np.linalg.solve(chol, _mT(half))  # L⁻¹ W1 L⁻ᵀ
        lam = np.linalg.eigvalsh((sym + _mT(sym)) / 2)
        total += float(np.sqrt(np.clip(lam, 0.0, 1.0)).sum())
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


# --------------------------------------------------------------------------- pairwise


def pairwise(
    views: Mapping[Hashable, Any],
    pairs: Iterable[tuple[Hashable, Hashable]],
    *,
    metric: str | Sequence[str] = "svcca",
    variance: float = 0.99,
    k: int | None = None,
    epsilon: float = 1e-10,
    null_permutations: int = 0,
    heldout: bool = False,
    bootstrap: int = 0,
    ci: float = 0.95,
    seed: int = 0,
    mknn_k: int = 10,
    standardize: bool = False,
    device: Any = None,
    dtype: Any = None,
) -> pd.DataFrame:
    """Similarity of many view pairs, one preparation per view, with optional calibration.

    ``views`` maps any hashable name to an ``(n, dim)`` array (rows aligned across views);
    ``pairs`` lists ``(name_a, name_b)``. ``metric`` is one of :data:`METRICS`, or a sequence
    of them (rows metric by metric, pairs in order within; definitions in the module
    docstring; ``variance``, ``k`` and ``epsilon`` apply to the CCA metrics).

    Sentence-level metrics, on the pooled vectors as they are (not centred):

    - ``retrieval``: top-1 accuracy of finding sentence i of b from sentence i of a among
      all n sentences of b, averaged over both directions (1 - it is the xsim error rate of
      LASER/SONAR), candidates scored with the ratio margin of Artetxe & Schwenk (2019) over
      :data:`MARGIN_NEIGHBOURS` neighbours; ``retrieval_cosine``: with the cosine alone.
      Chance is 1/n; ties go to the lowest index. Meaningful only where both views live in
      one space (the caller decides; the similarity stage asks only such pairs).
      ``k_a``/``k_b``: the margin's neighbours (4), 0 for cosine.
    - ``mknn``: mutual k-NN alignment (Huh et al. 2024): within each view the ``mknn_k``
      nearest neighbours of every sentence by cosine (itself excluded, ties to the lowest
      index), score = mean over sentences of the share of neighbours both views agree on;
      chance about ``mknn_k / (n - 1)``. ``k_a``/``k_b``: ``mknn_k``.

    For these the null relabels b's sentences by each permutation (best matches and
    neighbour lists are kept, so a draw costs O(n)), and no bootstrap interval is given:
    resampling with replacement duplicates sentences, which ties their retrieval scores.
    ``standardize``: z-score every dimension of each view first (off by default). A few
    large ("rogue") dimensions can dominate cosine similarity and CKA (Timkey & van
    Schijndel 2021), and SVCCA's 99%-variance reduction too, which then keeps little
    more than them; z-scoring gives every dimension the same variance. It changes what
    SVCCA means (the reference definition centres and does not z-score), so it is an
    option to compare against, not a default. The scales come from all n sentences, also
    for the held-out score (whose fit half is then re-centred, not re-scaled).

    Each view is prepared once (:func:`prepare_view`: centred, reduced by eigh of the Gram
    matrix when dim > n, else thin SVD; Gram matrix for CKA) and each pair scored
    from the prepared views (:func:`compare_views`); scores equal those of :func:`svcca` /
    :func:`pwcca` / :func:`linear_cka` on the same pair.

    Calibration (all optional, NaN when not requested):

    - ``null_permutations``: scores with the rows of view b shuffled relative to view a
      (``null_mean``, ``null_std`` with ddof=1; the reduction of b is reused with its rows
      permuted, and SVCCA and PWCCA share their draws). Its expectation for CCA is about
      :func:`expected_null_mean_cca`.
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

    Seeds: permutations come from ``(seed, crc32 of each view name)``
    (:func:`pair_permutations`); the held-out split and the bootstrap resamples from
    ``(seed, n)`` only, shared by all pairs of the call so each view is decomposed once per
    fold / resample. Either way a pair's numbers depend only on ``seed``, its two views and
    the options, never on the other pairs in the call.

    ``device``: None or ``"auto"`` means CUDA when a GPU is visible, else the CPU (numpy).
    Decompositions (and the choice of k) are float64; pair products and singular values use
    ``dtype`` (default float64 on CPU, float32 on CUDA), null draws ``dtype`` or, by
    default, float32.

    Returns one row per pair and metric with columns :data:`COLUMNS`; ``k_a``/``k_b`` are the
    kept dimensions for svcca/pwcca and the view widths (dim) for the CKA metrics.
    """
    import pandas as pd

    chosen = _check_metrics(metric)
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
    dev = resolve_device(device)
    _resolve_dtype(dtype, dev)  # a bad dtype fails before any work
    names = list(dict.fromkeys(nm for pair in pair_list for nm in pair))
    data = {nm: _as_array(views[nm], nm) for nm in names}
    cca = any(m in CCA_METRICS for m in chosen)
    for a, b in pair_list:
        n = data[a].shape[0]
        _check_rows(a, b, n, data[b].shape[0])
        if "cka_debiased" in chosen and n < 4:
            raise ValueError(
                f"debiased CKA needs at least 4 sentences, views {a!r} and {b!r} have {n}"
            )
        if heldout and cca and n < 6:
            raise ValueError(
                f"the held-out score needs at least 6 sentences (3 per half), views {a!r} "
                f"and {b!r} have {n}"
            )
    opts = {
        "metrics": chosen,
        "variance": variance,
        "k": k,
        "epsilon": epsilon,
        "mknn_k": mknn_k,
        "standardize": standardize,
        "device": dev,
    }
    prepared = {
        nm: prepare_view(x, name=nm, heldout=heldout, seed=seed, **opts) for nm, x in data.items()
    }
    items = [
        (
            prepared[a],
            prepared[b],
            pair_permutations(seed, a, b, data[a].shape[0], null_permutations)
            if null_permutations
            else None,
        )
        for a, b in pair_list
    ]
    del prepared
    results = compare_views(items, chosen, heldout=heldout, dtype=dtype)
    boot = _bootstrap(pair_list, data, bootstrap, seed, opts, dtype) if bootstrap else {}
    lo, hi = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
    frames = []
    for metric in chosen:
        rows = [r[metric] for r in results]
        ci_low, ci_high = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
        for i, values in enumerate(boot.get(metric, [])):
            if not np.isnan(values).any():
                ci_low[i], ci_high[i] = np.quantile(values, [lo, hi])
        frames.append(
            pd.DataFrame(
                {
                    "view_a": pd.Series([a for a, _ in pair_list], dtype=object),
                    "view_b": pd.Series([b for _, b in pair_list], dtype=object),
                    "metric": [metric] * len(rows),
                    "score": np.array([r.score for r in rows], dtype=np.float64),
                    "null_mean": np.array([r.null_mean for r in rows], dtype=np.float64),
                    "null_std": np.array([r.null_std for r in rows], dtype=np.float64),
                    "heldout": np.array([r.heldout for r in rows], dtype=np.float64),
                    "ci_low": ci_low,
                    "ci_high": ci_high,
                    "n": np.array([r.n for r in rows], dtype=np.int64),
                    "k_a": np.array([r.k_a for r in rows], dtype=np.int64),
                    "k_b": np.array([r.k_b for r in rows], dtype=np.int64),
                },
                columns=list(COLUMNS),
            )
        )
    return pd.concat(frames, ignore_index=True)


def _bootstrap(
    pair_list: list[tuple[Hashable, Hashable]],
    data: Mapping[Hashable, np.ndarray],
    count: int,
    seed: int,
    opts: Mapping[str, Any],
    dtype: Any,
) -> dict[str, np.ndarray]:
    """metric -> (pairs, count) resampled scores; each view is redone once per resample."""
    chosen = [m for m in opts["metrics"] if m not in POINTWISE_METRICS]
    opts = {**opts, "metrics": chosen}
    boot = {m: np.full((len(pair_list), count), np.nan) for m in chosen}
    if not chosen:
        return boot
    by_n: dict[int, list[int]] = {}
    for i, (a, _) in enumerate(pair_list):
        by_n.setdefault(int(data[a].shape[0]), []).append(i)
    for n, rows in by_n.items():
        used = list(dict.fromkeys(nm for i in rows for nm in pair_list[i]))
        centred = {nm: _centre(data[nm], nm)[0] for nm in used}
        for r, idx in enumerate(_resamples(seed, n, count)):
            ok = {}
            for nm in used:
                try:
                    ok[nm] = prepare_view(centred[nm][idx], name=nm, **opts)
                except ValueError:  # a constant resample: NaN for its pairs
                    continue
            good = [i for i in rows if pair_list[i][0] in ok and pair_list[i][1] in ok]
            items = [(ok[pair_list[i][0]], ok[pair_list[i][1]], None) for i in good]
            for i, scores in zip(good, compare_views(items, chosen, dtype=dtype), strict=True):
                for metric, value in scores.items():
                    boot[metric][i, r] = value.score
    return boot
