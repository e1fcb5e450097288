"""Landmark findings reproduced at small scale (kb.reference.reproductions), each at its stated tolerance.

Each test runs the module's ``QUICK`` configuration (the cheapest that still shows the finding; the
full run, ``kb reproduce CASE``, is what the case study reports) with seed 0, and asserts the
claim at the tolerance the module states. Results are computed once per module and shared.
"""

from __future__ import annotations

import importlib
import json
import pathlib

import pytest
import torch
import yaml

from kb.reference import reproductions

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick():
    """``quick(name)``: the module's result on its QUICK config, seed 0 (computed once)."""
    cache: dict[str, dict] = {}

    def get(name: str, **overrides) -> dict:
        if name not in cache:
            module = importlib.import_module(f"kb.reference.reproductions.{name}")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                cache[name] = module.run(seed=0, **{**module.QUICK, **overrides})
        return cache[name]

    return get


def test_superposition_appears_as_sparsity_rises(quick):
    r = quick("superposition")
    m = r["measured"]
    assert m["represented_dense"] <= m["hidden_dims"] + 1  # dense: one feature per dimension, like PCA
    assert m["represented_sparsest"] >= 2 * m["hidden_dims"]  # sparse: more features than dimensions
    assert r["passed"]


def test_guided_backprop_fails_the_model_randomisation_test(quick):
    r = quick("sanity_checks")
    m = r["measured"]
    assert m["test_accuracy"] >= 0.9
    assert m["gbp_after_top_half"] >= 0.7 and m["gradient_after_top_half"] <= 0.55
    assert m["gap_after_top_half"] >= 0.25
    assert r["passed"]


def test_neural_collapse_in_the_terminal_phase(quick):
    r = quick("neural_collapse")
    m = r["measured"]
    assert m["zero_error_step"] is not None
    assert m["nc1_reduction"] >= 5  # NC1 keeps falling after zero training error
    assert m["etf_cosine_deviation_final"] < m["etf_cosine_deviation_at_zero_error"]
    assert r["passed"]


def test_double_descent_peaks_at_the_interpolation_threshold(quick):
    r = quick("double_descent")
    m = r["measured"]
    assert 0.8 * m["n_train"] <= m["peak_width"] <= 1.25 * m["n_train"]
    assert m["peak_test_mse"] >= 5 * m["best_underparameterised_mse"]
    assert m["widest_test_mse"] < m["best_underparameterised_mse"]
    assert m["smallest_singular_value_trough_width"] == m["n_train"]  # the peak's cause: a near-singular system
    assert r["passed"]


def test_sae_recovers_planted_features(quick):
    r = quick("sae_features")
    m = r["measured"]
    assert m["mmcs"] >= 0.9
    assert m["recovered_at_0.9"] >= 0.9 * m["n_features"]
    assert m["mmcs"] >= m["mmcs_pca"] + 0.2
    assert r["passed"]


def test_logit_lens_predictions_build_up_over_depth(quick):
    r = quick("logit_lens")
    m = r["measured"]
    acc, kl = m["accuracy_by_layer"], m["kl_by_layer"]
    assert all(b >= a - 0.01 for a, b in zip(acc, acc[1:]))
    assert acc[-2] >= 0.5 * acc[-1] and acc[-1] >= 4 / 32 and acc[0] <= 2 / 32
    assert all(a > b for a, b in zip(kl, kl[1:]))
    control = m["control_accuracy_by_layer"]
    assert control[-1] - control[0] < 0.05
    assert r["passed"]


def test_refusal_is_mediated_by_one_direction(quick):
    r = quick("refusal_direction")
    m = r["measured"]
    assert m["refusal_harmful"] >= 0.95 and m["refusal_harmless"] <= 0.05
    assert m["ablated_refusal_harmful"] <= 0.2 and m["ablated_task_accuracy_harmless"] >= 0.9
    assert m["added_refusal_harmless"] >= 0.25 and m["added_refusal_harmless_c2"] >= 0.7
    assert m["random_ablated_refusal_harmful"] >= 0.9 and m["random_added_refusal_harmless_c2"] <= 0.1
    assert r["passed"]


def test_lottery_ticket_beats_random_reinitialisation(quick):
    r = quick("lottery_ticket")
    m = r["measured"]
    assert abs(m["ticket_minus_dense_at_mid"]) <= 0.03
    assert m["ticket_minus_random_at_top"] >= 0.04
    assert r["passed"]


def test_grokking_with_fourier_features(quick):
    r = quick("grokking")
    m = r["measured"]
    assert m["grokking_delay"] >= 5 and m["final_test_accuracy"] >= 0.95
    assert m["fourier_top_k_final"] >= 0.7 and m["fourier_top_k_final"] >= 1.5 * m["fourier_top_k_at_fit"]
    assert r["passed"]


def test_flip_flop_reproduction_on_the_shared_demo(flipflop, monkeypatch):
    from kb.reference.reproductions import flip_flop

    monkeypatch.setattr(flip_flop, "train_flipflop_gru", lambda seed: flipflop)  # the session's trained GRU
    r = flip_flop.run(seed=0)
    assert r["measured"]["stable_fixed_points"] == 8 and r["measured"]["distinct_patterns"] == 8
    assert r["passed"]


def test_induction_reproduction_on_the_shared_demo(induction, monkeypatch):
    from kb.reference.reproductions import induction_heads

    monkeypatch.setattr(induction_heads, "train_induction_transformer", lambda seed, n_steps: induction)
    r = induction_heads.run(seed=0)
    assert r["measured"]["best_layer2_score"] > 0.5 > 5 * r["measured"]["chance"]
    assert r["passed"]


@pytest.mark.parametrize("name", ["superposition", "double_descent", "refusal_direction"])
def test_results_are_json_and_figures_draw(quick, name, tmp_path):
    r = quick(name)
    assert set(r) >= {"claim", "setup", "measured", "headline", "tolerance", "passed", "curves"}
    assert r["headline"] in r["measured"]
    json.dumps(r)
    module = importlib.import_module(f"kb.reference.reproductions.{name}")
    module.figure(r, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_reproduce_resolves_only_this_package(tmp_path):
    for bad in ("os:system", "kb.reference.attribution:saliency", "kb.reference.reproductions.nope:run",
                "kb.reference.reproductions.double_descent:figure"):
        with pytest.raises(ValueError):
            reproductions.resolve(bad)
    r = reproductions.reproduce("kb.reference.reproductions.double_descent:run", tmp_path, name="dd")
    assert r["passed"] and r["seconds"] > 0 and pathlib.Path(r["figure"]).name == "dd.png"
    again = reproductions.reproduce("kb.reference.reproductions.double_descent:run")  # deterministic under a seed
    assert again["measured"] == r["measured"] and again["figure"] is None


def _case_studies():
    for path in sorted((ROOT / "content" / "case_study").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if (data.get("reproduction") or {}).get("run"):
            yield path.stem, data["reproduction"]


def test_every_module_backs_a_case_study_and_a_test():
    cases = dict(_case_studies())
    named = {repro["run"].split(":")[0].rsplit(".", 1)[1] for repro in cases.values()}
    assert named == set(reproductions.MODULES)
    here = pathlib.Path(__file__).read_text(encoding="utf-8")
    for case, repro in cases.items():
        path, _, func = repro["test"].partition("::")
        assert (ROOT / path).is_file() and f"def {func}(" in (ROOT / path).read_text(encoding="utf-8"), case
        module = importlib.import_module(repro["run"].split(":")[0])
        assert callable(module.run) and callable(module.figure) and isinstance(module.QUICK, dict)
        assert path != "tests/reference/test_reproductions.py" or func in here
    assert len(cases) >= 10


def test_cli_lists_and_runs_a_reproduction(tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    runner = CliRunner()
    listed = runner.invoke(cli, ["--root", str(ROOT), "reproduce", "--list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    cases = {row["case"] for row in json.loads(listed.stdout)}
    assert len(cases) >= 10 and "double-descent-random-features" in cases
    out = runner.invoke(cli, ["--root", str(ROOT), "reproduce", "case_study:double-descent-random-features",
                              "--out", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["passed"] and result["case"] == "double-descent-random-features"
    assert (tmp_path / "double-descent-random-features.png").is_file()
    text = runner.invoke(cli, ["--root", str(ROOT), "reproduce", "double-descent-random-features", "--out", str(tmp_path)])
    assert text.exit_code == 0 and "REPRODUCED" in text.stdout and "claimed (tolerance)" in text.stdout
    missing = runner.invoke(cli, ["--root", str(ROOT), "reproduce", "case_study:imagenet-texture-bias"])
    assert missing.exit_code != 0 and "no runnable reproduction" in missing.output


def test_cli_without_the_reference_extra_says_how_to_install(monkeypatch):
    import sys

    from click.testing import CliRunner

    import kb.reference
    from kb.cli import cli

    monkeypatch.delattr(kb.reference, "demo", raising=False)
    monkeypatch.setitem(sys.modules, "kb.reference.demo", None)  # as if torch/matplotlib were absent
    out = CliRunner().invoke(cli, ["--root", str(ROOT), "reproduce", "induction-heads"])
    assert out.exit_code != 0
    assert "kb reproduce needs the reference extra" in out.output and "pip install 'interp-kb[reference]'" in out.output


@pytest.mark.parametrize("run, code", [("kb.reference.reproductions.nope:run", "reproduction-missing"),
                                       ("os:system", None)])
def test_validate_checks_reproduction_run_without_importing(minimal, run, code):
    from kb.api import KnowledgeBase

    path = minimal / "content" / "case_study" / "ig-demo.yaml"
    path.write_text(path.read_text(encoding="utf-8") + f"reproduction:\n  test: tests/x.py::test_x\n  shows: s.\n"
                    f"  run: {run}\n", encoding="utf-8")
    report = KnowledgeBase(minimal, auto_build=False).validate()
    messages = [p.message for p in report.errors]
    if code is None:  # refused by the schema: only kb.reference.reproductions.<module>:run
        assert any("kb.reference.reproductions" in m for m in messages), messages
    else:
        assert any(p.code == code and "reproduction.run" in p.message and "nope" in p.message for p in report.errors)
