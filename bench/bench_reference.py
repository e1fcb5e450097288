"""Time kb.reference's integrated gradients, occlusion and KernelSHAP against Captum on the same model and inputs.

Usage: python bench/bench_reference.py [--repeats N] [--threads T] [--json]

Each row runs both implementations in the same process on the same trained demo model and inputs;
times are medians over ``--repeats`` runs after one warm-up; ``ratio = ours / captum`` (< 1: faster).
The outputs are also compared, so a speed-up never comes from computing something else.
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


def _median_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


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
        ours_t, ours = _median_time(ours_fn, args.repeats)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            captum_t, theirs = _median_time(captum_fn, args.repeats)
        diff = float((ours - theirs.detach()).abs().max() / theirs.detach().abs().max().clamp_min(1e-12))
        rows.append({"case": name, "ours_s": ours_t, "captum_s": captum_t, "ratio": ours_t / captum_t,
                     "max_rel_diff": diff})
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
