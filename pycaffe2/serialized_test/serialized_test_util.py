"""Caffe2's `serialized_test_util` names: SerializedTestCase and `given`.

Caffe2 stored each test's first example's outputs and compared later runs with
them. pycaffe2 keeps no stored outputs: `given` is hypothesis.given, and
SerializedTestCase is HypothesisTestCase, so Caffe2's serialized op tests run
as plain property tests (needs hypothesis: `pip install hypothesis`).
"""
from __future__ import annotations

import os
import threading

from hypothesis import given as _hypothesis_given

from pycaffe2.hypothesis_test_util import HypothesisTestCase

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")  # named for Caffe2's scripts; never read
# Caffe2's pytest options (generate / compare outputs) land here and change nothing.
_output_context = threading.local()


def given(*args, **kwargs):
    """hypothesis.given; Caffe2's variant also saved or compared stored outputs."""
    return _hypothesis_given(*args, **kwargs)


def testWithArgs():
    """Caffe2's command-line entry for the serialized tests; pycaffe2 has no options to read."""


class SerializedTestCase(HypothesisTestCase):
    """A HypothesisTestCase; Caffe2's version also stored the first example's outputs."""
