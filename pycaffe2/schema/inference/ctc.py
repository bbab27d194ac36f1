"""Inference rule of the ctc family (CTCGreedyDecoder, CTCBeamSearchDecoder),
and the checks its kernels share with it: INPUTS is [T, B, C] float, SEQ_LEN
int32 [B] with values in [0, T]. OUTPUT_LEN has one entry per sequence (per
candidate for the beam search); VALUES' length depends on the data.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def scores_shape(info) -> None:
    if len(info.shape) != 3:
        raise ShapeError(f"INPUTS must be 3-D [T, B, C], got {list(info.shape)}")
    if not info.dtype.startswith("float"):
        raise ShapeError(f"INPUTS must be float, got {info.dtype}")


def seq_len_shape(info, batch: int | None) -> None:
    if info.dtype != "int32":
        raise ShapeError(f"SEQ_LEN must be int32, got {info.dtype}")
    if len(info.shape) != 1 or (batch is not None and info.shape[0] != batch):
        raise ShapeError(f"SEQ_LEN is {list(info.shape)} but INPUTS has B={batch} sequences: "
                         f"SEQ_LEN must be [{batch}]")


def seq_len_values(seq_len, max_time: int) -> None:
    """Every length must be in [0, T]."""
    bad = seq_len[(seq_len < 0) | (seq_len > max_time)]
    if bad.size:
        raise ShapeError(f"SEQ_LEN values must be in [0, {max_time}] (T), got {int(bad[0])}")


@rule("ctc_decoder")
def decoder(op: OpView, inputs: list) -> list:
    scores, seq_len = (inputs + [None])[:2]
    batch = None
    if scores is not None:
        scores_shape(scores)
        batch = scores.shape[1]
    if seq_len is not None:
        seq_len_shape(seq_len, batch)
    lengths = None if batch is None else TensorInfo((batch * op.arg("num_candidates", 1),), "int32")
    return [lengths, None, None if batch is None else lengths._replace(dtype="float32")][:op.n_outputs]
