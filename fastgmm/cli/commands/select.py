"""``fastgmm select``: fit a grid of K x covariance types, print BIC/AIC/ICL.

Runs :func:`fastgmm.selection.select` (one sweep sharing the k-means initialisation
between covariance types), prints its table, and optionally writes the table as CSV,
the best model with its sidecar, and the criterion curve as a PNG. Every output is
checked before the sweep and written atomically.
"""

from fastgmm.cli.args import (
    check_k,
    cov_list,
    data_args,
    em_args,
    fit_candidates,
    k_list,
    make_progress,
    output_args,
    read_inputs,
    save_curve,
    save_model,
    top_components_arg,
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
        "--k-range",
        type=k_list("--k-range"),
        default="1-10",
        help="e.g. 1-10 or 2,4,8 (default 1-10)",
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
        help="where to save the curve: .png, .pdf or .svg (default fastgmm-select.png)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not save the curve")
    p.add_argument("--table", metavar="CSV", help="also write the table (.csv, .tsv)")
    p.add_argument("-o", "--output", metavar="MODEL", help="save the best model")
    em_args(p)
    top_components_arg(p)
    output_args(p)
    p.set_defaults(run=run)


def _plan(args):
    """Check every output before the sweep; (table format, plot path, plot format)."""
    from fastgmm.cli.outputs import PLOT, TEXT_TABLE, Outputs

    outputs = Outputs(DATA=args.data)
    if args.output:
        outputs.add_model("-o", args.output)
    table = outputs.add("--table", args.table, TEXT_TABLE) if args.table else None
    plot = None if args.no_plot else (args.plot or "fastgmm-select.png")
    plot_fmt = outputs.add("--plot", plot, PLOT) if plot else None
    return table, plot, plot_fmt


def run(args):
    """Fit the grid; print the table; write what was asked for."""
    covs = cov_list(args.covariance_types)
    table_fmt, plot, plot_fmt = _plan(args)
    progress = make_progress(args)
    _, Z, names, scaler = read_inputs(args)
    check_k(args.k_range, Z.shape[0], "--k-range", args.data)
    result = fit_candidates(
        Z, args.k_range, covs, args.criterion, args, "select", progress
    )
    progress.clear()
    print(result.format())
    if args.table:
        import numpy as np

        from fastgmm.cli.tables import write_table
        from fastgmm.selection import COLUMNS

        text = lambda c: np.array([str(row[c]) for row in result.table], object)
        columns = [(c, text(c)) for c in COLUMNS]
        write_table(args.table, table_fmt, columns)
    if args.output:
        save_model(result.best_, args.output, Z, names, scaler, args)
        print(f"wrote {args.output} and {args.output}.meta.json")
    if plot:
        save_curve(result, args.plot, plot_fmt)
    return 0
