"""``fastgmm sample``: draw points from a saved model.

Points are in the original units when the model was fitted with ``--scale`` (the
sidecar's scaler is inverted) and named by the sidecar's columns.
"""

from fastgmm.cli.args import open_out


def register(sub):
    """Add the ``sample`` parser to ``sub``."""
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
    p.set_defaults(run=run)


def run(args):
    """Draw the points and write them as CSV or ``.npy``."""
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
