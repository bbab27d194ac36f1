"""Caffe2's module path for the predictor constants (`from caffe2.python.predictor_constants
import predictor_constants`); they live in pycaffe2.predictor.predictor_constants."""
from pycaffe2.predictor.predictor_constants import predictor_constants

__all__ = ["predictor_constants"]
