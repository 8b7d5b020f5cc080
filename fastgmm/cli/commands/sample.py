"""``fastgmm sample``: draw points from a saved model.

Points are in the original units when the model was fitted with ``--scale`` (the
sidecar's scaler is inverted) and named by the sidecar's columns.
"""

from fastgmm.cli.args import number


def register(sub):
    """Add the ``sample`` parser to ``sub``."""
    p = sub.add_parser(
        "sample",
        help="draw points from a saved model",
        description="Draw N points from a saved model, in the original units when "
        "it was fitted with --scale; CSV on stdout unless -o (.csv, .tsv or .npy).",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-n", "--n-samples", type=number(int, 1), default=1, metavar="N")
    p.add_argument(
        "--seed", type=number(int, 0, 2**32 - 1), default=0, help="random seed (0)"
    )
    p.add_argument(
        "--with-labels", action="store_true", help="add the component of each point"
    )
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(run=run)


def run(args):
    """Draw the points and write them as CSV, TSV or ``.npy``."""
    import sys

    import fastgmm
    from fastgmm.cli.outputs import ARRAY, Outputs
    from fastgmm.cli.tables import (
        load_sidecar,
        save_array,
        sidecar_path,
        write_columns,
        write_table,
    )
    from fastgmm.scaling import Standardizer

    to_file = args.output not in (None, "-")
    outputs = Outputs(MODEL=args.model)
    outputs.inputs["MODEL's sidecar"] = sidecar_path(args.model)
    fmt = outputs.add("-o", args.output, ARRAY) if to_file else "csv"
    model = fastgmm.load(args.model)
    side = load_sidecar(args.model, model.n_features_in_) or {}
    model.random_state = args.seed
    X, y = model.sample(args.n_samples)
    if side.get("scaler"):
        X = Standardizer.from_dict(side["scaler"]).inverse_transform(X)
    if fmt == "npy":
        import numpy as np

        save_array(
            args.output, "npy", np.column_stack([X, y]) if args.with_labels else X, "x"
        )
        return 0
    names = side.get("columns") or [f"x{j}" for j in range(X.shape[1])]
    cols = [(name, X[:, j]) for j, name in enumerate(names)]
    cols += [("component", y)] if args.with_labels else []
    if to_file:
        write_table(args.output, fmt, cols)
    else:
        write_columns(sys.stdout, cols)
    return 0
