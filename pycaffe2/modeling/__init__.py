"""Caffe2's `modeling` package: how a model's parameters are made (initializers) and
described (parameter_info). model_helper and brew build on it and re-export its names."""
