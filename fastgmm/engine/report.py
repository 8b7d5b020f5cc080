"""scikit-learn's verbose EM messages, word for word."""

from time import time


class VerboseReport:
    """Prints per-initialisation and per-iteration progress like scikit-learn's
    BaseMixture (``verbose`` 1: markers; 2: times and lower bounds)."""

    def __init__(self, verbose, interval):
        self.verbose = verbose
        self.interval = interval
        self._init_time = self._iter_time = time()

    def init_begin(self, n_init):
        if self.verbose >= 1:
            print("Initialization %d" % n_init)
            self._init_time = self._iter_time = time()

    def iteration(self, n_iter, diff_ll):
        if not self.verbose or n_iter % self.interval:
            return
        if self.verbose == 1:
            print("  Iteration %d" % n_iter)
            return
        now = time()
        print(
            "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
            % (n_iter, now - self._iter_time, diff_ll)
        )
        self._iter_time = now

    def init_end(self, lower_bound, converged):
        msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_time
            print(
                f"Initialization {msg}. time lapse {t:.5f}s\t lower bound "
                f"{lower_bound:.5f}."
            )
