"""CTC decoder kernels (NumPy) on the CPU: CTCGreedyDecoder and
CTCBeamSearchDecoder. Shape checks are the schema's (schema/inference/ctc.py).

The beam search names every prefix that enters a beam by an integer id and
every candidate by the key parent_id * C + class (the empty prefix: -1), so a
step's candidates (each beam prefix, and each beam prefix extended by each
unpruned class) are NumPy arrays; Python loops only over time steps and
sequences. Probabilities are summed in float64.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import TensorInfo
from pycaffe2.schema.inference import ctc as checks


def _lengths(scores, seq_len) -> np.ndarray:
    """Each sequence's length: SEQ_LEN, checked, or T."""
    checks.scores_shape(TensorInfo(scores.shape, scores.dtype.name))
    t, b, _ = scores.shape
    if seq_len is None:
        return np.full(b, t, np.int64)
    checks.seq_len_shape(TensorInfo(seq_len.shape, seq_len.dtype.name), b)
    checks.seq_len_values(seq_len, t)
    return seq_len.astype(np.int64)


@register_cpu("CTCGreedyDecoder")
def ctc_greedy_decoder(scores, seq_len=None, *, merge_repeated):
    lengths = _lengths(scores, seq_len)
    t, b, c = scores.shape
    if c == 0:
        return np.zeros(b, np.int32), np.zeros(0, np.int32)
    best = np.argmax(scores, axis=2).T  # [B, T]
    previous = np.concatenate([np.zeros((b, 1), best.dtype), best[:, :-1]], axis=1)
    keep = (best != 0) & (np.arange(t)[None, :] < lengths[:, None])
    if merge_repeated:
        keep &= best != previous
    return keep.sum(axis=1).astype(np.int32), best[keep].astype(np.int32)


class _Prefixes:
    """The prefixes that have been in a beam: id -> (parent id, class); id 0 is empty."""

    def __init__(self, classes: int):
        self.classes, self.parent, self.last, self.ids = classes, [-1], [-1], {-1: 0}

    def id_of(self, key: int) -> int:
        if key not in self.ids:
            self.ids[key] = len(self.parent)
            self.parent.append(key // self.classes)
            self.last.append(key % self.classes)
        return self.ids[key]

    def labels(self, ident: int) -> list:
        out = []
        while ident:
            out.append(self.last[ident])
            ident = self.parent[ident]
        return out[::-1]


def _revived(ext_keys, in_beam, everything):
    """(Pb, Pnb) at the previous step of each extension not in the beam (0 where it
    was no candidate then): a prefix that fell out of the beam comes back with them."""
    old_keys, old_pb, old_pnb = everything
    if old_keys.size == 0:
        return np.zeros(ext_keys.size), np.zeros(ext_keys.size)
    where = np.minimum(np.searchsorted(old_keys, ext_keys), old_keys.size - 1)
    found = ~in_beam & (old_keys[where] == ext_keys)
    return np.where(found, old_pb[where], 0.0), np.where(found, old_pnb[where], 0.0)


def _step(x, beam, everything, threshold):
    """One time step: the candidates (keys, Pb, Pnb) grown from the beam (ids, keys,
    last classes, Pb, Pnb) by the step's probabilities x [C]; `everything` holds the
    previous step's candidates (sorted keys, Pb, Pnb)."""
    ids, keys, last, pb, pnb = beam
    tried = np.flatnonzero(x > threshold)
    tried = np.arange(x.size) if tried.size == 0 else tried
    classes = tried[tried != 0]
    # A prefix stays by a blank, or by repeating its last class (which merges).
    stay_pb = x[0] * (pb + pnb) if tried[0] == 0 else np.zeros_like(pb)
    stay_pnb = np.where(np.isin(last, classes), x[np.maximum(last, 0)] * pnb, 0.0)
    # It grows by any other class, and by its last class only after a blank.
    ext_keys = (ids[:, None] * x.size + classes[None, :]).reshape(-1)
    same = classes[None, :] == last[:, None]
    ext_pnb = (x[classes][None, :] * (pb[:, None] + np.where(same, 0.0, pnb[:, None]))).reshape(-1)
    in_beam = np.isin(ext_keys, keys)
    old_pb, old_pnb = _revived(ext_keys, in_beam, everything)
    ext_pb = x[0] * (old_pb + old_pnb)
    ext_pnb += np.tile(x[classes], ids.size) * old_pnb
    # An extension that is itself in the beam adds to that prefix's entry.
    order = np.argsort(keys)
    into = order[np.searchsorted(keys[order], ext_keys[in_beam])]
    np.add.at(stay_pb, into, ext_pb[in_beam])
    np.add.at(stay_pnb, into, ext_pnb[in_beam])
    all_keys = np.concatenate([keys, ext_keys[~in_beam]])
    all_pb, all_pnb = np.concatenate([stay_pb, ext_pb[~in_beam]]), np.concatenate([stay_pnb, ext_pnb[~in_beam]])
    alive = all_pb + all_pnb > 0
    return all_keys[alive], all_pb[alive], all_pnb[alive]


def _decode(probabilities, beam_width, num_candidates, threshold) -> list:
    """(labels, probability) of the best candidates of one sequence [T, C]."""
    classes = probabilities.shape[1]
    prefixes = _Prefixes(classes)
    keys, pb, pnb = np.array([-1]), np.ones(1), np.zeros(1)
    if probabilities.shape[0] == 0:
        return []
    for x in probabilities:
        top = np.argsort(-(pb + pnb), kind="stable")[:beam_width]
        ids = np.array([prefixes.id_of(int(k)) for k in keys[top]], np.int64)
        last = np.array([prefixes.last[i] for i in ids], np.int64)
        order = np.argsort(keys)
        everything = (keys[order], pb[order], pnb[order])
        keys, pb, pnb = _step(x, (ids, keys[top], last, pb[top], pnb[top]), everything, threshold)
    best = np.argsort(-(pb + pnb), kind="stable")[:num_candidates]
    return [(prefixes.labels(prefixes.id_of(int(keys[i]))), pb[i] + pnb[i]) for i in best]


@register_cpu("CTCBeamSearchDecoder")
def ctc_beam_search_decoder(scores, seq_len=None, *, beam_width, prune_threshold, num_candidates, num_outputs):
    lengths = _lengths(scores, seq_len)
    b = scores.shape[1]
    out_len = np.zeros(b * num_candidates, np.int32)
    out_prob = np.zeros(b * num_candidates, np.float32)
    values = []
    for i in range(b):
        if scores.shape[2] == 0:
            continue
        found = _decode(scores[:lengths[i], i].astype(np.float64), beam_width, num_candidates, prune_threshold)
        for index, (labels, probability) in enumerate(found):
            out_len[i * num_candidates + index] = len(labels)
            out_prob[i * num_candidates + index] = probability
            values.extend(labels)
    outputs = (out_len, np.array(values, np.int32), out_prob)
    return outputs[:num_outputs]
