"""``fastgmm predict``: labels, probabilities, log-density and outlier flags for DATA.

The model's sidecar (``MODEL.meta.json``) supplies the columns, the scaler and the
outlier threshold saved by ``fit``; DATA is scored in chunks of ``--chunk-size``
rows, written as CSV as they come or, for ``.npz``, all at the end.
"""

from fastgmm.cli.args import (
    data_args,
    make_progress,
    model_inputs,
    open_out,
    output_args,
    prediction_columns,
)


def register(sub):
    """Add the ``predict`` parser to ``sub``."""
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
    p.set_defaults(run=run)


def run(args):
    """Score DATA chunk by chunk and write the prediction columns."""
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
