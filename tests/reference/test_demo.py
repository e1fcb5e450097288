"""``kb run``: every runnable method produces a figure, a reading and metrics on its demo model."""

import pytest

from kb.reference.demo import RUNNABLE, list_runnable, run_method

from demo_claims import CLAIMS  # tests/reference is on sys.path (pytest prepend mode, no packages)

AVAILABLE = [r["method"] for r in list_runnable() if r["available"]]


def test_list_runnable_describes_every_method():
    listed = list_runnable()
    assert {r["method"] for r in listed} == set(RUNNABLE)
    assert all(set(r) == {"method", "model", "description", "available"} for r in listed)


@pytest.mark.parametrize("method", AVAILABLE)
def test_run_method_writes_a_figure_and_a_reading(method, tmp_path, demo_cache):
    result = run_method(method, tmp_path, cache=demo_cache)
    assert result["method"] == method
    figure = tmp_path / f"{method}.png"
    assert str(figure) == result["figure"] and figure.stat().st_size > 1000
    assert len(result["reading"].split()) > 25 and "\n" not in result["reading"]
    assert result["metrics"] and all(isinstance(v, (int, float)) for v in result["metrics"].values())
    # the number the reading rests on (tests/reference/demo_claims.py quotes the claim each check encodes)
    assert CLAIMS[method](result["metrics"]), f"{method}: the reading's claim fails on {result['metrics']}"


def test_every_runnable_method_has_a_claim():
    assert set(CLAIMS) == set(RUNNABLE)


def test_unknown_method_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="runnable"):
        run_method("no-such-method", tmp_path)


def test_attribution_runners_take_their_function_from_method_references():
    # one method -> function map: the demo keeps only labels and options, METHOD_REFERENCES names the function
    from kb.reference import METHOD_REFERENCES, attribution
    from kb.reference.demo._registry import reference_function
    from kb.reference.demo.cnn import ATTRIBUTIONS

    assert set(ATTRIBUTIONS) <= set(METHOD_REFERENCES) & set(RUNNABLE)
    assert reference_function("integrated-gradients") is attribution.integrated_gradients
