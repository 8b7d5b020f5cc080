#!/usr/bin/env python
"""What mclust's constrained models cost per EM iteration, against VVV / VVI.

Usage::

    python benchmarks/mclust_models.py [--repeats 9] [--out FILE]

Every mclust model runs the same fused pass as its unconstrained relative (the dense
ones VVV's FULL pass, the diagonal ones VVI's DIAG pass); what differs is the M-step
(closed form, iterative or MM, in NumPy; see ``fastgmm.model.mclust``). For each shape
and model this times one whole EM iteration (``em_step``: pass + M-step) from a fitted
state of that model, alternating with the relative (model, relative, model, ...),
and prints the median of the per-pair ratios t(model) / t(relative) (each time
the mean of 3 iterations), with the mean M-step time alone (``family.update`` on the pass's statistics, warm-started
from the current covariances as in EM). Kernels are warmed before timing.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare import md_table  # noqa: E402

SHAPES = [(200_000, 3, 8), (100_000, 8, 8), (50_000, 16, 8)]  # n, d, K
DENSE = ["VVV", "EEV", "VEV", "EVV", "VEE", "EVE", "VVE"]
DIAGONAL = ["VVI", "VEI", "EVI"]


def state(X, K, name):
    """(data, family, params) of ``name`` after a few EM iterations on X."""
    from fastgmm import GaussianMixture
    from fastgmm.engine.data import make_data
    from fastgmm.engine.em import MaximumLikelihood
    from fastgmm.model import covariance
    from fastgmm.model.params import from_fitted

    model = covariance.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(K, covariance_type=name, max_iter=5, random_state=0)
        gm.fit(X)
    return make_data(X, None, K, model), MaximumLikelihood(model), from_fitted(gm)


def time_step(data, family, params, inner):
    from fastgmm.engine.em import em_step

    t0 = time.perf_counter()
    for _ in range(inner):
        em_step(data, params, family)
    return (time.perf_counter() - t0) / inner


def time_m_step(data, family, params, inner):
    from fastgmm.engine.em import pass_stats

    _, stats, ref = pass_stats(data, params, family)
    t0 = time.perf_counter()
    for _ in range(inner):
        family.update(stats, ref, data, previous=params)
    return (time.perf_counter() - t0) / inner


def measure(repeats):
    rng = np.random.default_rng(0)
    rows = []
    for n, d, K in SHAPES:
        centres = rng.normal(scale=4.0, size=(K, d))
        X = centres[rng.integers(K, size=n)] + rng.normal(size=(n, d))
        for group in (DENSE, DIAGONAL):
            base = state(X, K, group[0])
            time_step(*base, 2)  # warm
            for name in group[1:]:
                other = state(X, K, name)
                time_step(*other, 2)
                ratios = [
                    time_step(*other, 3) / time_step(*base, 3) for _ in range(repeats)
                ]
                m_step = time_m_step(*other, 5)
                base_m = time_m_step(*base, 5)
                step = time_step(*base, 3)
                rows.append(
                    (n, d, K, name, group[0], float(np.median(ratios)), m_step, base_m,
                     step)
                )  # fmt: skip
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=9, help="alternating pairs (9)")
    p.add_argument("--out", help="also write the markdown table here")
    args = p.parse_args(argv)
    rows = measure(args.repeats)
    lines = ["# mclust models: one EM iteration against the unconstrained model", ""]
    lines += md_table(
        ["n", "d", "K", "model", "vs", "t / t(vs)", "M-step", "M-step (vs)",
         "iteration (vs)"],
        [
            (f"{n:,}", d, K, name, base, f"{ratio:.2f}", f"{m * 1e3:.2f} ms",
             f"{bm * 1e3:.2f} ms", f"{step * 1e3:.1f} ms")
            for n, d, K, name, base, ratio, m, bm, step in rows
        ],
    )  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
