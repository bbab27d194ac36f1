"""Caffe2's serialized_test package: only serialized_test_util, for Caffe2-style op tests."""
