"""Margin selection (Kong & Fowlkes 2018, Sec. 3.2): Proposition 2's bound and numerical spherical codes."""

import json
import math

import numpy as np
import pytest
import torch

from pixelwise.grouping import Packing, best_packing, margin_table, paper_margin_bound


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny matrices: a second thread only adds contention on the shared cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# (dim, n, optimal smallest angle in degrees)
KNOWN_OPTIMA = [
    (3, 4, math.degrees(math.acos(-1 / 3))),   # tetrahedron (simplex)
    (3, 5, 90.0),                              # Tammes 5: no better than the octahedron less one point
    (3, 6, 90.0),                              # octahedron (cross-polytope)
    (3, 7, 77.8695),                           # Tammes 7
    (3, 12, math.degrees(math.acos(1 / math.sqrt(5)))),  # icosahedron, 63.43
    (8, 9, math.degrees(math.acos(-1 / 8))),   # simplex in 8-D
    (8, 16, 90.0),                             # cross-polytope in 8-D
]


def test_paper_values_for_four_to_seven_instances():
    # The paper: "alpha can be set as small as {0.093, 0.274, 0.395, 0.482}".
    assert [round(paper_margin_bound(n), 3) for n in (4, 5, 6, 7)] == [0.093, 0.274, 0.395, 0.482]
    # The main text's sqrt(3N) does not reproduce them: it is a typo for the supplement's sqrt(3) N.
    assert round(1 - 2 * math.pi / math.sqrt(3 * 4), 3) != 0.093


@pytest.mark.parametrize("dim, n, angle", KNOWN_OPTIMA)
def test_packing_reaches_known_optima(dim, n, angle):
    p = best_packing(dim, n)
    assert isinstance(p, Packing) and p.points.shape == (n, dim) and p.points.dtype == np.float64
    assert np.allclose(np.linalg.norm(p.points, axis=1), 1.0)
    assert p.min_angle_deg == pytest.approx(angle, abs=0.3)
    # The reported numbers are those of the returned points.
    gram = p.points @ p.points.T
    np.fill_diagonal(gram, -2)
    assert p.max_cosine == pytest.approx(gram.max(), abs=1e-12)
    assert p.alpha == pytest.approx((1 + p.max_cosine) / 2)


@pytest.mark.parametrize("n, cosine", [(65, -1 / 64), (128, 0.0)])
def test_simplex_and_cross_polytope_in_64_dims(n, cosine):
    # Two restarts: every start finds these, and the test stays short.
    p = best_packing(64, n, restarts=2)
    assert p.max_cosine == pytest.approx(cosine, abs=math.sin(math.radians(0.3)))


def test_paper_bound_is_below_the_packed_margin():
    # Proposition 2 is a necessary condition: zero loss needs alpha >= (1 + c*) / 2 > bound.
    for n in (4, 5, 6, 7):
        assert paper_margin_bound(n) < best_packing(3, n).alpha


def test_deterministic_in_the_seed():
    a, b = best_packing(3, 9, seed=3), best_packing(3, 9, seed=3)
    assert np.array_equal(a.points, b.points) and a.max_cosine == b.max_cosine
    c = best_packing(3, 9, seed=4)
    assert not np.array_equal(a.points, c.points)


def test_margin_table_rows_and_the_antipodal_rule():
    rows = margin_table(3, [4, 6, 7], restarts=4, steps=600)
    assert [r["n"] for r in rows] == [4, 6, 7]
    assert rows[0]["paper_bound"] == pytest.approx(paper_margin_bound(4))
    assert [r["antipodal_rule"] for r in rows] == [True, True, False]
    # The rule is tight: the packing admits alpha = 0.5 exactly when n <= 2 * dim.
    for r in rows:
        assert (r["alpha_zero_loss"] <= 0.5 + 1e-3) == r["antipodal_rule"]
    json.dumps(rows)
    high = margin_table(4, [9], restarts=2, steps=400)
    assert high[0]["paper_bound"] is None and not high[0]["antipodal_rule"]
    assert high[0]["alpha_zero_loss"] > 0.5


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"dim": 1, "n": 2}, ValueError, "dim"),
    ({"dim": 3, "n": 1}, ValueError, "n"),
    ({"dim": 3, "n": 4, "restarts": 0}, ValueError, "restarts"),
    ({"dim": 3, "n": 4, "steps": 0}, ValueError, "steps"),
    ({"dim": 3.0, "n": 4}, TypeError, "dim"),
    ({"dim": 3, "n": True}, TypeError, "n"),
])
def test_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        best_packing(**kwargs)


def test_bad_table_and_bound_arguments():
    with pytest.raises(ValueError, match="n"):
        paper_margin_bound(0)
    with pytest.raises(TypeError, match="instances"):
        margin_table(3, 4)
    with pytest.raises(ValueError, match="instances"):
        margin_table(3, [4, 1])

