"""Caffe2's caffe2.python.rnn package: helpers its recurrent tests share."""
