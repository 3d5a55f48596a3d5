import pytest

from der.frontier import Point, area_under, mark_frontier, summarise


def test_frontier_keeps_only_undominated_points():
    pts = [Point("a", "-", 0.8, 1.0), Point("b", "-", 0.7, 2.0), Point("c", "-", 0.9, 3.0), Point("d", "-", 0.8, 1.0)]
    mark_frontier(pts)
    assert [p.on_frontier for p in pts] == [True, False, True, True]


def test_area_under_is_a_step_integral_normalised_by_the_cost_range():
    # accuracy 0.5 from cost 1, 0.8 from cost 2, over [0, 4]: (0.5 * 1 + 0.8 * 2) / 4
    assert area_under([Point("x", "", 0.5, 1.0), Point("x", "", 0.8, 2.0)], 4.0) == pytest.approx(0.525)
    assert area_under([Point("x", "", 0.9, 5.0)], 4.0) == 0.0
    assert area_under([], 1.0) == 0.0


def test_summary_ranks_families_by_area():
    pts = [
        Point("cheap", "", 0.6, 1.0),
        Point("dear", "", 0.9, 3.0),
        Point("router", "a", 0.6, 1.0),
        Point("router", "b", 0.9, 2.0),
    ]
    auf = summarise(pts)
    assert list(auf) == ["router", "cheap", "dear"]
