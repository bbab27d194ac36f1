"""Caffe2's predictor constants: one PredictorConsts message whose fields all hold
their defaults ("!!META_NET_DEF", "PREDICT_NET_TYPE", ...), read as attributes."""
from pycaffe2.proto.metanet_pb2 import PredictorConsts

predictor_constants = PredictorConsts()
