"""Evaluation checks: infidelity and max-sensitivity against captum.metrics; deletion/insertion and ROAR on
planted-feature models; the model randomisation test on the demo CNN; meaningful perturbation."""

import warnings

import pytest
import torch
from torch import nn

from kb.reference import (check_attributions, deletion_insertion_curves, grad_cam, gradient_x_input, infidelity,
                          max_sensitivity, meaningful_perturbation, model_randomization_test, rank_correlation,
                          remove_and_retrain, saliency, smoothgrad, spearman)

captum_metrics = pytest.importorskip("captum.metrics")
warnings.filterwarnings("ignore", category=UserWarning)


class Planted(nn.Module):
    """Class 0's logit is ``8 * mean(x[rows 8:12, cols 8:12]) - 4``, class 1's is 0: only the planted
    4x4 region matters."""

    def forward(self, x):
        r = x[:, 0, 8:12, 8:12].mean(dim=(1, 2))
        return torch.stack([8 * r - 4, torch.zeros_like(r)], 1)


@pytest.fixture(scope="module")
def planted():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 16, 16, generator=g) * 0.5
    x[:, :, 8:12, 8:12] = 1.0
    region = torch.zeros(1, 1, 16, 16)
    region[..., 8:12, 8:12] = 1.0
    return Planted(), x, region


# --- rank correlation ---------------------------------------------------------------------------------

def test_rank_correlation_matches_spearman_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (5, 30), generator=g).float()  # many ties
    b = a + torch.randn(5, 30, generator=g)
    ours = rank_correlation(a, b)
    torch.testing.assert_close(ours, torch.tensor([spearman(u, v) for u, v in zip(a, b)]), atol=1e-6, rtol=1e-6)


# --- infidelity and max-sensitivity vs captum.metrics ---------------------------------------------

@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
def test_infidelity_matches_captum(shapes, normalize):
    model, x, t = shapes.model, shapes.inputs[:8], shapes.labels[:8]
    attr = saliency(model, x, t, abs=False)
    noise = torch.randn(8 * 10, *x.shape[1:], generator=torch.Generator().manual_seed(1)) * 0.1
    ours = infidelity(model, x, t, attr, n_perturb_samples=10, noise=noise, normalize=normalize)
    theirs = captum_metrics.infidelity(model, lambda xs: (noise, xs - noise), x, attr, target=t,
                                       n_perturb_samples=10, normalize=normalize)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)  # measured: 0 raw, 1.2e-7 normalised


def test_infidelity_draws_its_own_gaussian_noise_deterministically(tabular):
    model, x, t = tabular.model, tabular.inputs[:8], tabular.labels[:8]
    attr = gradient_x_input(model, x, t)
    a = infidelity(model, x, t, attr, seed=3)
    torch.testing.assert_close(a, infidelity(model, x, t, attr, seed=3))
    noise = torch.randn(80, 8, generator=torch.Generator().manual_seed(3)) * 0.1
    torch.testing.assert_close(a, infidelity(model, x, t, attr, noise=noise))
    # the normalised score of zero attributions is the ceiling E[Delta^2]; good ones explain part of it
    zero = infidelity(model, x, t, torch.zeros_like(attr), seed=3, normalize=True)
    assert (infidelity(model, x, t, attr, seed=3, normalize=True) <= zero + 1e-6).all()


def test_max_sensitivity_matches_captum(shapes):
    model, x, t = shapes.model, shapes.inputs[:6], shapes.labels[:6]
    noise = (torch.rand(6 * 8, *x.shape[1:], generator=torch.Generator().manual_seed(2)) * 2 - 1) * 0.05

    def explain(xs, target):  # Captum passes a tuple and runs under no_grad
        with torch.enable_grad():
            return (saliency(model, xs[0] if isinstance(xs, tuple) else xs, target),)

    theirs = captum_metrics.sensitivity_max(explain, x, perturb_func=lambda xs, r: xs + noise,
                                            n_perturb_samples=8, target=t)
    ours = max_sensitivity(model, x, t, saliency, n_perturb_samples=8, noise=noise)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)  # measured: 0
    assert (ours > 0).all()


def test_smoothing_lowers_max_sensitivity(shapes):
    # Yeh et al.: smoothing an explanation (SmoothGrad) lowers its sensitivity
    model, x, t = shapes.model, shapes.inputs[:4], shapes.labels[:4]
    plain = max_sensitivity(model, x, t, saliency, radius=0.05, n_perturb_samples=4)
    smooth = max_sensitivity(model, x, t, lambda m, xs, tt: smoothgrad(m, xs, tt, n_samples=16, stdev=0.2),
                             radius=0.05, n_perturb_samples=4)
    assert smooth.mean() < plain.mean()


# --- deletion and insertion ------------------------------------------------------------------------------

def test_deletion_insertion_rank_planted_features_above_random(planted):
    model, x, region = planted
    true = (x * region).expand_as(x)  # the planted region's pixels, by brightness
    r = deletion_insertion_curves(model, x, 0, true, steps=16, n_random=4)
    assert r.passed and r.deletion_auc < r.random_deletion_auc - 0.3 and r.insertion_auc > r.random_insertion_auc + 0.3
    assert r.deletion[0] > 0.9 and r.deletion[2] < 0.1  # 16 of 256 pixels (2/16 of the way) remove the class
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    rnd = deletion_insertion_curves(model, x, 0, noise, steps=16, n_random=4)
    assert not rnd.passed
    assert abs(rnd.deletion_auc - rnd.random_deletion_auc) < 3 * max(rnd.random_auc_sd[0], 0.02)  # at chance


def test_deletion_curves_on_rows_and_lerf_is_insertion_backwards(tabular):
    model, x, t = tabular.model, tabular.inputs[:64], tabular.labels[:64]
    r = deletion_insertion_curves(model, x, t, gradient_x_input(model, x, t), steps=8)
    assert r.passed and r.aopc > r.random_aopc
    torch.testing.assert_close(r.lerf, r.insertion.flip(0))
    assert r.fractions.shape == r.deletion.shape == r.random_insertion.shape == (9,)


def test_deletion_with_blur_baseline_and_cam_maps(shapes):
    model, x, t = shapes.model, shapes.inputs[:16], shapes.labels[:16]
    cam = grad_cam(model, x, t, "4")  # (N, 1, H, W) maps are fine: a unit is a pixel
    r = deletion_insertion_curves(model, x, t, cam, steps=10, baseline="blur")
    assert r.deletion_auc < r.random_deletion_auc and r.insertion_auc > r.random_insertion_auc


# --- remove and retrain -------------------------------------------------------------------------------------

def _logistic(X, y):
    model = nn.Linear(X.shape[1], 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.fixture(scope="module")
def planted_rows():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(600, 8, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()  # only features 0 and 1 matter
    true = torch.zeros(600, 8)
    true[:, :2] = 1.0
    return X, y, true, torch.rand(600, 8, generator=g)


def test_remove_and_retrain_ranks_planted_features_above_random(planted_rows):
    X, y, true, noise = planted_rows
    r = remove_and_retrain(_logistic, X, y, true, fractions=(0.25, 0.5))
    assert r.accuracy[0] > 0.95 and r.passed
    assert max(r.accuracy[1:]) < r.chance + 0.1  # both planted features gone: retraining cannot recover
    assert r.random_accuracy[1] > 0.7  # random removal of 2 of 8 features mostly leaves one planted
    rnd = remove_and_retrain(_logistic, X, y, noise, fractions=(0.25, 0.5))
    assert not rnd.passed and abs(rnd.gap) < 0.1  # random attributions at chance


# --- model randomisation ---------------------------------------------------------------------------------------

def test_gradient_maps_change_sharply_under_cascading_randomization(shapes):
    # Adebayo et al. 2018: gradients change under cascading randomisation. Measured here (16 images):
    # |saliency| rank correlation 0.37 after the linear head, 0.19 with every layer randomised.
    model, x, t = shapes.model, shapes.inputs[:16], shapes.labels[:16]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = model_randomization_test(model, x, t, saliency)
    assert r.steps == ["7", "3", "0"] and r.original == pytest.approx(1.0)
    assert r.rank_correlation[0] < 0.5 and r.fully_randomized < 0.3 and abs(r.random) < 0.05
    assert r.passed and r.progress > 0.7
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's model is untouched
    # gradient x input keeps the input's structure (Adebayo et al.'s observation): it stays closer
    gxi = model_randomization_test(model, x, t, gradient_x_input)
    assert gxi.fully_randomized > r.fully_randomized + 0.2


def test_a_map_that_ignores_the_model_fails(shapes):
    model, x, t = shapes.model, shapes.inputs[:8], shapes.labels[:8]
    r = model_randomization_test(model, x, t, lambda m, xs, tt: xs)  # an "edge detector": the input itself
    assert not r.passed and r.progress == pytest.approx(0.0) and "FAIL" in r.verdict


def test_independent_randomization_and_layers_by_name(shapes):
    model, x, t = shapes.model, shapes.inputs[:8], shapes.labels[:8]
    cascade = model_randomization_test(model, x, t, saliency, layers=["7", model[3]])
    independent = model_randomization_test(model, x, t, saliency, layers=["7", "3"], cascade=False)
    assert cascade.steps == independent.steps == ["7", "3"]
    assert independent.rank_correlation[0] == pytest.approx(cascade.rank_correlation[0])  # same first step
    r = model_randomization_test(model, x, t, lambda m, xs, tt: grad_cam(m, xs, tt, "4"))  # a layer by name
    assert r.passed
    with pytest.raises(ValueError, match="not a submodule"):  # the original's layer is not in the copy
        model_randomization_test(model, x, t, lambda m, xs, tt: grad_cam(m, xs, tt, model[4]), layers=["7"])
    assert "reference: random maps" in str(r)


# --- meaningful perturbation ---------------------------------------------------------------------------------

def test_meaningful_perturbation_mask_covers_the_planted_region(planted):
    model, x, region = planted
    saliency_mask = meaningful_perturbation(model, x[:4], 0, baseline=0.0, n_steps=150)
    chosen, truth = saliency_mask[:, 0] > 0.5, region[0, 0].bool()
    iou = (chosen & truth).sum((1, 2)).float() / (chosen | truth).sum((1, 2)).float()
    assert saliency_mask.shape == (4, 1, 16, 16) and (iou > 0.8).all()  # measured: 1.0
    with torch.no_grad():
        kept = model(x[:4] * (1 - saliency_mask)).softmax(1)[:, 0]
    assert (kept < 0.1).all()  # deleting the mask destroys the class


def test_meaningful_perturbation_on_the_shapes_cnn(shapes):
    idx = torch.cat([(shapes.labels == c).nonzero()[:2, 0] for c in range(3)])
    model, x, t = shapes.model, shapes.inputs[idx], shapes.labels[idx]
    s = meaningful_perturbation(model, x, t, baseline=0.0, n_steps=100)[:, 0]
    inside = x[:, 0] > 0.5
    share = (s * inside).sum((1, 2)) / s.sum((1, 2)).clamp_min(1e-12)
    assert (share[2:] > 0.6).all()  # vertical bars, squares: the deleted region is the shape (5% of the image)
    # a blank image is itself a "horizontal bar" to this CNN (p = 0.99): no deletion removes that class,
    # so the area penalty leaves the mask empty
    assert (s[:2].mean((1, 2)) < 0.02).all()
    assert meaningful_perturbation(model, x[0], t[0], n_steps=2).shape == (1, 16, 16)  # one image, no batch dim


# --- the three checks in one call ---------------------------------------------------------------------------------

def test_check_attributions_runs_all_three_with_references(shapes):
    model, x, t = shapes.model, shapes.inputs[:24], shapes.labels[:24]
    good = check_attributions(model, x, t, saliency)
    assert good.passed and good.unexplained < good.unexplained_random
    # the image itself is a decent map of bright shapes (deletion and infidelity pass) but ignores the
    # weights: only the randomisation test catches it
    image = check_attributions(model, x, t, lambda m, xs, tt: xs)
    assert image.deletion.passed and not image.randomization.passed and not image.passed
    # fresh noise at every call: not reproducible, so it fails the randomisation test instead of "passing" it
    g = torch.Generator().manual_seed(0)
    noise = check_attributions(model, x, t, lambda m, xs, tt: torch.rand(xs.shape, generator=g) - 0.5)
    assert not noise.randomization.passed and "not reproducible" in noise.randomization.verdict
    assert not noise.deletion.passed and not noise.infidelity_passed
    assert str(good).count(" pass:") == 3 and "FAIL" not in str(good)
