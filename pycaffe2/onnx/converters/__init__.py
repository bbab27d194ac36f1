"""The converters, one module per area of ONNX ops; importing this package
imports every module in it, which registers their converters."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
