"""Kernels: the C largest log-densities of each point of a block (top-C selection,
Kaldi's gselect), recorded by :mod:`fastgmm.kernels.diaggemm`'s exact passes for the
restricted passes of :mod:`fastgmm.kernels.gselect` in between."""

from .._jit import BLOCK, kernel


@kernel
def record_top(lp, nb, b0, sel, vals):
    """sel[b0 + b] := the indices of the C = sel.shape[1] largest lp[:, b], b < nb,
    largest first (equal terms in no set order). A row's list starts from the
    first C components, or from its previous selection when sel holds one
    (components in [0, K), distinct; -1 marks none); then, component by component over the block's rows
    (contiguous), a term enters only when it beats the row's C-th best, which few
    do. ``vals``: float64 scratch of at least BLOCK * (C + 2)."""
    n_top = sel.shape[1]
    thr = vals[BLOCK * n_top : BLOCK * (n_top + 1)]
    first = vals[BLOCK * (n_top + 1) : BLOCK * (n_top + 2)]  # -1: started from sel
    for b in range(nb):
        ids, first[b] = sel[b0 + b], n_top
        if not _in_range(ids, lp.shape[0]):
            continue
        best = vals[b * n_top : (b + 1) * n_top]
        for c in range(n_top):  # the previous selection, sorted by its new terms
            _insert(best, ids, c, ids[c], lp[ids[c], b])
        if not _repeats(ids):  # (a repeated id sorts next to itself)
            thr[b], first[b] = best[n_top - 1], -1.0
    for k in range(min(n_top, lp.shape[0])):
        for b in range(nb):
            if first[b] >= 0.0:
                best = vals[b * n_top : (b + 1) * n_top]
                _insert(best, sel[b0 + b], k, k, lp[k, b])
                thr[b] = best[n_top - 1]  # read once the list is full
    for k in range(lp.shape[0]):
        row = lp[k]
        hits = 0
        for b in range(nb):  # vectorised: most components enter no list
            hits += row[b] > thr[b]
        if hits == 0:
            continue
        for b in range(nb):
            if not row[b] > thr[b]:
                continue
            if k >= first[b] >= 0.0 or first[b] < 0.0 and not _holds(sel[b0 + b], k):
                best = vals[b * n_top : (b + 1) * n_top]
                _insert(best, sel[b0 + b], n_top, k, row[b])
                thr[b] = best[n_top - 1]


@kernel
def _in_range(ids, n_components):
    """Whether every id is in [0, n_components) (-1 marks no selection yet)."""
    for c in range(ids.shape[0]):
        if ids[c] < 0 or ids[c] >= n_components:
            return False
    return True


@kernel
def _repeats(ids):
    """Whether two neighbours of ids are equal."""
    for c in range(1, ids.shape[0]):
        if ids[c] == ids[c - 1]:
            return True
    return False


@kernel
def _holds(ids, k):
    for c in range(ids.shape[0]):
        if ids[c] == k:
            return True
    return False


@kernel
def _insert(best, ids, count, k, v):
    """Insert (v, k) into the list best/ids (descending, ``count`` entries filled),
    dropping its last entry once full."""
    pos = min(count, best.shape[0] - 1)
    while pos > 0 and best[pos - 1] < v:
        best[pos], ids[pos] = best[pos - 1], ids[pos - 1]
        pos -= 1
    best[pos], ids[pos] = v, k
