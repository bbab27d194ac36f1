"""The executor: workspaces, nets compiled once at CreateNet, simple and dag runners."""
from pycaffe2.executor.net import NetError, OpFailure, compile_net
from pycaffe2.executor.threads import num_threads
from pycaffe2.executor.workspace import Workspace

__all__ = ["NetError", "OpFailure", "Workspace", "compile_net", "num_threads"]
