"""Caffe2's `predictor` package: exporting a trained net for inference and loading it back.

- `predictor_exporter`: a net with its parameters, inputs and outputs (PredictorExportMeta)
  saved to one db, the MetaNetDef under Caffe2's key "!!META_NET_DEF" beside the
  parameters, and loaded back ready to run (prepare_prediction_net).
- `mobile_exporter.Export`: the (init_net, predict_net) pair of the model zoo.
- `predictor.Predictor`: runs such a pair in a workspace of its own (workspace.Predictor).
"""
