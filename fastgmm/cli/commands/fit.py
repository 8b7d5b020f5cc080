"""``fastgmm fit``: fit a Gaussian mixture to DATA and save it.

The model is written with :func:`fastgmm.save`; the columns, the standardisation
(``--scale``) and the outlier threshold go to the sidecar ``MODEL.meta.json``
(:mod:`fastgmm.cli.tables`), which ``predict`` and ``sample`` apply. Every output
is checked before the fit (:mod:`fastgmm.cli.outputs`) and written atomically.
"""

from fastgmm.cli.args import (
    check_k,
    covariance_type_arg,
    data_args,
    em_args,
    fit_candidates,
    make_progress,
    number,
    output_args,
    read_inputs,
    save_model,
    top_components_arg,
)


def register(sub):
    """Add the ``fit`` parser to ``sub``."""
    p = sub.add_parser(
        "fit",
        help="fit a Gaussian mixture to DATA and save it",
        description="Fit a Gaussian mixture to DATA and save it (model file plus "
        "MODEL.meta.json with the columns, scaler and outlier threshold); print a "
        "summary.",
    )
    data_args(p)
    p.add_argument(
        "-k",
        "--n-components",
        dest="k",
        type=number(int, 1),
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
    top_components_arg(p)
    p.add_argument(
        "--bayesian",
        nargs="?",
        const="dirichlet_process",
        choices=("dirichlet_process", "dirichlet_distribution"),
        metavar="PRIOR",
        help="fit a BayesianGaussianMixture (variational; weight prior "
        "dirichlet_process, the default, or dirichlet_distribution); --tol is then "
        "per sample (tol_per_sample), K the maximum number of components",
    )
    p.add_argument(
        "--prune",
        type=float,
        metavar="W",
        help="with --bayesian: switch off components whose weight falls below W",
    )
    output_args(p)
    p.set_defaults(run=run)


def run(args):
    """Fit, save the model (and labels/probabilities if asked), print a summary."""
    from fastgmm.cli.outputs import ARRAY, Outputs
    from fastgmm.cli.tables import save_array

    if args.prune is not None and not args.bayesian:
        raise ValueError("--prune needs --bayesian")
    if args.top_components is not None and args.bayesian:
        raise ValueError("--top-components does not apply to --bayesian fits")
    outputs = Outputs(DATA=args.data)
    outputs.add_model("-o", args.output)
    formats = {
        option: outputs.add(option, path, ARRAY)
        for option, path in (("--labels", args.labels), ("--proba", args.proba))
        if path
    }
    progress = make_progress(args)
    _, Z, names, scaler = read_inputs(args)
    check_k([args.k], Z.shape[0], "-k", args.data)
    if args.bayesian:
        model = _fit_bayesian(Z, args, progress)
    else:
        model = fit_candidates(
            Z, [args.k], [args.covariance_type], "bic", args, "fit", progress
        ).best_
    save_model(model, args.output, Z, names, scaler, args)
    if formats:
        import numpy as np

        from fastgmm.inspection import score_chunks

        parts = list(score_chunks(model, Z, proba="--proba" in formats))
        if "--labels" in formats:
            labels = np.concatenate([o["labels"] for _, o in parts])
            save_array(args.labels, formats["--labels"], labels, "label")
        if "--proba" in formats:
            proba = np.concatenate([o["proba"] for _, o in parts])
            save_array(args.proba, formats["--proba"], proba, "p")
    progress.clear()
    if not args.quiet:
        from fastgmm.inspection import summary

        print(f"wrote {args.output} and {args.output}.meta.json")
        print(summary(model, Z, scaler=scaler, feature_names=names))
    return 0


def _fit_bayesian(Z, args, progress):
    """A BayesianGaussianMixture with the EM options (``--tol`` per sample)."""
    from fastgmm import BayesianGaussianMixture
    from fastgmm.cli.args import em_options, one_line_warnings

    options = em_options(args)
    if args.prune is not None and not 0.0 < args.prune < 1.0:
        raise ValueError(f"--prune must be between 0 and 1, got {args.prune}")
    model = BayesianGaussianMixture(
        n_components=args.k,
        covariance_type=args.covariance_type,
        weight_concentration_prior_type=args.bayesian,
        tol_per_sample=options.pop("tol"),
        **options,
        prune_threshold=args.prune,
        verbose=2 if args.verbose else 0,
    )
    with one_line_warnings(progress):
        return model.fit(Z)
