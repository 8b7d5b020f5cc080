"""Shared pieces of the ``fastgmm`` subcommands in :mod:`fastgmm.cli.commands`:
argument groups and checked argument types, progress, one-line warnings and notes,
reading DATA and models, saving.

Progress goes to stderr, only on a terminal and without ``--quiet``; warnings and
notes are shown as one line each. Option values are checked by argparse with
messages that name the option as typed. Only the standard library is imported at
module level (``fastgmm --help`` stays fast).
"""

import argparse
import re
import sys
import warnings
from contextlib import contextmanager

MAX_WARNINGS = 5
#: default pixel limit of ``segment`` (``--max-pixels``): Pillow's
#: decompression-bomb error threshold, 2 x 89,478,485 pixels
MAX_PIXELS = 2 * 89_478_485


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


# ------------------------------------------------------------ checked arg types
def number(kind, low=None, high=None):
    """An argparse type: ``kind`` (int or float) in [low, high], finite."""
    what = "an integer" if kind is int else "a number"
    bounds = (
        f" in [{low}, {high}]"
        if low is not None and high is not None
        else f" >= {low}"
        if low is not None
        else ""
    )

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        ok = value is not None and value == value and abs(value) != float("inf")
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {what}{bounds}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def n_jobs_type(text):
    """``--n-jobs``: a non-zero integer (scikit-learn's n_jobs)."""
    value = number(int)(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be -1, -2, ... or >= 1, got '0'")
    return value


def k_list(option):
    """An argparse type for ``option`` (``-k``, ``--k-range``): numbers of
    components as :func:`fastgmm.selection.grid.k_values` reads them (``5``,
    ``2-8``, ``2,4,8``), bounds checked before ranges are expanded."""

    def parse(text):
        from fastgmm.selection.grid import k_values

        for lo, hi in re.findall(r"(\d+)\s*-\s*(\d+)", str(text)):
            if int(hi) < int(lo):
                raise argparse.ArgumentTypeError(
                    f"the range {lo}-{hi} is reversed (write {hi}-{lo}), got {text!r}"
                )
        try:
            return k_values(text, name=option)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def check_k(ks, n_rows, option, path):
    """Refuse numbers of components above the number of rows, naming the option."""
    if max(ks) > n_rows:
        raise ValueError(
            f"{option}: K={max(ks)} exceeds the {n_rows} rows of {path} (a mixture "
            "needs at least one row per component)"
        )


# ------------------------------------------------------------- argument groups
def data_args(p):
    """DATA and how to read it: --columns, --header/--no-header, --delimiter."""
    p.add_argument(
        "data", metavar="DATA", help="CSV/TSV text (header detected), .npy or Parquet"
    )
    p.add_argument(
        "--columns",
        metavar="COLS",
        help="comma-separated column names, 0-based indices or ranges i-j "
        "(default: every numeric column; text columns such as ids are skipped; "
        "predict: the columns the model was fitted on)",
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


def quiet_arg(p):
    """-q/--quiet alone (commands that do not fit)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def output_args(p):
    """-q/--quiet and -v/--verbose (commands that fit)."""
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


def percentile_arg(p):
    """--outlier-percentile P in [0, 100]."""
    p.add_argument(
        "--outlier-percentile",
        type=number(float, 0, 100),
        default=1.0,
        metavar="P",
        help="outlier threshold: the P-th percentile of the training "
        "log-densities, saved with the model (default 1)",
    )


def em_args(p):
    """--scale, the EM options of every fit, and --outlier-percentile."""
    p.add_argument(
        "--scale",
        action="store_true",
        help="standardise each column, (x - mean) / std, before fitting; "
        "saved with the model and applied by predict",
    )
    p.add_argument(
        "--n-init", type=number(int, 1), default=1, help="EM restarts (default 1)"
    )
    p.add_argument("--max-iter", type=number(int, 0), default=100, help="default 100")
    p.add_argument("--tol", type=number(float, 0), default=1e-3, help="default 1e-3")
    p.add_argument(
        "--reg-covar", type=number(float, 0), default=1e-6, help="default 1e-6"
    )
    p.add_argument(
        "--init-params",
        default="kmeans",
        choices=("kmeans", "k-means++", "random", "random_from_data"),
    )
    p.add_argument(
        "--seed", type=number(int, 0, 2**32 - 1), default=0, help="random_state (0)"
    )
    p.add_argument("--n-jobs", type=n_jobs_type, help="threads (default: all cores)")
    percentile_arg(p)


# -------------------------------------------------------------------- messages
def make_progress(args):
    """A status line on stderr: on a terminal, unless --quiet."""
    from fastgmm.cli.progress import Progress

    return Progress(
        sys.stderr, enabled=False if getattr(args, "quiet", False) else None
    )


def note(message):
    """``fastgmm: note: message`` on stderr."""
    print(f"fastgmm: note: {message}", file=sys.stderr)


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


def require(module, extra, what):
    """Import ``module``, or fail with the pip command that installs it."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError:
        raise ImportError(
            f'{what} needs {module.split(".")[0]}: pip install "fastgmm[{extra}]"'
        ) from None


# ------------------------------------------------------------------ reading DATA
def read_table(args, columns, keep=None, notes=True):
    """:func:`fastgmm.cli.data.read_data` of DATA, with a note on skipped columns."""
    from fastgmm.cli.data import read_data

    table = read_data(args.data, columns, args.header, args.delimiter, keep)
    if notes and columns is None and table.text:
        note(
            f"skipped the non-numeric columns {', '.join(map(repr, table.text))} "
            "of DATA (choose columns with --columns)"
        )
    return table


def read_inputs(args):
    """(X in original units, X in model units, names, scaler or None)."""
    from fastgmm.scaling import Standardizer

    table = read_table(args, args.columns)
    X = table.X
    scaler = Standardizer.fit(X) if args.scale else None
    return X, (X if scaler is None else scaler.transform(X)), table.names, scaler


def em_options(args):
    """The EM options of the command line as estimator keywords (scikit-learn's
    names: ``--seed`` is random_state; ``--top-components`` only when given)."""
    options = dict(
        n_init=args.n_init,
        init_params=args.init_params,
        random_state=args.seed,
        tol=args.tol,
        reg_covar=args.reg_covar,
        max_iter=args.max_iter,
        n_jobs=args.n_jobs,
    )
    if getattr(args, "top_components", None) is not None:
        options["top_components"] = args.top_components
    return options


def top_components_arg(p):
    """--top-components C (diagonal models, many components)."""
    p.add_argument(
        "--top-components",
        type=number(int, 1),
        metavar="C",
        help="approximate E-step for diagonal models with many components: each "
        "row's responsibilities over its C most likely components, reselected "
        "every few iterations (Kaldi's gselect; convergence and the saved model's "
        "scores are exact). Default: off, the exact E-step",
    )


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
            **em_options(args),
            monitor=monitor,
        )


def save_model(model, path, Z, names, scaler, args):
    """Write the model and its sidecar (each atomically); return the threshold."""
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


def auto_names(names):
    """Whether ``names`` are the ``x0, x1, ...`` given to columns without a header."""
    return all(n == f"x{n[1:]}" and n[1:].isdigit() for n in names)


def save_curve(result, path, fmt):
    """Save ``select``'s criterion curve; without matplotlib warn, or fail if asked."""
    try:
        import matplotlib
    except ImportError:
        if path is not None:
            raise ImportError(
                '--plot needs matplotlib: pip install "fastgmm[plot]"'
            ) from None
        print(
            "fastgmm: warning: matplotlib is not installed, the curve was not "
            'saved (pip install "fastgmm[plot]", or pass --no-plot)',
            file=sys.stderr,
        )
        return
    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt

    from fastgmm.cli.outputs import atomic_write
    from fastgmm.plotting import plot_selection

    path = path or "fastgmm-select.png"
    fig = plot_selection(result).figure
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"saved the {result.criterion.upper()} curve to {path}")
