"""Running Caffe2's own operator tests (test data in the shared folder) against pycaffe2.

`run_files(folder, names)` imports each file as `caffe2.python.operator_test.<name>`
with `caffe2.python.<module>` mapped onto `pycaffe2.<module>` (and
`caffe2.proto.caffe2_pb2` onto `pycaffe2.proto.caffe2_pb2`), runs its unittest
cases in-process on CPU device options only, with hypothesis held to a few
examples, and returns one outcome per test id:

    "<file>::<Class>.<test>" -> ("passed" | "failed" | "errored" | "skipped", first line of why)

A file that cannot be imported is one entry, "<file>::import". The mapping is
installed only for the run and removed afterwards, with every `caffe2.*` module
it made. Test ids are stable, so tests/caffe2_conformance/expected_failures.yaml
can name them.
"""
from __future__ import annotations

import collections
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import io
import random
import re
import sys
import unittest
import warnings
from pathlib import Path

import numpy as np

from tests.conftest import SHARED

OPERATOR_TESTS = SHARED / "caffe2_operator_tests"
OPERATOR_TESTS_MISSING = (f"needs Caffe2's operator tests in {OPERATOR_TESTS.absolute()} "
                          "(the shared folder's caffe2_operator_tests; see PYCAFFE2_SHARED in tests/conftest.py)")
TEST_PACKAGE = "caffe2.python.operator_test"
EXAMPLES = 3  # per hypothesis test: enough to run every code path once or twice, not to search


class _Alias(importlib.abc.Loader):
    """Hands out an already imported pycaffe2 module under its caffe2 name."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self._own_spec  # the import system stamped the alias's spec on it


class _Empty(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []


class Caffe2Names(importlib.abc.MetaPathFinder):
    """caffe2, caffe2.python, caffe2.proto: empty packages; caffe2.python.<x> -> pycaffe2.<x>;
    caffe2.python.operator_test -> the folder of test files. Anything pycaffe2 lacks is
    an ImportError naming the module."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("caffe2", "caffe2.python", "caffe2.proto"):
            return importlib.machinery.ModuleSpec(fullname, _Empty(), is_package=True)
        if fullname == TEST_PACKAGE:
            return importlib.util.spec_from_file_location(
                fullname, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)])
        if fullname.startswith(TEST_PACKAGE + "."):
            return None  # a file of the folder: the ordinary path finder, through __path__
        if fullname == "caffe2.proto.caffe2_pb2":
            target = "pycaffe2.proto.caffe2_pb2"
        elif fullname.startswith("caffe2.python."):
            target = "pycaffe2." + fullname[len("caffe2.python."):]
        elif fullname.startswith("caffe2."):
            target = None
        else:
            return None
        if target is None or importlib.util.find_spec(target) is None:
            raise ModuleNotFoundError(f"{fullname}: pycaffe2 has no such module", name=fullname)
        return importlib.machinery.ModuleSpec(fullname, _Alias(target))


@contextlib.contextmanager
def caffe2_names(folder: Path):
    finder = Caffe2Names(folder)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n == "caffe2" or n.startswith("caffe2.")]:
            del sys.modules[name]


@contextlib.contextmanager
def cpu_only():
    """No GPU device options, whatever this machine has (the tests are tuned for the CPU)."""
    import pycaffe2.hypothesis_test_util as hu
    import pycaffe2.serialized_test.serialized_test_util as serial
    from pycaffe2 import workspace
    count = workspace.NumGpuDevices
    workspace.has_gpu_support = workspace.has_cuda_support = False
    workspace.NumGpuDevices = lambda: 0
    try:
        importlib.reload(hu)
        importlib.reload(serial)
        yield
    finally:
        del workspace.has_gpu_support, workspace.has_cuda_support  # asked lazily again
        workspace.NumGpuDevices = count
        importlib.reload(hu)
        importlib.reload(serial)


@contextlib.contextmanager
def few_examples(examples: int = EXAMPLES):
    """Hypothesis settings for the run: a profile of `examples` examples, no deadline,
    no example database, health checks off. A test's own @settings is held to the same
    cap and deadline, and `timeout=` and `st.lists(average_size=)` (which today's hypothesis
    no longer knows) are dropped."""
    import hypothesis
    settings = hypothesis.settings
    # Shrinking a failure re-runs the op hundreds of times; the first failing example says enough.
    no_shrink = (hypothesis.Phase.explicit, hypothesis.Phase.reuse, hypothesis.Phase.generate)
    settings.register_profile("caffe2-conformance", max_examples=examples, deadline=None, database=None,
                              suppress_health_check=list(hypothesis.HealthCheck), derandomize=True,
                              phases=no_shrink, report_multiple_bugs=False)
    previous_profile = getattr(settings, "_current_profile", None) or "default"
    original_init = settings.__init__

    def capped_init(self, parent=None, **kwargs):
        kwargs.pop("timeout", None)
        if "max_examples" in kwargs:
            kwargs["max_examples"] = min(kwargs["max_examples"], examples)
        if "deadline" in kwargs:
            kwargs["deadline"] = None
        kwargs["phases"] = no_shrink
        original_init(self, parent, **kwargs)

    # Spellings today's hypothesis refuses: average_size= (removed in 4.0) and arrays'
    # elements given by position (keyword-only since then).
    import hypothesis.extra.numpy as hnp
    originals = {(hypothesis.strategies, "lists"): hypothesis.strategies.lists,
                 (hypothesis.strategies, "text"): hypothesis.strategies.text,
                 (hnp, "arrays"): hnp.arrays}

    def without_average_size(strategy):
        return lambda *args, average_size=None, **kwargs: strategy(*args, **kwargs)

    def arrays(dtype, shape, elements=None, **kwargs):
        return originals[(hnp, "arrays")](dtype, shape, elements=elements, **kwargs)

    settings.load_profile("caffe2-conformance")
    settings.__init__ = capped_init
    hypothesis.strategies.lists = without_average_size(originals[(hypothesis.strategies, "lists")])
    hypothesis.strategies.text = without_average_size(originals[(hypothesis.strategies, "text")])
    hnp.arrays = arrays
    try:
        yield
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)
        settings.__init__ = original_init
        settings.load_profile(previous_profile)


# NumPy names the 2020 test files use that NumPy 2 removed: put back for the run only,
# so a file fails on pycaffe2's behaviour, not on NumPy's renames.
_NUMPY_REMOVED = {"float": float, "int": int, "object": object, "str": str, "long": int,
                  "unicode_": np.str_, "asscalar": lambda a: np.asarray(a).item()}


def _getargspec(function):
    """Python 3's removed inspect.getargspec, from getfullargspec (matmul_op_test uses it)."""
    spec = inspect.getfullargspec(function)
    return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


_ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")
_REMOVED = [(np, _NUMPY_REMOVED), (inspect, {"getargspec": _getargspec})]


@contextlib.contextmanager
def old_numpy_names():
    """NumPy's (and inspect's) removed names, put back for the run only."""
    added = [(module, name) for module, names in _REMOVED for name in names if name not in module.__dict__]
    for module, name in added:
        setattr(module, name, dict(_REMOVED)[module][name])
    try:
        yield
    finally:
        for module, name in added:
            delattr(module, name)


def _first_line(text: str) -> str:
    """The message's first line; a heading that ends in ':' (a NetError) with the line after it."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else ""


def _reason(err) -> str:
    """The exception's own line, from a (type, value, traceback) triple."""
    kind, value, _ = err
    return f"{kind.__name__}: {_first_line(value)}"


class Recorder(unittest.TestResult):
    def __init__(self, file_name: str):
        super().__init__()
        self.file_name = file_name
        self.outcomes: dict[str, tuple[str, str]] = {}

    def _id(self, test) -> str:
        test_id = test.id()  # module.Class.method; subtests and class fixtures keep their own ids
        if test_id.startswith(TEST_PACKAGE + "."):
            test_id = test_id[len(TEST_PACKAGE) + 1:].partition(".")[2]
        return f"{self.file_name}::{test_id}"

    def addSuccess(self, test):
        self.outcomes.setdefault(self._id(test), ("passed", ""))

    def addFailure(self, test, err):
        self.outcomes[self._id(test)] = ("failed", _reason(err))

    def addError(self, test, err):
        self.outcomes[self._id(test)] = ("errored", _reason(err))

    def addSkip(self, test, reason):
        self.outcomes[self._id(test)] = ("skipped", _first_line(reason))

    def addExpectedFailure(self, test, err):
        self.outcomes[self._id(test)] = ("passed", "expected failure in Caffe2")

    def addUnexpectedSuccess(self, test):
        self.outcomes[self._id(test)] = ("failed", "unexpected success")

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self.addFailure(test, err) if issubclass(err[0], test.failureException) else self.addError(test, err)


def run_file(folder: Path, file_name: str) -> dict[str, tuple[str, str]]:
    """Outcome per test id of one file (the mapping must be installed)."""
    module_name = f"{TEST_PACKAGE}.{Path(file_name).stem}"
    try:
        module = importlib.import_module(module_name)
    except unittest.SkipTest as skip:
        return {f"{file_name}::import": ("skipped", _first_line(skip))}
    except Exception as error:  # noqa: BLE001 (what the file needs that pycaffe2 or this machine lacks)
        return {f"{file_name}::import": ("errored", f"{type(error).__name__}: {_first_line(error)}")}
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    recorder = Recorder(file_name)
    np.random.seed(0)  # the files draw from NumPy's global RNG: same draws whatever ran before
    random.seed(0)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the files print examples
        warnings.simplefilter("ignore", DeprecationWarning)  # 2020 code on today's libraries
        suite.run(recorder)
    return recorder.outcomes


@contextlib.contextmanager
def registries_restored():
    """Files register gradient makers for their own test ops (core_gradients_test's Direct,
    UseInput, ...): undone afterwards, so no later test sees them."""
    from pycaffe2.operators import load_kernels, registry
    load_kernels()  # loaded before the snapshot, so restoring never empties the tables
    tables = [registry.CPU_KERNELS, registry.CUDA_KERNELS, registry.GRADIENT_MAKERS]
    saved = [dict(table) for table in tables]
    try:
        yield
    finally:
        for table, before in zip(tables, saved):
            table.clear()
            table.update(before)


def run_files(folder: Path, file_names, examples: int = EXAMPLES, progress=None) -> dict[str, dict]:
    """file name -> {test id -> (outcome, reason)}, for each file in order."""
    results = {}
    with (caffe2_names(folder), cpu_only(), few_examples(examples), old_numpy_names(),
          registries_restored()):
        for file_name in file_names:
            results[file_name] = run_file(folder, file_name)
            if progress:
                progress(file_name, results[file_name])
    return results


def totals(outcomes: dict) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "errored": 0, "skipped": 0}
    for outcome, _ in outcomes.values():
        counts[outcome] += 1
    return counts


# --- the expectation file ----------------------------------------------------

EXPECTED_FAILURES = Path(__file__).with_name("expected_failures.yaml")
_MISSING_OP = re.compile(r"unknown op type '?([A-Za-z0-9_]+)'?")
_MISSING_MODULE = re.compile(r"(?:cannot import name '(\w+)' from '(caffe2\.[\w.]+)'|"
                             r"(caffe2\.[\w.]+): pycaffe2 has no such module|No module named '([\w.]+)')")


def categorize(reason: str) -> str:
    """A reason for the expectation file: a missing op or module by name, else the error's
    first line as a difference for a person to refine."""
    if found := _MISSING_OP.search(reason):
        return f"missing op {found.group(1)} (issue 16)"
    if found := _MISSING_MODULE.search(reason):
        name = (f"{found.group(2)}.{found.group(1)}" if found.group(1) else found.group(3) or found.group(4))
        return f"missing module {name}"
    return f"difference: {reason}"


def load_expected(path: Path = EXPECTED_FAILURES) -> dict[str, str]:
    import yaml
    return yaml.safe_load(path.read_text()) or {} if path.is_file() else {}


def failing(outcomes: dict) -> dict[str, str]:
    return {test_id: why for test_id, (outcome, why) in outcomes.items() if outcome in ("failed", "errored")}


def expectation_problems(file_name: str, outcomes: dict, expected: dict[str, str]) -> list[str]:
    """What keeps the file's run from matching the expectation file: new failures, and
    listed ones that no longer fail (passed, skipped or gone)."""
    listed = {test_id for test_id in expected if test_id.partition("::")[0] == file_name}
    fails = failing(outcomes)
    problems = [f"{test_id} {outcomes[test_id][0]} (not in {EXPECTED_FAILURES.name}): {why}"
                for test_id, why in sorted(fails.items()) if test_id not in listed]
    problems += [f"{test_id} is listed in {EXPECTED_FAILURES.name} ({expected[test_id]}) but "
                 f"{outcomes[test_id][0] if test_id in outcomes else 'no longer exists'}: remove the entry"
                 for test_id in sorted(listed - set(fails))]
    return problems


def test_files(folder: Path = OPERATOR_TESTS) -> list[str]:
    """Every .py file of the folder but its package files."""
    return sorted(p.name for p in folder.glob("*.py") if p.name not in ("__init__.py", "conftest.py"))
