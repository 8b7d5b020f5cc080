"""The ``fit``, ``predict``, ``select``, ``sample`` and ``bench`` subcommands.

Registered in :data:`fastgmm.cli.COMMANDS` through :data:`COMMANDS`; each ``_cmd_*``
adds one parser and binds its ``_run_*`` handler (see :mod:`fastgmm.cli`). Only the
standard library is imported here at module level so ``fastgmm --help`` stays fast.

Models are written with :func:`fastgmm.save`; the columns, the standardisation
(``--scale``) and the outlier threshold go to the sidecar ``MODEL.meta.json``
(:mod:`fastgmm.cli.tables`), which ``predict`` and ``sample`` apply. Progress goes to
stderr, only on a terminal and without ``--quiet``; warnings are one line each.
"""

import sys

from fastgmm.cli.args import (
    COV_TYPES,
    cov_list,
    data_args,
    em_args,
    fit_candidates,
    make_progress,
    model_inputs,
    one_line_warnings,
    open_out,
    output_args,
    parse_k_range,
    prediction_columns,
    read_inputs,
    save_curve,
    save_model,
)


# ----------------------------------------------------------------------- fit
def _cmd_fit(sub):
    """Register ``fastgmm fit``."""
    p = sub.add_parser(
        "fit",
        help="fit a Gaussian mixture to DATA and save it",
        description="Fit a Gaussian mixture with K components to DATA and write it "
        "(fastgmm's model file, plus MODEL.meta.json with the columns, the scaler "
        "and the outlier threshold). Prints a summary of the model.",
    )
    data_args(p)
    p.add_argument(
        "-k",
        "--n-components",
        dest="k",
        type=int,
        required=True,
        metavar="K",
        help="number of components",
    )
    p.add_argument("--covariance-type", default="full", choices=COV_TYPES)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file")
    p.add_argument("--labels", metavar="FILE", help="also write labels (.csv or .npy)")
    p.add_argument(
        "--proba", metavar="FILE", help="also write responsibilities (.csv or .npy)"
    )
    em_args(p)
    output_args(p)
    p.set_defaults(run=_run_fit)


def _run_fit(args):
    from fastgmm.cli.tables import save_array
    from fastgmm.inspection import score_chunks, summary

    progress = make_progress(args)
    _, Z, names, scaler = read_inputs(args)
    model = fit_candidates(
        Z, [args.k], [args.covariance_type], "bic", args, "fit", progress
    ).best_
    save_model(model, args.output, Z, names, scaler, args)
    if args.labels or args.proba:
        import numpy as np

        parts = list(score_chunks(model, Z, proba=bool(args.proba)))
        if args.labels:
            save_array(
                args.labels, np.concatenate([o["labels"] for _, o in parts]), "label"
            )
        if args.proba:
            save_array(args.proba, np.concatenate([o["proba"] for _, o in parts]), "p")
    progress.clear()
    if not args.quiet:
        print(f"wrote {args.output} and {args.output}.meta.json")
        print(summary(model, Z, scaler=scaler, feature_names=names))
    return 0


# ------------------------------------------------------------------- predict
def _cmd_predict(sub):
    """Register ``fastgmm predict``."""
    p = sub.add_parser(
        "predict",
        help="labels, probabilities, log-density and outlier flags for DATA",
        description="Score DATA with a saved model (applying its saved scaler): one "
        "CSV row per point with label, log_density, outlier (log_density below the "
        "threshold), confidence and the probabilities p0..p{K-1}.",
    )
    p.add_argument("model", metavar="MODEL")
    data_args(p)
    p.add_argument(
        "-o", "--output", metavar="FILE", help=".csv (default: stdout) or .npz"
    )
    p.add_argument("--no-proba", action="store_true", help="omit the probabilities")
    p.add_argument(
        "--threshold",
        type=float,
        help="outlier log-density threshold (default: the one saved by fit, "
        "else the --outlier-percentile of DATA's log-densities)",
    )
    p.add_argument("--outlier-percentile", type=float, default=1.0, metavar="P")
    p.add_argument("--chunk-size", type=int, default=1_000_000, help="rows per pass")
    output_args(p)
    p.set_defaults(run=_run_predict)


def _run_predict(args):
    import numpy as np

    from fastgmm.cli.progress import bar
    from fastgmm.inspection import fit_outlier_threshold, score_chunks

    progress = make_progress(args)
    model, side, Z = model_inputs(args)
    threshold = args.threshold
    if threshold is None:
        threshold = side.get("outlier_threshold")
    if threshold is None:
        threshold = fit_outlier_threshold(model, Z, args.outlier_percentile)
    to_npz = bool(args.output) and args.output.lower().endswith(".npz")
    parts, n = [], Z.shape[0]
    with open_out(args.output, to_npz) as fh:
        for start, out in score_chunks(
            model, Z, proba=not args.no_proba, chunk_size=args.chunk_size
        ):
            cols = prediction_columns(out, threshold)
            if to_npz:
                parts.append(cols)
            else:
                from fastgmm.cli.tables import write_columns

                write_columns(fh, cols, header=start == 0)
            done = start + len(out["labels"])
            progress.show(f"predict {bar(done, n)} {done}/{n} rows")
    progress.clear()
    if to_npz:
        arrays = {
            name: np.concatenate([p[i][1] for p in parts])
            for i, (name, _) in enumerate(parts[0])
        }
        np.savez(args.output, **arrays)
    return 0


# -------------------------------------------------------------------- select
def _cmd_select(sub):
    """Register ``fastgmm select``."""
    p = sub.add_parser(
        "select",
        help="fit a range of K x covariance types, print the BIC/AIC/ICL table",
        description="Fit every K in --k-range with every covariance type (sharing "
        "the k-means initialisation between covariance types), print the table of "
        "BIC, AIC, ICL, log-likelihood and fit time, mark the best by --criterion "
        "and save the criterion curve as a PNG (needs matplotlib).",
    )
    data_args(p)
    p.add_argument(
        "--k-range", default="1-10", help="e.g. 1-10 or 2,4,8 (default 1-10)"
    )
    p.add_argument(
        "--covariance-types",
        default="full",
        help="comma-separated, e.g. full,diag (default full)",
    )
    p.add_argument("--criterion", default="bic", choices=("bic", "aic", "icl"))
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="where to save the curve (default fastgmm-select.png)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not save the curve")
    p.add_argument("--table", metavar="CSV", help="also write the table as CSV")
    p.add_argument("-o", "--output", metavar="MODEL", help="save the best model")
    em_args(p)
    output_args(p)
    p.set_defaults(run=_run_select)


def _run_select(args):
    progress = make_progress(args)
    ks, covs = parse_k_range(args.k_range), cov_list(args.covariance_types)
    _, Z, names, scaler = read_inputs(args)
    result = fit_candidates(Z, ks, covs, args.criterion, args, "select", progress)
    progress.clear()
    print(result.format())
    if args.table:
        from fastgmm.selection import COLUMNS

        with open(args.table, "w", newline="") as fh:
            fh.write(",".join(COLUMNS) + "\n")
            fh.writelines(
                ",".join(str(row[c]) for c in COLUMNS) + "\n" for row in result.table
            )
    if args.output:
        save_model(result.best_, args.output, Z, names, scaler, args)
        print(f"wrote {args.output} and {args.output}.meta.json")
    if not args.no_plot:
        save_curve(result, args.plot)
    return 0


# -------------------------------------------------------------------- sample
def _cmd_sample(sub):
    """Register ``fastgmm sample``."""
    p = sub.add_parser(
        "sample",
        help="draw points from a saved model",
        description="Draw N points from a saved model, in the original units when "
        "it was fitted with --scale; CSV on stdout unless -o (.csv or .npy).",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-n", "--n-samples", type=int, default=1, metavar="N")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--with-labels", action="store_true", help="add the component of each point"
    )
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(run=_run_sample)


def _run_sample(args):
    import fastgmm
    from fastgmm.cli.tables import load_sidecar, write_columns
    from fastgmm.scaling import Standardizer

    if args.n_samples < 1:
        raise ValueError(f"-n must be at least 1, got {args.n_samples}")
    model = fastgmm.load(args.model)
    side = load_sidecar(args.model) or {}
    model.random_state = args.seed
    X, y = model.sample(args.n_samples)
    if side.get("scaler"):
        X = Standardizer.from_dict(side["scaler"]).inverse_transform(X)
    names = side.get("columns") or [f"x{j}" for j in range(X.shape[1])]
    if args.output and args.output.lower().endswith(".npy"):
        import numpy as np

        np.save(args.output, np.column_stack([X, y]) if args.with_labels else X)
        return 0
    cols = [(name, X[:, j]) for j, name in enumerate(names)]
    cols += [("component", y)] if args.with_labels else []
    with open_out(args.output) as fh:
        write_columns(fh, cols)
    return 0


# --------------------------------------------------------------------- bench
def _cmd_bench(sub):
    """Register ``fastgmm bench``."""
    p = sub.add_parser(
        "bench",
        help="time fastgmm against scikit-learn, side by side",
        description="Run benchmarks/compare.py (--quick unless --full) when fastgmm "
        "runs from a source checkout; otherwise, or with --builtin, a small built-in "
        "comparison: both libraries start from the same parameters, per covariance "
        "type.",
    )
    p.add_argument("--full", action="store_true", help="compare.py without --quick")
    p.add_argument("--builtin", action="store_true", help="use the built-in version")
    p.add_argument("--n", type=int, default=100_000, help="built-in: points (100000)")
    p.add_argument("--d", type=int, default=3, help="built-in: features (3)")
    p.add_argument("-k", type=int, default=8, help="built-in: components (8)")
    p.add_argument("--repeats", type=int, default=3, help="built-in: best of (3)")
    p.set_defaults(run=_run_bench)


def _run_bench(args):
    from fastgmm.cli import bench as _bench

    script = None if args.builtin else _bench.compare_script()
    if script is not None:
        print(f"running {script}{'' if args.full else ' --quick'}", file=sys.stderr)
        _bench.load_compare(script).main([] if args.full else ["--quick"])
        return 0
    with one_line_warnings(make_progress(args)):
        _bench.run_builtin(n=args.n, d=args.d, k=args.k, repeats=args.repeats)
    return 0


#: registrars for :data:`fastgmm.cli.COMMANDS`, in ``--help`` order
COMMANDS = (_cmd_fit, _cmd_predict, _cmd_select, _cmd_sample, _cmd_bench)
