"""pycaffe2: a Caffe2-style declarative net executor.

Nets are data (Caffe2 NetDefs, read from .pb, .pbtxt, .yaml or .json), checked
against declarative operator schemas (pycaffe2/schema/ops/*.yaml).
"""
__version__ = "0.1.0"
