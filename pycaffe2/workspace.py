"""Caffe2's `workspace` module: the same functions over a current Workspace.

    from pycaffe2 import workspace
    workspace.FeedBlob("X", np.ones((2, 3), np.float32))
    workspace.RunNetOnce(net)
    workspace.FetchBlob("Y")

The only state is the set of named workspaces and which one is current;
`pycaffe2.executor.Workspace` can be used directly instead, several side by side.
"""
from __future__ import annotations

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace

_workspaces: dict[str, Workspace] = {"default": Workspace("default")}
_current = "default"


def C() -> Workspace:
    """The current Workspace object."""
    return _workspaces[_current]


def CurrentWorkspace() -> str:
    return _current


def Workspaces() -> list[str]:
    return sorted(_workspaces)


def SwitchWorkspace(name: str, create_if_missing: bool = False) -> None:
    global _current
    if name not in _workspaces:
        if not create_if_missing:
            raise PyCaffe2Error(f"Workspace {name} does not exist (pass create_if_missing=True)")
        _workspaces[name] = Workspace(name)
    _current = name


def ResetWorkspace(root_folder=None) -> bool:
    """Replace the current workspace by an empty one: all blobs and nets go."""
    _workspaces[_current] = Workspace(_current)
    return True


def FeedBlob(name, arr, device_option=None) -> bool:
    return C().FeedBlob(str(name), arr, device_option)


def FetchBlob(name):
    return C().FetchBlob(str(name))


def FetchBlobs(names) -> list:
    return C().FetchBlobs([str(n) for n in names])


def HasBlob(name) -> bool:
    return C().HasBlob(str(name))


def CreateBlob(name) -> bool:
    return C().CreateBlob(str(name))


def Blobs() -> list[str]:
    return C().Blobs()


def CreateNet(net, overwrite: bool = False, input_blobs=None) -> bool:
    return C().CreateNet(_proto(net), overwrite, input_blobs)


def RunNet(name, num_iter: int = 1, allow_fail: bool = False) -> bool:
    return C().RunNet(name.Name() if hasattr(name, "Name") else name, num_iter, allow_fail)


def RunNetOnce(net) -> bool:
    return C().RunNetOnce(_proto(net))


def RunPlan(plan_or_step) -> bool:
    return C().RunPlan(_proto(plan_or_step))


def RunOperatorOnce(op) -> bool:
    return C().RunOperatorOnce(_proto(op))


def RunOperatorsOnce(ops) -> bool:
    return C().RunOperatorsOnce([_proto(op) for op in ops])


def _proto(obj):
    """Accept core.Net-like objects (with .Proto()) as well as raw protos."""
    return obj.Proto() if hasattr(obj, "Proto") else obj
