"""``fastgmm predict``: labels, probabilities, log-density and outlier flags for DATA.

The model's sidecar (``MODEL.meta.json``) supplies the columns, the scaler and the
outlier threshold saved by ``fit``. DATA is scored in chunks of ``--chunk-size``
rows, written as CSV/TSV as they come or, for ``.npz``, all at the end; a file is
written atomically. The text columns of DATA (ids, names) are copied to the output
first, or the columns chosen with ``--keep``.

No estimator is built: the model file is read and checked by
:func:`fastgmm.io.persist.read` and scored by the one scorer
(:mod:`fastgmm.engine.score`), so scikit-learn is never imported and start-up stays
short.
"""

from fastgmm.cli.args import data_args, make_progress, number, percentile_arg, quiet_arg


def register(sub):
    """Add the ``predict`` parser to ``sub``."""
    p = sub.add_parser(
        "predict",
        help="labels, probabilities, log-density and outlier flags for DATA",
        description="Score DATA with a saved model (applying its saved scaler): one "
        "row per point with DATA's text columns (ids, names; see --keep), label, "
        "log_density, outlier (log_density below the threshold), confidence and the "
        "probabilities p0..p{K-1}.",
    )
    p.add_argument("model", metavar="MODEL")
    data_args(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=".csv or .tsv (default: CSV on stdout) or .npz",
    )
    p.add_argument(
        "--keep",
        metavar="COLS",
        help="columns of DATA copied to the output first, chosen as --columns "
        "chooses, or 'none' (default: DATA's text columns, such as ids and names)",
    )
    p.add_argument("--no-proba", action="store_true", help="omit the probabilities")
    p.add_argument(
        "--threshold",
        type=number(float),
        help="outlier log-density threshold (default: the one saved by fit, "
        "else the --outlier-percentile of DATA's log-densities)",
    )
    percentile_arg(p)
    p.add_argument(
        "--chunk-size",
        type=number(int, 1),
        default=1_000_000,
        help="rows per pass (default 1000000)",
    )
    quiet_arg(p)
    p.set_defaults(run=run)


def _read(args, n_features, side):
    """DATA's columns (--columns, else those of the fit when DATA has them, else
    every numeric column) and the kept columns."""
    from fastgmm.cli.args import auto_names, read_table
    from fastgmm.cli.data import KEEP_TEXT, ColumnError

    keep = {None: KEEP_TEXT, "none": None}.get(args.keep, args.keep)
    table = None
    if args.columns is None and side.get("column_spec"):
        try:
            table = read_table(args, side["column_spec"], keep, notes=False)
        except ColumnError:  # e.g. names from a CSV header, DATA a headerless .npy
            pass
    table = table or read_table(args, args.columns, keep, notes=False)
    if table.X.shape[1] != n_features:
        fitted = side.get("columns")
        hint = f"; it was fitted on {', '.join(fitted)}" if fitted else ""
        raise ValueError(
            f"{args.data}: {table.X.shape[1]} columns selected, the model expects "
            f"{n_features}{hint} (choose them with --columns)"
        )
    saved = side.get("columns")
    names = table.names
    if saved and not auto_names(names) and not auto_names(saved) and names != saved:
        raise ValueError(
            f"{args.data}: columns {names} differ from the model's {saved}"
        )
    return table


def _chunks(Z, params, proba, chunk_size):
    """(start, outputs) of each chunk: labels, log_density, confidence[, proba]."""
    import numpy as np

    from fastgmm.engine.score import score_chunks

    for start, (lse, resp, labels) in score_chunks(
        Z, params, chunk_size, lse=True, resp=True, labels=True
    ):
        out = {
            "labels": labels,
            "log_density": lse.astype(np.float64),
            "confidence": resp[np.arange(labels.shape[0]), labels].astype(np.float64),
        }
        if proba:
            out["proba"] = resp
        yield start, out


def _columns(out, threshold, kept, start):
    """Named output columns of one scored chunk."""
    stop = start + len(out["labels"])
    cols = [(name, values[start:stop]) for name, values in kept]
    cols += [
        ("label", out["labels"]),
        ("log_density", out["log_density"]),
        ("outlier", out["log_density"] < threshold),
        ("confidence", out["confidence"]),
    ]
    if "proba" in out:
        cols.append(("p", out["proba"]))
    return cols


def _inputs(args):
    """(model Params, DATA in model units, kept columns, outlier threshold)."""
    import numpy as np

    from fastgmm.cli.tables import load_sidecar
    from fastgmm.io.persist import read
    from fastgmm.scaling import Standardizer

    params = read(args.model).params()
    side = load_sidecar(args.model, params.n_features) or {}
    table = _read(args, params.n_features, side)
    Z = table.X
    if side.get("scaler"):
        Z = Standardizer.from_dict(side["scaler"]).transform(Z)
    threshold = args.threshold
    if threshold is None:
        threshold = side.get("outlier_threshold")
    if threshold is None:
        from fastgmm.engine.score import score

        (lse,) = score(Z, params, lse=True)
        threshold = float(np.percentile(lse, args.outlier_percentile))
    return params, Z, table.kept, threshold


def _write_npz(path, tables):
    """All chunks' columns concatenated into one ``.npz``, atomically."""
    import numpy as np

    from fastgmm.cli.outputs import atomic_write

    arrays = {
        name: np.concatenate([t[i][1] for t in tables])
        for i, (name, _) in enumerate(tables[0])
    }
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)


def run(args):
    """Score DATA chunk by chunk and write the prediction columns."""
    import sys
    from contextlib import nullcontext

    from fastgmm.cli.outputs import TABLE, Outputs, atomic_write
    from fastgmm.cli.progress import bar
    from fastgmm.cli.tables import sidecar_path, write_columns

    to_file = args.output not in (None, "-")
    outputs = Outputs(MODEL=args.model, DATA=args.data)
    outputs.inputs["MODEL's sidecar"] = sidecar_path(args.model)
    fmt = outputs.add("-o", args.output, TABLE) if to_file else "csv"
    params, Z, kept, threshold = _inputs(args)
    chunks = _chunks(Z, params, not args.no_proba, args.chunk_size)
    if fmt == "npz":
        _write_npz(args.output, [_columns(o, threshold, kept, s) for s, o in chunks])
        return 0
    progress, n = make_progress(args), Z.shape[0]
    delimiter = "\t" if fmt == "tsv" else ","
    opened = atomic_write(args.output, "w", newline="") if to_file else None
    with opened or nullcontext(sys.stdout) as fh:
        for start, out in chunks:
            cols = _columns(out, threshold, kept, start)
            write_columns(fh, cols, header=start == 0, delimiter=delimiter)
            done = start + len(out["labels"])
            progress.show(f"predict {bar(done, n)} {done}/{n} rows")
    progress.clear()
    return 0
