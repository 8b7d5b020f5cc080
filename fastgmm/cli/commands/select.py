"""``fastgmm select``: fit a grid of K x covariance types, print BIC/AIC/ICL.

Runs :func:`fastgmm.selection.select` (one sweep sharing the k-means initialisation
between covariance types), prints its table, and optionally writes the table as CSV,
the best model with its sidecar, and the criterion curve as a PNG.
"""

from fastgmm.cli.args import (
    cov_list,
    data_args,
    em_args,
    fit_candidates,
    make_progress,
    output_args,
    read_inputs,
    save_curve,
    save_model,
)


def register(sub):
    """Add the ``select`` parser to ``sub``."""
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
    p.set_defaults(run=run)


def run(args):
    """Fit the grid; print the table; write what was asked for."""
    from fastgmm.selection.grid import k_values

    progress = make_progress(args)
    ks = k_values(args.k_range, name="--k-range")
    covs = cov_list(args.covariance_types)
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
