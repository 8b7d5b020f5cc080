"""``fastgmm fit``: fit a Gaussian mixture to DATA and save it.

The model is written with :func:`fastgmm.save`; the columns, the standardisation
(``--scale``) and the outlier threshold go to the sidecar ``MODEL.meta.json``
(:mod:`fastgmm.cli.tables`), which ``predict`` and ``sample`` apply.
"""

from fastgmm.cli.args import (
    covariance_type_arg,
    data_args,
    em_args,
    fit_candidates,
    make_progress,
    output_args,
    read_inputs,
    save_model,
)


def register(sub):
    """Add the ``fit`` parser to ``sub``."""
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
    covariance_type_arg(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file")
    p.add_argument("--labels", metavar="FILE", help="also write labels (.csv or .npy)")
    p.add_argument(
        "--proba", metavar="FILE", help="also write responsibilities (.csv or .npy)"
    )
    em_args(p)
    output_args(p)
    p.set_defaults(run=run)


def run(args):
    """Fit, save the model (and labels/probabilities if asked), print a summary."""
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
