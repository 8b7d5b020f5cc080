"""The floor plan, enforced: layers as folders, imports only downwards, no cycles.

Every ``import`` in the package (at module level or inside a function) is read from
the source. Layers, lowest first (see docs/architecture.md):

    base          _jit (JIT policy), _runtime (threads), _pacing, exceptions, the package root
    kernels       every Numba kernel; imports only the JIT policy and other kernels
    model         per-model maths: the covariance table, params, criteria, checks
    engine, io    data and sources, the fit driver, init, online EM, scoring; model files
    estimators    mixture (GaussianMixture), bayesian (BayesianGaussianMixture)
    applications  inspection, selection, plotting, segmentation, scaling, warm-up, dask
    cli           the command line
"""

import ast
from pathlib import Path

import pytest

import fastgmm

ROOT = Path(fastgmm.__file__).resolve().parent

LAYERS = {
    "base": ["fastgmm", "fastgmm._jit", "fastgmm._runtime", "fastgmm._pacing", "fastgmm.exceptions"],
    "kernels": ["fastgmm.kernels"],
    "model": ["fastgmm.model"],
    "engine": ["fastgmm.engine", "fastgmm.io"],
    "estimators": [
        "fastgmm.mixture", "fastgmm.bayesian", "fastgmm._base", "fastgmm._derived",
        "fastgmm.modelbased",
    ],
    "applications": [
        "fastgmm.inspection", "fastgmm.selection", "fastgmm.plotting",
        "fastgmm.segmentation", "fastgmm.scaling", "fastgmm._warmup", "fastgmm.dask",
        "fastgmm.clustering", "fastgmm.datasets",
    ],
    "cli": ["fastgmm.cli", "fastgmm.__main__"],
}  # fmt: skip
RANK = {layer: i for i, layer in enumerate(LAYERS)}


def module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module):
    """The layer whose longest prefix matches ``module``."""
    best, length = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(
                prefix
            ) > length:
                best, length = layer, len(prefix)
    return best


def _resolve(module, node):
    """fastgmm modules named by one import statement in ``module``."""
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "fastgmm"]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "fastgmm":
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def imports(module):
    """{imported fastgmm module} of one module (module level and inside functions)."""
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_resolve(module, node))
    return found - {module}


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_only(module):
    mine = RANK[layer_of(module)]
    upward = [t for t in GRAPH[module] if RANK[layer_of(t)] > mine]
    assert upward == [], f"{module} ({layer_of(module)}) imports upward: {upward}"


def test_kernels_import_only_the_jit_policy():
    for module, targets in GRAPH.items():
        if layer_of(module) == "kernels":
            bad = [
                t for t in targets if t != "fastgmm._jit" and layer_of(t) != "kernels"
            ]
            assert bad == [], f"{module} imports {bad}"


def test_nothing_below_the_estimator_imports_it():
    for module, targets in GRAPH.items():
        if RANK[layer_of(module)] < RANK["estimators"]:
            assert "fastgmm.mixture" not in targets, module


def test_no_import_cycles():
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert cycles == []


def test_the_resolver_sees_relative_and_lazy_imports():
    """The checks above read what they claim to (guards the guard)."""
    assert "fastgmm.model.covariance" in GRAPH["fastgmm.engine.em"]
    assert "fastgmm._jit" in GRAPH["fastgmm.kernels.passes"]
    # a lazy import inside a function body
    assert "fastgmm.engine.score" in GRAPH["fastgmm.plotting.plane"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    """Modules under ~400 lines (the style guide); a few data-heavy ones may be
    longer, never past 500."""
    lines = MODULES[module].read_text().count("\n")
    assert lines <= 500, f"{module}: {lines} lines"
