"""Run Caffe2's own operator tests against pycaffe2 and print per-file totals.

    python scripts/caffe2_conformance_report.py [FILE ...]            # the table
    python scripts/caffe2_conformance_report.py --write-expectations  # and rewrite
                                          tests/caffe2_conformance/expected_failures.yaml

Rewriting keeps a still-failing entry's reason that a person wrote ("documented
deviation: ..." or "known: ...") and categorizes the rest afresh: "missing op X (issue 16)", "missing module
M", or "difference: <first line of the error>" to refine by hand.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.caffe2_conformance import harness  # after the sys.path line above

HEADER = """\
# Caffe2's operator tests (the shared caffe2_operator_tests folder) that fail or error
# on pycaffe2 today: test id -> why. tests/caffe2_conformance fails on a failure
# missing here and on an entry that passes again. Regenerate with
#   python scripts/caffe2_conformance_report.py --write-expectations
# and refine the "difference:" reasons by hand (e.g. "documented deviation: ...").
"""


_REFINED = ("documented deviation:", "known:")  # reasons written by a person: kept as they are


def write_expectations(results: dict, path: Path = harness.EXPECTED_FAILURES) -> int:
    old = harness.load_expected(path)
    entries = {}
    for outcomes in results.values():
        for test_id, why in harness.failing(outcomes).items():
            refined = old.get(test_id, "").startswith(_REFINED)
            entries[test_id] = old[test_id] if refined else harness.categorize(why)
    lines = [HEADER]
    for file_name in results:
        ids = sorted(t for t in entries if t.partition("::")[0] == file_name)
        if ids:
            lines.append(f"\n# {file_name}\n")
            lines.extend(f"{_quoted(t)}: {_quoted(entries[t])}\n" for t in ids)
    path.write_text("".join(lines))
    return len(entries)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="file names in the folder (default: all)")
    parser.add_argument("--write-expectations", action="store_true")
    parser.add_argument("--examples", type=int, default=harness.EXAMPLES, help="hypothesis examples per test")
    args = parser.parse_args(argv)
    if not harness.OPERATOR_TESTS.is_dir():
        print(harness.OPERATOR_TESTS_MISSING, file=sys.stderr)
        return 2
    files = args.files or harness.test_files()
    results = harness.run_files(harness.OPERATOR_TESTS, files, examples=args.examples)
    print(f"{'file':<52} {'passed':>6} {'failed':>6} {'errored':>7} {'skipped':>7}")
    sums = dict.fromkeys(("passed", "failed", "errored", "skipped"), 0)
    for file_name, outcomes in results.items():
        counts = harness.totals(outcomes)
        for key in sums:
            sums[key] += counts[key]
        print(f"{file_name:<52} {counts['passed']:>6} {counts['failed']:>6} {counts['errored']:>7} "
              f"{counts['skipped']:>7}")
    print(f"{'total':<52} {sums['passed']:>6} {sums['failed']:>6} {sums['errored']:>7} {sums['skipped']:>7}")
    if args.write_expectations:
        if args.files:
            parser.error("--write-expectations runs every file (give no FILE)")
        count = write_expectations(results)
        print(f"wrote {count} entries to {harness.EXPECTED_FAILURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
