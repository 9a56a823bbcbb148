"""The similarity math under numpy 1.26 (pyproject's floor, and the SONAR environment's)."""

from __future__ import annotations

import numpy as np

from gapscope.similarity import linear_cka, pairwise, pwcca, svcca


def test_every_metric_runs_and_matches_the_single_pair_functions():
    assert np.__version__.startswith("1."), "meant to run where numpy 1.x is installed"
    rng = np.random.default_rng(0)
    z = rng.standard_normal((60, 5))
    x = z @ rng.standard_normal((5, 80)) + 0.5 * rng.standard_normal((60, 80))
    y = z @ rng.standard_normal((5, 40)) + 0.5 * rng.standard_normal((60, 40))
    metrics = ["svcca", "pwcca", "cka", "cka_debiased", "mknn"]
    table = pairwise(
        {"x": x, "y": y}, [("x", "y")], metric=metrics, null_permutations=4, heldout=True,
        bootstrap=3, mknn_k=5,
    ).set_index("metric")  # fmt: skip
    for metric, fn in (("svcca", svcca), ("pwcca", pwcca), ("cka", linear_cka)):
        assert abs(table.loc[metric, "score"] - fn(x, y)) < 1e-10
    assert table.loc["svcca", "score"] > table.loc["svcca", "null_mean"]
    assert table[["score", "null_mean"]].notna().all().all()
    same = pairwise({"a": x, "b": x.copy()}, [("a", "b")], metric=["retrieval", "mknn"])
    assert (same["score"] == 1.0).all()
