"""The one progress protocol: :class:`Monitor`.

The fit driver calls ``run_start``, ``iteration`` and ``run_end`` around every EM
run; :func:`fastgmm.select` adds ``start`` and ``candidate_end``. Subclass and
override what you need (every hook does nothing by default).
:class:`VerboseMonitor` prints scikit-learn's ``verbose`` messages word for word; the
command line's progress line is another Monitor (``fastgmm.cli.progress``).
"""

from time import time


class Monitor:
    """Hooks called while fastgmm fits (progress bars, logging).

    Subclass and override what you need; every method does nothing by default.
    """

    def start(self, n_candidates, n_init, max_iter):
        """Before a sweep: candidates, restarts per candidate, EM iteration cap."""

    def run_start(self, n_components, covariance_type, init):
        """Before one EM run (restart ``init`` of one candidate)."""

    def iteration(self, n_iter, change):
        """After each EM iteration: its number and the change of the lower bound."""

    def run_end(self, n_components, covariance_type, init, result):
        """After one EM run; ``result`` is a :class:`fastgmm.engine.em.EMResult`."""

    def candidate_end(self, row):
        """After a candidate of a sweep is scored; ``row`` is its table row (a dict)."""


class VerboseMonitor(Monitor):
    """scikit-learn's BaseMixture progress messages (``verbose`` 1: markers; 2: times
    and lower bounds), word for word."""

    def __init__(self, verbose, interval):
        self.verbose = verbose
        self.interval = interval
        self._init_time = self._iter_time = time()

    def run_start(self, n_components, covariance_type, init):
        if self.verbose >= 1:
            print("Initialization %d" % init)
            self._init_time = self._iter_time = time()

    def iteration(self, n_iter, change):
        if not self.verbose or n_iter % self.interval:
            return
        if self.verbose == 1:
            print("  Iteration %d" % n_iter)
            return
        now = time()
        print(
            "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
            % (n_iter, now - self._iter_time, change)
        )
        self._iter_time = now

    def run_end(self, n_components, covariance_type, init, result):
        if result.n_iter == 0:  # max_iter=0: scikit-learn prints no end message
            return
        msg = "converged" if result.converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_time
            print(
                f"Initialization {msg}. time lapse {t:.5f}s\t lower bound "
                f"{result.lower_bound:.5f}."
            )
