"""The old name of `pycaffe2.run`, kept for scripts: `from pycaffe2.runner import run_model` still works."""
from pycaffe2.run import *
from pycaffe2.run import __all__  # noqa: F401
