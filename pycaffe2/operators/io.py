"""Data input, checkpoint and print kernels: CreateDB, TensorProtosDBInput, Save,
Load, DBExists, Checkpoint (over the DBs of pycaffe2.db) and Print. Save and Load are
kernel factories: they check their args and names once, when the net is
created (where Caffe2's constructors did), and return the function to run.
A DB reader is shared state: reading advances it, as in Caffe2. Writes are
side effects, done atomically by pycaffe2.db. Relative paths are taken under the
workspace's root folder as Caffe2 took them (`root_folder`, given by the executor;
CreateDB's path is used as given), unconfined, as in Caffe2; the command line checks
them before a net runs (pycaffe2.run.confine).
"""
from __future__ import annotations

import os

import numpy as np

from pycaffe2.db import (
    BlobAssembler,
    DBError,
    DBReader,
    Mode,
    blob_name,
    check_db_type,
    create_db,
    parse_tensor_protos,
    record_tensor,
    save_blobs,
)
from pycaffe2.operators.registry import register_cpu
from pycaffe2.paths import under_root

LOG_EXTENSIONS = {"Print": ".log", "Summarize": ".summary"}  # to_file=1 writes <input><extension>


def full_path(db: str, absolute_path: bool, root_folder: str = ".") -> str:
    """Caffe2's `root folder + "/" + db` (absolute_path=0), or `db` as given."""
    if absolute_path:
        return db
    if os.path.isabs(db):
        raise ValueError(f"db '{db}' is an absolute path: pass absolute_path=1 "
                         "(with absolute_path=0 Caffe2 reads it under the workspace root folder)")
    return under_root(root_folder, db)


def log_file(op_type: str, input_name: str, root_folder: str = ".") -> str:
    """The file Print or Summarize writes with to_file=1: `<input><extension>` under the
    root folder; Summarize spells the name scope's '/' as '#', as Caffe2's does."""
    name = input_name.replace("/", "#") if op_type == "Summarize" else input_name
    return under_root(root_folder, name + LOG_EXTENSIONS[op_type])


def _strip(name: str, strip_prefix: str) -> str:
    """The part of `name` after the first match of strip_prefix (all of it without a match)."""
    at = name.find(strip_prefix) if strip_prefix else -1
    return name if at < 0 else name[at + len(strip_prefix):]


def _reader(value) -> DBReader:
    if not isinstance(value, DBReader):
        raise TypeError(f"input must be a DB reader made by CreateDB, got {type(value).__name__}")
    return value


@register_cpu("CreateDB")
def create_db_reader(*, db, db_type, num_shards, shard_id):
    return DBReader(db_type, db, num_shards, shard_id)


@register_cpu("TensorProtosDBInput")
def tensor_protos_db_input(reader, *, batch_size, num_outputs):
    reader = _reader(reader)
    records = reader.records()
    if records is None:  # read record by record
        batch = [_record(*reader.read(), reader.source, num_outputs) for _ in range(batch_size or 1)]
        return batch[0] if batch_size == 0 else _stack(batch, reader.source)
    decoded = reader.derived.get(("TensorProtos", num_outputs))
    if decoded is None:
        decoded = reader.derived[("TensorProtos", num_outputs)] = _Decoded(records, reader.source, num_outputs)
    taken = reader.take(batch_size or 1, decoded.faulty)
    if taken[-1] in decoded.faulty:  # decoded again to raise its fault, at the read that reaches it
        _record(*records[taken[-1]], reader.source, num_outputs)
    if batch_size == 0:
        return tuple(part.copy() for part in decoded.tensors[taken[0]])
    if decoded.stacked is None:
        return _stack([decoded.tensors[i] for i in taken], reader.source)
    return tuple(np.take(stacked, taken, axis=0) for stacked in decoded.stacked)


class _Decoded:
    """What TensorProtosDBInput decodes once from a reader's kept records: each record's
    tensors (None where a record is faulty), and when every record's tensor i has one
    shape and dtype, tensor i of all records stacked, so a batch is one np.take."""

    def __init__(self, records: list, source: str, num_outputs: int):
        self.tensors, faulty = [], set()
        for index, (key, value) in enumerate(records):
            try:
                self.tensors.append(_record(key, value, source, num_outputs))
            except (DBError, ValueError):
                self.tensors.append(None)
                faulty.add(index)
        self.faulty = frozenset(faulty)
        kinds = {tuple((part.shape, part.dtype) for part in parts) for parts in self.tensors if parts}
        self.stacked = None
        if not faulty and len(kinds) == 1:
            self.stacked = [np.stack([parts[i] for parts in self.tensors]) for i in range(num_outputs)]


def _stack(batch: list, source: str) -> tuple:
    """Tensor i of each record of a batch stacked into output i; they must agree in shape and dtype."""
    outputs = []
    for i in range(len(batch[0])):
        parts = [record[i] for record in batch]
        kinds = {(part.shape, part.dtype) for part in parts}
        if len(kinds) > 1:
            described = ", ".join(f"{list(s)} {d}" for s, d in sorted(kinds, key=str))
            raise ValueError(f"tensor {i} differs between the records of a "
                             f"batch ({described}) in {source}")
        outputs.append(np.stack(parts))
    return tuple(outputs)


def _record(key: str, value: bytes, source: str, num_outputs: int) -> tuple:
    protos = parse_tensor_protos(value, f"{source}: record '{key}'")
    if len(protos.protos) != num_outputs:
        raise ValueError(f"record '{key}' of {source} holds "
                         f"{len(protos.protos)} tensors, but the op has {num_outputs} outputs")
    return tuple(record_tensor(tensor, source, key) for tensor in protos.protos)


def save_names(input_names, strip_prefix, blob_name_overrides) -> list[str]:
    """The key name of each input: overrides, or the input names less strip_prefix."""
    if blob_name_overrides:
        if len(blob_name_overrides) != len(input_names):
            raise ValueError(f"{len(blob_name_overrides)} blob_name_overrides for "
                             f"{len(input_names)} inputs")
        if strip_prefix:
            raise ValueError("strip_prefix and blob_name_overrides are mutually exclusive")
        names = list(blob_name_overrides)
    else:
        names = [_strip(name, strip_prefix) for name in input_names]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"blob name(s) {', '.join(duplicated)} would be saved twice")
    return names


def write_blobs(path: str, db_type: str, names, values, chunk_size) -> None:
    save_blobs(path, dict(zip(names, values)), db_type, chunk_size)


@register_cpu("Save", specialize=True)
def save(*, db, db_type, absolute_path, strip_prefix, blob_name_overrides, chunk_size, input_names,
         root_folder):
    names = save_names(input_names, strip_prefix, blob_name_overrides)
    check_db_type(db_type)
    path = full_path(db, absolute_path, root_folder)

    def run(*values):
        write_blobs(path, db_type, names, values, chunk_size)
        return ()
    return run


PRINT_LIMIT = 1000  # values Print shows when `limit` is 0 (Caffe2's TensorPrinter default)


def print_text(name: str, x, limit: int) -> str:
    x = np.asarray(x)
    values = x.reshape(-1)[:limit or PRINT_LIMIT]
    shown = ",".join(str(v) for v in values.tolist())
    return f"Tensor {name} of type {x.dtype}. Dims: ({','.join(map(str, x.shape))},): {shown}"


@register_cpu("Print", specialize=True)
def print_tensor(*, to_file, limit, every_n, input_names, root_folder):
    runs = [0]
    path = log_file("Print", input_names[0], root_folder)

    def run(x):
        runs[0] += 1
        if (runs[0] - 1) % every_n == 0:
            text = print_text(input_names[0], x, limit)
            if to_file:
                with open(path, "a") as log:
                    log.write(text + "\n")
            else:
                print(text)
        return ()
    return run


@register_cpu("Checkpoint", specialize=True)
def checkpoint(*, db, db_type, every, absolute_path, strip_prefix, blob_name_overrides, chunk_size,
               input_names, root_folder):
    names = save_names(input_names, strip_prefix, blob_name_overrides)
    check_db_type(db_type)

    def run(counter, *values):
        if not isinstance(counter, np.ndarray) or counter.size != 1 or counter.dtype.kind not in "iu":
            raise ValueError("input 0 must be a one-element integer counter")
        iteration = int(counter.reshape(-1)[0])
        if iteration % every == 0:
            pattern = db % iteration if "%" in db else db
            path = full_path(pattern, absolute_path, root_folder)
            write_blobs(path, db_type, names, (counter,) + values, chunk_size)
        return ()
    return run


@register_cpu("DBExists")
def db_exists(*, db_name, db_type, absolute_path, root_folder):
    path = full_path(db_name, absolute_path, root_folder)
    try:
        create_db(db_type, path, Mode.read).close()
    except DBError:
        return np.array(False)
    return np.array(True)


@register_cpu("Load", specialize=True)
def load(*, db, dbs, db_type, absolute_path, add_prefix, strip_prefix, source_blob_names, load_all,
         keep_device, allow_incomplete, input_names, output_names, root_folder):
    sources = _load_sources(input_names, db, dbs, db_type, absolute_path, root_folder)
    if source_blob_names and (len(source_blob_names) != len(output_names) or strip_prefix or load_all):
        raise ValueError("source_blob_names needs one name per output, and neither "
                         "strip_prefix nor load_all")
    every_blob = load_all and not output_names  # Caffe2's output-less form: the file decides
    wanted = list(source_blob_names or output_names)
    duplicated = sorted({n for n in wanted if wanted.count(n) > 1})
    if duplicated:
        raise ValueError(f"source blob name(s) {', '.join(duplicated)} given twice")

    def name_of(key: str) -> str:
        return add_prefix + _strip(blob_name(key), strip_prefix)

    def run(*readers):
        found = _read_blobs([_reader(r) for r in readers] or sources, db_type, name_of,
                            None if every_blob else set(wanted), load_all)
        if every_blob:
            return found  # written by name: see executor.net.Step
        missing = [name for name in wanted if name not in found]
        if missing:
            where = ", ".join(r.source for r in readers) if readers else ", ".join(sources)
            raise DBError(f"expected to load {len(wanted)} blobs, got {len(wanted) - len(missing)} "
                          f"only: {', '.join(missing)} not in {where}")
        return tuple(found[name] for name in wanted)
    return run


def _load_sources(input_names, db, dbs, db_type, absolute_path, root_folder) -> list[str]:
    if input_names:
        return []
    if not db_type:
        raise ValueError("must specify a db_type")
    paths = list(dbs) if dbs else [db]
    if not all(paths):
        raise ValueError("must specify a db name (db or dbs)")
    if len(set(paths)) != len(paths):
        raise ValueError(f"duplicated db name in {paths}")
    check_db_type(db_type)
    return [full_path(path, absolute_path, root_folder) for path in paths]


def _read_blobs(sources, db_type, name_of, wanted: set | None, load_all) -> dict:
    """{name: value} of the wanted blobs (all when `wanted` is None) in the DBs (paths or readers)."""
    found, seen_in = {}, {}
    for index, source in enumerate(sources):
        if isinstance(source, DBReader):  # its open DB: a LevelDB folder opens once per process
            path, db, owned = source.source, source.db, False
        else:
            path, db, owned = source, create_db(db_type, source, Mode.read), True
        try:
            assembler, extra = BlobAssembler(path, getattr(db, "size", None)), []
            cursor = db.new_cursor()
            while cursor.valid():
                key = cursor.key()
                name = name_of(key)
                if wanted is not None and name not in wanted:
                    extra.append(name)
                elif seen_in.setdefault(name, index) != index:
                    raise DBError(f"blob '{name}' is in both {sources[seen_in[name]]} and {path}")
                else:
                    assembler.add(name, key, cursor.value())  # values of skipped blobs are not read
                cursor.next()
        finally:
            if owned:
                db.close()
        if load_all and extra:
            raise DBError(f"with load_all=1 every blob must be an output; {path} also holds "
                          f"{', '.join(sorted(set(extra)))}")
        found.update(assembler.finish())
    return found
