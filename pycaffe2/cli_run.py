"""`pycaffe2 run`: a model, a plan or an .onnx file run, its results reported.

cli.py builds the parser; this module holds what the command does, so the
command line's largest command sits apart from the others.
"""
from __future__ import annotations

import sys
import time

from pycaffe2.errors import PyCaffe2Error

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def _is_onnx(path) -> bool:
    return str(path).lower().endswith(".onnx")


def cmd_run(args) -> int:
    from pycaffe2.executor import num_threads
    with num_threads(args.threads):
        return _run(args)


def _run(args) -> int:
    from pycaffe2 import netfile
    from pycaffe2.run import ModelRunner, RunError, check_iters, parse_feed
    from pycaffe2.run.confine import default_roots
    args.roots = args.data_root or default_roots(args.file)
    if _is_onnx(args.file):
        return _run_onnx(args)
    model = netfile.load_model(args.file, allow_outside_paths=args.allow_outside_paths) \
        if args.init is None else args.file
    if isinstance(model, netfile.Model) and model.plan is not None:
        return _run_plan(args, model)
    if args.save_every or args.checkpoint or args.resume:
        raise RunError("--save-every, --checkpoint and --resume apply to plans; this model has none")
    if args.workers is not None or args.scheduler is not None or args.batch_size is not None:
        return _run_batches(args, model)
    args.iters = 1 if args.iters is None else args.iters
    check_iters(args.iters)
    feeds = dict(parse_feed(spec) for spec in args.feed)
    out_channels = dict(_count_spec(spec) for spec in args.out_channels)
    model_runner = ModelRunner(model, init=args.init, feeds=feeds,
                               random_init=args.random_init, out_channels=out_channels,
                               seed=args.seed, device=args.device, data_roots=args.roots,
                               allow_outside_paths=args.allow_outside_paths,
                               free_blobs=not args.keep_all, keep=args.fetch or (),
                               optimize=args.optimize, workers=args.dag_workers)
    _note_cpu_override(args, model_runner.moved_to_cpu)
    for name, value in model_runner.quantized_feeds.items():
        if not args.quiet:
            print(f"note: fed {name} quantized for the Int8 op reading it: scale {value.scale:.6g}, "
                  f"zero_point {value.zero_point}", file=sys.stderr)
    seconds = model_runner.run(args.iters)
    results = model_runner.fetch(args.fetch)
    if not args.quiet:
        print(f"ran {model_runner.predict_net.name} {args.iters} time(s): "
              f"{seconds * 1e3:.3f} ms per run", file=sys.stderr)
    return _report_results(args, results)


def _run_batches(args, model) -> int:
    """--workers, --scheduler or --batch-size: the feeds scored in batches of rows, across
    Dask workers, or (--batch-size alone) one batch after another in this process."""
    from pycaffe2.distributed.batches import check_batch_size
    from pycaffe2.run import RunError
    if args.iters not in (None, 1):
        raise RunError("--iters repeats a whole run; in batches every row is scored once: drop --iters")
    if args.keep_all:
        raise RunError("--keep-all keeps blobs inside each batch's run, and only fetched blobs come back "
                       "from batches: name the blobs with --fetch")
    if not args.feed:
        raise RunError("--workers, --scheduler and --batch-size split the feeds into batches of rows: "
                       "give them with --feed NAME=PATH.npy")
    check_batch_size(args.batch_size)
    feeds = dict(_batch_feed(spec) for spec in args.feed)
    options = {"init": args.init, "random_init": args.random_init, "seed": args.seed,
               "out_channels": dict(_count_spec(spec) for spec in args.out_channels),
               "device": args.device, "optimize": args.optimize, "dag_workers": args.dag_workers,
               "data_roots": args.roots, "allow_outside_paths": args.allow_outside_paths}
    scored: dict = {}  # batch index -> (rows, where)

    def on_batch(index, start, stop, where):
        scored[index] = (stop - start, where)

    start = time.perf_counter()
    if args.workers is None and args.scheduler is None:
        from pycaffe2.distributed.scoring import predict_in_process
        results = predict_in_process(model, feeds, args.fetch, args.batch_size, on_batch=on_batch, **options)
    else:
        from pycaffe2.distributed import predict
        results = predict(model, feeds, args.fetch, batch_size=args.batch_size, workers=args.workers,
                          scheduler=args.scheduler, on_batch=on_batch, on_event=_stderr_line, **options)
    seconds = time.perf_counter() - start
    if not args.quiet:
        rows = sum(count for count, _ in scored.values())
        workers = len({where for _, where in scored.values()})
        print(f"scored {rows} rows in {len(scored)} batches of {scored[0][0]} rows on {workers} "
              f"worker(s): {rows / seconds:.1f} rows/s ({seconds:.2f} s, startup included)", file=sys.stderr)
    return _report_results(args, results)


def _batch_feed(spec: str):
    """A --feed for batches: an .npy file memory-mapped (a batch reads only its rows),
    an .npz member read as --feed reads it."""
    from pycaffe2.distributed.batches import open_npy_rows
    from pycaffe2.run import parse_feed
    name, sep, path = spec.partition("=")
    if sep and name and path.lower().endswith(".npy"):
        return name, open_npy_rows(name, path)
    return parse_feed(spec)


def _stderr_line(line: str) -> None:
    print(f"pycaffe2 run: {line}", file=sys.stderr)


def _report_results(args, results: dict) -> int:
    """The fetched blobs saved to --out, or summarized on stdout."""
    if args.out:
        _save_npz(args.out, results)
        if not args.quiet:
            print(f"saved {len(results)} blob(s) to {args.out}", file=sys.stderr)
    elif not args.quiet:
        for name, value in results.items():
            print(summarize(name, value))
    return EXIT_OK


def _run_onnx(args) -> int:
    """An .onnx model through pycaffe2.onnx.backend: feeds in, the graph's outputs out."""
    from pycaffe2.run import check_iters, onnx_files, parse_feed
    onnx_files.refuse_run_flags(args)
    args.iters = 1 if args.iters is None else args.iters
    check_iters(args.iters)
    feeds = dict(parse_feed(spec) for spec in args.feed)
    results, seconds = onnx_files.run_onnx(args.file, feeds, args.iters)
    if not args.quiet:
        print(f"ran {args.file} {args.iters} time(s): {seconds * 1e3:.3f} ms per run", file=sys.stderr)
    return _report_results(args, results)


def _run_plan(args, model) -> int:
    """A model file with a plan: run it with progress, Ctrl-C and checkpoints."""
    from pycaffe2.run import PlanRun, RunError, check_iters
    if args.feed or args.random_init or args.out_channels:
        raise RunError("--feed, --random-init and --out-channels apply to init/predict models, "
                       "not to plans: a plan's init step makes its blobs")
    if args.iters is not None:
        check_iters(args.iters)
    options = {"iters": args.iters, "quiet": args.quiet, "checkpoint": args.checkpoint,
               "save_every": args.save_every, "resume": args.resume, "seed": args.seed, "device": args.device,
               "data_roots": args.roots}
    if args.workers is None and args.scheduler is None:
        return _plan_finished(args, model, PlanRun(model, **options))
    if args.batch_size is not None:
        raise RunError("--batch-size applies to batch inference; a plan's batch is its reader's batch_size, "
                       "split over the workers")
    from pycaffe2.distributed import workers_client
    from pycaffe2.distributed.plan_run import DistributedPlanRun
    from pycaffe2.errors import WorkerLost
    with workers_client(args.workers, args.scheduler) as client:
        plan_run = DistributedPlanRun(model, client=client, **options)
        try:
            return _plan_finished(args, model, plan_run)
        except WorkerLost as exc:
            raise WorkerLost(f"{exc}; {_resume_hint(args, plan_run)}") from None


def _plan_finished(args, model, plan_run) -> int:
    """Run the plan and report how it ended."""
    _note_cpu_override(args, plan_run.moved_to_cpu)
    start = time.perf_counter()
    results = plan_run.run()
    if plan_run.interrupted:
        print(f"pycaffe2 run: {plan_run.stopped}", file=sys.stderr)
        print(f"pycaffe2 run: {_resume_hint(args, plan_run)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.fetch:
        results = {name: plan_run.workspace.FetchBlob(name) for name in args.fetch}
    if not args.quiet:
        where = f" on {len(plan_run.workers)} workers" if hasattr(plan_run, "workers") else ""
        print(f"plan {model.plan.name or '(unnamed)'} ran{where} in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    if args.out:
        _save_npz(args.out, results)
    elif args.fetch:
        for name, value in results.items():
            print(summarize(name, value))
    elif not args.quiet:
        if plan_run.last_batch:
            figures = "  ".join(f"{k} {v:.6g}" for k, v in plan_run.last_batch.items())
            print(f"last training batch (iteration {plan_run.last_iteration + 1} of step "
                  f"'{plan_run.loop.name}'): {figures}")
        if results:
            print(plan_run.results_heading() + ":")
        for name, value in results.items():
            print("  " + summarize(name, value).replace("\n", "\n  "))
    return EXIT_OK


def _note_cpu_override(args, moved: int) -> None:
    from pycaffe2.run.model import cpu_override_note
    if moved and not args.quiet:
        print(f"pycaffe2 run: note: {cpu_override_note(moved)}", file=sys.stderr)


def _resume_hint(args, plan_run) -> str:
    """Where the state was kept and the command that goes on from it."""
    if plan_run.checkpoint is None:
        return "no checkpoint kept (run with --checkpoint DIR to be able to stop and resume)"
    if plan_run.saved_iteration is None:
        return f"no checkpoint written: {plan_run.checkpoint} was not updated by this run"
    import shlex
    command = ["pycaffe2", "run", args.file, "--checkpoint", args.checkpoint, "--resume"]
    for flag, value in (("--iters", args.iters), ("--save-every", args.save_every),
                        ("--seed", args.seed), ("--device", args.device), ("--workers", args.workers),
                        ("--scheduler", args.scheduler)):
        if value is not None:
            command += [flag, str(value)]
    for root in args.data_root:
        command += ["--data-root", root]
    if args.allow_outside_paths:
        command.append("--allow-outside-paths")
    return (f"checkpoint after iteration {plan_run.saved_iteration + 1} is in {plan_run.checkpoint}; "
            f"go on with: {shlex.join(command)}")


def _count_spec(spec: str) -> tuple[str, int]:
    name, _, count = spec.partition("=")
    if not name or not count.isdigit() or int(count) < 1:
        raise PyCaffe2Error(f"bad --out-channels '{spec}': expected BLOB=N with N a positive integer")
    return name, int(count)


def _save_npz(path: str, results: dict) -> None:
    import numpy as np

    from pycaffe2.qtensor import Int8Tensor
    arrays = {}
    for name, value in results.items():
        if isinstance(value, Int8Tensor):  # its codes, and its quantization beside them
            clash = [key for key in (f"{name}_scale", f"{name}_zero_point") if key in results]
            if clash:
                raise PyCaffe2Error(f"{path}: Int8 blob '{name}' is saved with '{name}_scale' and "
                                    f"'{name}_zero_point' beside it, and a fetched blob is named "
                                    f"'{clash[0]}'; fetch it into another file")
            arrays[f"{name}_scale"] = np.float32(value.scale)
            arrays[f"{name}_zero_point"] = np.int32(value.zero_point)
            value = value.data
        arrays[name] = value
    results = arrays
    import io
    buffer = io.BytesIO()  # the whole archive first: a failure leaves no half-written file
    np.savez(buffer, **results)
    try:
        with open(path, "wb") as stream:
            stream.write(buffer.getbuffer())
    except OSError as exc:
        raise PyCaffe2Error(f"{path}: cannot write: {exc.strerror or exc}") from None


def summarize(name: str, value, max_values: int = 16) -> str:
    """'name: float32 [1, 10] min .. max .. mean ..', then the values when there are few."""
    import numpy as np

    from pycaffe2.qtensor import Int8Tensor
    if isinstance(value, Int8Tensor):
        first, newline, rest = summarize(name, value.data, max_values).partition("\n")
        return f"{first}  (Int8: scale {value.scale:.6g}, zero_point {value.zero_point}){newline}{rest}"
    if not isinstance(value, np.ndarray):
        return f"{name}: {type(value).__name__} {value!r:.60}"
    head = f"{name}: {value.dtype} {list(value.shape)}"
    if value.size == 1:  # a scalar such as a loss or an accuracy: just its value
        return f"{name}: {value.reshape(-1)[0]:.6g} ({value.dtype} {list(value.shape)})" \
            if value.dtype.kind in "biuf" else f"{head}  {value.reshape(-1)[0]!r:.60}"
    if value.size and value.dtype.kind in "biuf":
        head += f"  min {value.min():.6g}  max {value.max():.6g}  mean {value.mean():.6g}"
    if 0 < value.size <= max_values:
        shown = value.reshape(value.shape[0], -1) if value.ndim > 2 else value  # one row per item
        head += "\n  " + np.array2string(shown, precision=6, separator=", ").replace("\n", "\n  ")
    return head
