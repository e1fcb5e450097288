"""Time kb.reference's integrated gradients, occlusion and KernelSHAP against Captum on the same model and inputs.

Usage: python bench/bench_reference.py [--repeats N] [--threads T] [--json]

Each row runs both implementations in the same process on the same trained demo model and inputs,
alternating run by run after one warm-up each; times are medians over ``--repeats`` pairs and
``ratio`` is the median of the per-pair ratios ours / captum (< 1: ours is faster). The outputs are
compared too (``max rel diff``), so a speed-up never comes from computing something else; KernelSHAP
differs by Captum's sampling: it draws 256 coalitions with replacement where ours enumerates all 256.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from kb.reference import integrated_gradients, kernel_shap, models, occlusion  # noqa: E402


def _paired_times(ours_fn, captum_fn, repeats: int):
    """Alternate the two implementations run by run, so both see the same machine load.

    Returns the median time of each, the median of the per-pair ratios, and the last outputs.
    """
    ours, theirs = ours_fn(), captum_fn()  # warm-up
    ours_t, captum_t = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours = ours_fn()
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = captum_fn()
        captum_t.append(time.perf_counter() - start)
    ratio = statistics.median(a / b for a, b in zip(ours_t, captum_t))
    return statistics.median(ours_t), statistics.median(captum_t), ratio, ours, theirs


def _cases():
    from captum._utils.models.model import Model
    from captum.attr import IntegratedGradients, KernelShap, Occlusion

    class WeightedLeastSquares(Model):  # Captum's default regressor needs scikit-learn
        def fit(self, train_data, **kwargs):
            x, y, w = (torch.cat(p) for p in zip(*train_data))
            x = torch.cat([torch.ones(len(x), 1), x.double()], 1)
            xw = x.T * w.double().view(-1)
            self.coef = torch.linalg.lstsq(xw @ x, xw @ y.double().view(-1, 1)).solution[1:].T.float()

        def representation(self):
            return self.coef

        def __call__(self, x):
            return x @ self.coef.T

    cnn = models.train_shapes_cnn()
    mlp = models.train_tabular_mlp()
    x_img, t_img = cnn.inputs[:32], cnn.labels[:32]
    x_tab, t_tab = mlp.inputs[:32], mlp.labels[:32]
    ks = KernelShap(mlp.model)
    ks.interpretable_model = WeightedLeastSquares()
    return [
        ("integrated_gradients (CNN, 32 images, 50 steps)",
         lambda: integrated_gradients(cnn.model, x_img, t_img, n_steps=50),
         lambda: IntegratedGradients(cnn.model).attribute(x_img, target=t_img, n_steps=50)),
        ("integrated_gradients (MLP, 32 rows, 200 steps)",
         lambda: integrated_gradients(mlp.model, x_tab, t_tab, n_steps=200),
         lambda: IntegratedGradients(mlp.model).attribute(x_tab, target=t_tab, n_steps=200)),
        ("occlusion (CNN, 32 images, 4x4 window, stride 2)",
         lambda: occlusion(cnn.model, x_img, t_img, (1, 4, 4), (1, 2, 2)),
         lambda: Occlusion(cnn.model).attribute(x_img, target=t_img, sliding_window_shapes=(1, 4, 4),
                                                strides=(1, 2, 2), perturbations_per_eval=64)),
        ("kernel_shap (MLP, 8 features, all 256 coalitions, 8 rows)",
         lambda: kernel_shap(mlp.model, x_tab[:8], t_tab[:8], 0.0, n_samples=256),
         lambda: torch.cat([ks.attribute(x_tab[i:i + 1], baselines=0.0, target=int(t_tab[i]), n_samples=256,
                                         perturbations_per_eval=256) for i in range(8)])),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small models)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    rows = []
    for name, ours_fn, captum_fn in _cases():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # Captum's KernelShap samples from the global generator
            ours_t, captum_t, ratio, ours, theirs = _paired_times(ours_fn, captum_fn, args.repeats)
        theirs = theirs.detach()
        diff = float((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-12))
        rows.append({"case": name, "ours_s": ours_t, "captum_s": captum_t, "ratio": ratio, "max_rel_diff": diff})
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": args.threads, "repeats": args.repeats,
                          "results": rows}, indent=2))
        return 0
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':<{width}}  {'ours [ms]':>10}  {'captum [ms]':>11}  {'ours/captum':>11}  {'max rel diff':>12}")
    for r in rows:
        print(f"{r['case']:<{width}}  {1e3 * r['ours_s']:>10.1f}  {1e3 * r['captum_s']:>11.1f}  "
              f"{r['ratio']:>11.2f}  {r['max_rel_diff']:>12.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
