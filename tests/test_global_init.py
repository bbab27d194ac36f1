"""core.GlobalInit / workspace.GlobalInit: Caffe2's flags, the log level, unknown flags."""
import logging

import pytest

from pycaffe2 import core, workspace
from pycaffe2.errors import PyCaffe2Error


@pytest.fixture(autouse=True)
def restore_level():
    log = logging.getLogger("pycaffe2")
    level = log.level
    yield
    log.setLevel(level)


@pytest.mark.parametrize("value, level", [("0", logging.INFO), ("1", logging.WARNING), ("2", logging.ERROR),
                                          ("3", logging.CRITICAL), ("7", logging.CRITICAL), ("-1", logging.DEBUG)])
def test_log_level(value, level):
    assert core.GlobalInit(["caffe2", f"--caffe2_log_level={value}"]) is True
    assert logging.getLogger("pycaffe2").level == level


def test_workspace_alias_and_quiet_cpp_flags(recwarn):
    assert workspace.GlobalInit(["caffe2", "--caffe2_log_level=2", "--caffe2_omp_num_threads=4"])
    assert logging.getLogger("pycaffe2").level == logging.ERROR
    assert len(recwarn) == 0
    assert core.GlobalInit(["ifbpy"]) is True


def test_unknown_flags_warn():
    with pytest.warns(UserWarning, match="unknown flag --caffe2_no_such_flag"):
        assert core.GlobalInit(["caffe2", "--caffe2_no_such_flag=1"])
    with pytest.warns(UserWarning, match="not a --flag=value"):
        core.GlobalInit(["caffe2", "positional"])


def test_bad_log_level_is_clear():
    with pytest.raises(PyCaffe2Error, match="caffe2_log_level needs an integer, got 'loud'"):
        core.GlobalInit(["caffe2", "--caffe2_log_level=loud"])
