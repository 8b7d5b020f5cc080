"""Shared pieces of the ``fastgmm`` subcommands in :mod:`fastgmm.cli.commands`:
argument groups, progress, one-line warnings, reading DATA and models, saving.

Progress goes to stderr, only on a terminal and without ``--quiet``; warnings are
shown as one line each. Only the standard library is imported at module level
(``fastgmm --help`` stays fast).
"""

import sys
import warnings
from contextlib import contextmanager

MAX_WARNINGS = 5


class CovarianceTypes:
    """The accepted ``covariance_type`` names, asked of the model table when used.

    :func:`fastgmm.model.covariance.names` for argparse's ``choices``: argparse tests
    ``in`` only when the option is given and lists the names only in help and error
    messages, so building the parser does not import the table (which needs NumPy)
    and ``fastgmm --help`` stays fast.
    """

    def names(self):
        """The sorted accepted names."""
        from fastgmm.model.covariance import names

        return names()

    def __contains__(self, name):
        return name in self.names()

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self.names())


#: the ``choices`` of every covariance-type option
COVARIANCE_TYPES = CovarianceTypes()


def data_args(p):
    """DATA and how to read it: --columns, --header/--no-header, --delimiter."""
    p.add_argument(
        "data", metavar="DATA", help="CSV/TSV text (header detected), .npy or Parquet"
    )
    p.add_argument(
        "--columns",
        metavar="COLS",
        help="comma-separated column names, 0-based indices or ranges i-j "
        "(default: all; predict: the columns the model was fitted on)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const=True,
        help="the first row of a text file holds column names",
    )
    g.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        help="the first row of a text file is data",
    )
    p.add_argument("--delimiter", help="text files: field separator (default: guessed)")


def covariance_type_arg(p):
    """--covariance-type, one of the model table's names (default full)."""
    p.add_argument(
        "--covariance-type",
        default="full",
        choices=COVARIANCE_TYPES,
        metavar="TYPE",  # a {name,...} metavar would read the table at build time
        help="covariance model: %(choices)s (default %(default)s)",
    )


def output_args(p):
    """-q/--quiet and -v/--verbose."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-q", "--quiet", action="store_true", help="no progress line, no summary"
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the lower bound of every EM iteration (on stderr)",
    )


def em_args(p):
    """--scale, the EM options of every fit, and --outlier-percentile."""
    p.add_argument(
        "--scale",
        action="store_true",
        help="standardise each column, (x - mean) / std, before fitting; "
        "saved with the model and applied by predict",
    )
    p.add_argument("--n-init", type=int, default=1, help="EM restarts (default 1)")
    p.add_argument("--max-iter", type=int, default=100, help="default 100")
    p.add_argument("--tol", type=float, default=1e-3, help="default 1e-3")
    p.add_argument("--reg-covar", type=float, default=1e-6, help="default 1e-6")
    p.add_argument(
        "--init-params",
        default="kmeans",
        choices=("kmeans", "k-means++", "random", "random_from_data"),
    )
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--n-jobs", type=int, help="threads (default: all cores)")
    p.add_argument(
        "--outlier-percentile",
        type=float,
        default=1.0,
        metavar="P",
        help="outlier threshold: the P-th percentile of the training "
        "log-densities, saved with the model (default 1)",
    )


def make_progress(args):
    """A status line on stderr: on a terminal, unless --quiet."""
    from fastgmm.cli.progress import Progress

    return Progress(
        sys.stderr, enabled=False if getattr(args, "quiet", False) else None
    )


@contextmanager
def one_line_warnings(progress):
    """Show the warnings raised inside as ``fastgmm: warning: ...`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    lines = []
    for w in caught:
        message = " ".join(str(w.message).split())
        line = f"fastgmm: warning: {w.category.__name__}: {message}"
        if line not in lines:
            lines.append(line)
    for line in lines[:MAX_WARNINGS]:
        progress.println(line, stream=sys.stderr)
    if len(lines) > MAX_WARNINGS:
        progress.println(f"fastgmm: warning: ... and {len(lines) - MAX_WARNINGS} more")


def read_inputs(args):
    """(X in original units, X in model units, names, scaler or None)."""
    from fastgmm.cli.tables import read_data
    from fastgmm.scaling import Standardizer

    X, names = read_data(args.data, args.columns, args.header, args.delimiter)
    scaler = Standardizer.fit(X) if args.scale else None
    return X, (X if scaler is None else scaler.transform(X)), names, scaler


def fit_candidates(Z, ks, cov_types, criterion, args, label, progress):
    """:func:`fastgmm.selection.select` with the EM options, progress and warnings."""
    from fastgmm.cli.progress import CLIMonitor
    from fastgmm.selection import select

    monitor = CLIMonitor(label, progress, verbose=args.verbose)
    with one_line_warnings(progress):
        return select(
            Z,
            ks,
            cov_types,
            criterion,
            n_init=args.n_init,
            init_params=args.init_params,
            random_state=args.seed,
            tol=args.tol,
            reg_covar=args.reg_covar,
            max_iter=args.max_iter,
            n_jobs=args.n_jobs,
            monitor=monitor,
        )


def save_model(model, path, Z, names, scaler, args):
    """Write the model and its sidecar; return the outlier threshold."""
    import fastgmm
    from fastgmm.cli.tables import save_sidecar
    from fastgmm.inspection import fit_outlier_threshold

    threshold = fit_outlier_threshold(model, Z, args.outlier_percentile)
    fastgmm.save(model, path)
    info = {
        "columns": names,
        "column_spec": args.columns,
        "scaler": None if scaler is None else scaler.to_dict(),
        "outlier_percentile": args.outlier_percentile,
        "outlier_threshold": threshold,
    }
    save_sidecar(path, info)
    return threshold


def cov_list(text):
    """``full,diag`` as a list of covariance types (names of the model table)."""
    known = COVARIANCE_TYPES.names()
    covs = [c.strip() for c in str(text).split(",") if c.strip()]
    bad = [c for c in covs if c not in known]
    if bad or not covs:
        raise ValueError(
            f"--covariance-types: {bad or text!r} not among {', '.join(known)}"
        )
    return covs


def model_inputs(args):
    """(model, sidecar, X in model units, names) for predict."""
    import fastgmm
    from fastgmm.cli.tables import load_sidecar
    from fastgmm.scaling import Standardizer

    model = fastgmm.load(args.model)
    side = load_sidecar(args.model) or {}
    X, names = _read_model_columns(args, side)
    if X.shape[1] != model.n_features_in_:
        fitted = side.get("columns")
        hint = f"; it was fitted on {', '.join(fitted)}" if fitted else ""
        raise ValueError(
            f"{args.data}: {X.shape[1]} columns selected, the model expects "
            f"{model.n_features_in_}{hint} (choose them with --columns)"
        )
    saved = side.get("columns")
    if saved and not auto_names(names) and not auto_names(saved) and names != saved:
        raise ValueError(
            f"{args.data}: columns {names} differ from the model's {saved}"
        )
    if side.get("scaler"):
        X = Standardizer.from_dict(side["scaler"]).transform(X)
    return model, side, X


def _read_model_columns(args, side):
    """DATA's columns: --columns, else those of the fit when DATA has them, else all."""
    from fastgmm.cli.tables import ColumnError, read_data

    read = lambda spec: read_data(args.data, spec, args.header, args.delimiter)
    if args.columns is None and side.get("column_spec"):
        try:
            return read(side["column_spec"])
        except ColumnError:  # e.g. names from a CSV header, DATA a headerless .npy
            pass
    return read(args.columns)


def auto_names(names):
    """Whether ``names`` are the ``x0, x1, ...`` given to columns without a header."""
    return all(n == f"x{n[1:]}" and n[1:].isdigit() for n in names)


def prediction_columns(out, threshold):
    """Named output columns of ``predict`` for one scored chunk."""
    cols = [
        ("label", out["labels"]),
        ("log_density", out["log_density"]),
        ("outlier", out["log_density"] < threshold),
        ("confidence", out["confidence"]),
    ]
    if "proba" in out:
        cols.append(("p", out["proba"]))
    return cols


@contextmanager
def open_out(path, binary_later=False):
    """stdout for None or '-', nothing for npz (written at the end), else the file."""
    if binary_later:
        yield None
    elif path in (None, "-"):
        yield sys.stdout
    else:
        with open(path, "w", newline="") as fh:
            yield fh


def save_curve(result, path):
    """Save ``select``'s criterion curve; without matplotlib warn, or fail if asked."""
    try:
        import matplotlib
    except ImportError:
        if path is not None:
            raise ImportError(
                "--plot needs matplotlib (pip install 'fastgmm[plot]')"
            ) from None
        print(
            "fastgmm: warning: matplotlib is not installed, the curve was not "
            "saved (pip install 'fastgmm[plot]', or pass --no-plot)",
            file=sys.stderr,
        )
        return
    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt

    from fastgmm.plotting import plot_selection, save

    path = path or "fastgmm-select.png"
    fig = plot_selection(result).figure
    save(fig, path)
    plt.close(fig)
    print(f"saved the {result.criterion.upper()} curve to {path}")
