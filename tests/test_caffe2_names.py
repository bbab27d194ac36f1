"""pycaffe2's Caffe2 front end has Caffe2's public Python names.

tests/data/caffe2_python_names.yaml lists the names of Caffe2's workspace, core
(with the Net, BlobReference, ExecutionStep and Plan classes), model_helper
(ModelHelper), brew, optimizer and data_parallel_model, taken from Caffe2's
sources (README there).
Each must exist here, or be excluded with a reason, or be listed as not written
yet (or as coming from another part of issue 15); an entry in those lists for a
name that exists, or that Caffe2 lacks, is stale and fails too, so the lists
stay honest.
"""
import importlib
from pathlib import Path

import pytest
import yaml

DATA = yaml.safe_load((Path(__file__).parent / "data" / "caffe2_python_names.yaml").read_text())
LISTS = ("excluded", "not_yet")


def owner(key: str):
    """The module or class that a names key ("core", "core.Net") stands for."""
    module, _, cls = key.partition(".")
    found = importlib.import_module(f"pycaffe2.{module}")
    return getattr(found, cls) if cls else found


def caffe2_names() -> list[str]:
    return [f"{key}.{name}" for key, names in DATA["names"].items() for name in names]


def present(full_name: str) -> bool:
    key, _, name = full_name.rpartition(".")
    return hasattr(owner(key), name)


@pytest.mark.parametrize("key", list(DATA["names"]))
def test_every_caffe2_name_is_here_or_listed(key):
    listed = set().union(*(DATA[section] or {} for section in LISTS))
    missing = [name for name in DATA["names"][key]
               if f"{key}.{name}" not in listed and not hasattr(owner(key), name)]
    assert not missing, f"{key}: Caffe2 names missing from pycaffe2 and not listed: {missing}"


@pytest.mark.parametrize("section", LISTS)
def test_lists_are_not_stale(section):
    names = set(caffe2_names())
    entries = DATA[section] or {}
    unknown = sorted(set(entries) - names)
    assert not unknown, f"{section}: not Caffe2 names: {unknown}"
    there = sorted(name for name in entries if present(name))
    assert not there, f"{section}: these exist now, take them off the list: {there}"


def test_every_exclusion_has_a_reason():
    vague = [name for name, reason in DATA["excluded"].items()
             if not isinstance(reason, str) or len(reason) < 20 or "not implemented" in reason]
    assert not vague, f"exclusions need a real reason: {vague}"
    assert all(reason == "not implemented yet" or reason.startswith("not implemented yet:")
               for reason in DATA["not_yet"].values())


def test_lists_do_not_overlap():
    seen = {}
    for section in LISTS:
        for name in DATA[section] or {}:
            assert name not in seen, f"{name} is in both {seen[name]} and {section}"
            seen[name] = section
