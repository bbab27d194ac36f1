"""_yaml_subset reads plain YAML exactly as _yaml's PyYAML line loader does (the
same values and types, the same LineDict/LineList lines), and leaves everything
else to PyYAML: for every text below it gives NOT_PLAIN or the very same tree."""
import math
import random

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2 import _yaml, _yaml_subset
from tests.conftest import REPO, SHARED


def difference(fast, slow, path="$"):
    """Where two loaded trees differ (type, value, line, item lines), or None."""
    if type(fast) is not type(slow):
        return f"{path}: {type(fast).__name__} {fast!r:.40} vs {type(slow).__name__} {slow!r:.40}"
    if isinstance(fast, (dict, list)):
        if fast.line != slow.line:
            return f"{path}: line {fast.line} vs {slow.line}"
        if isinstance(fast, list) and list(fast.item_lines) != list(slow.item_lines):
            return f"{path}: item lines {fast.item_lines} vs {slow.item_lines}"
        if len(fast) != len(slow) or (isinstance(fast, dict) and list(fast) != list(slow)):
            return f"{path}: {fast!r:.60} vs {slow!r:.60}"
        pairs = zip(fast.values(), slow.values()) if isinstance(fast, dict) else zip(fast, slow)
        keys = fast if isinstance(fast, dict) else range(len(fast))
        for key, (a, b) in zip(keys, pairs):
            found = difference(a, b, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(fast, float) and math.isnan(fast):
        return None if math.isnan(slow) else f"{path}: nan vs {slow!r}"
    return None if fast == slow else f"{path}: {fast!r} vs {slow!r}"


def read_alike(text: str) -> bool:
    """Whether the subset reader took `text`; when it did, PyYAML must give the same tree."""
    fast = _yaml_subset.load(text)
    if fast is _yaml_subset.NOT_PLAIN:
        return False
    slow = _yaml.load_pyyaml(text)  # raises if the reader took text PyYAML refuses
    assert difference(fast, slow) is None, (text, difference(fast, slow))
    return True


# What net files are made of: the reader must take these.
PLAIN = [
    "a: 1", "a:\n- 1\n- 2\nb: 3", "- a: 1\n  b:\n  - 2\n- 3", "- - a\n  - b\n- c", "a:\n  b:\n  - 1\n  c: 2\nd: 3",
    "a: [1, 2]  # c\nb: {x: y}", "a: {x: [1, {y: z}], w: 'q''r'}", "'a': \"b\"", "a b: c d", "k: a[0]", "---\na: 1",
    "key:\n  value\nother: 1", "a:", "a:\nb:", "[a, b]", "[a , b ]", "[ ]", "{ }", "- []\n- {}", "a: -1", "a: x#y",
    "a: x #y", "- 'x'", "1: a", "1.5: a", "null: a", "~: a", "true: a", "yes: no", "a: ~", "a: .nan", "a : b",
    "  a: 1\n  b: 2", "a:\n    - 1\n    - 2", "a:\n  -   1\n  -   x: 2\n      y: 3", "a: 1 # c\n# d\nb: 2",
    "op:\n- {type: Relu, input: [X], output: [Y]}\n- {type: FC, arg: {axis: 1}}", "a: 0o17", "a: 0x1F", "a: 010",
    "a: 1:30", "a: +1", "a: 1e3", "a: 1.0E-3", "a: 12.", "a: .5", "a: 1_000", "a: On", "k: v\n  # note\nk2: v",
    "- [a, b]\n- {c: d}", "x: a'b", "x: [a'b]", "a: {}\nb: []", "a:\n  []", "'': x", "a: ''", "k: [\"a\", 'b']",
    "a: [x,\n  y]", "a: {b: 1,\n  c: [d,\n    e]}", "- k: [a,\n    b]", "a: [x, # c\n  y]", "a: [\n  x, y]",
    "a: [x,\n    y,\n      z]\nb: 1", "a: [[x,\n  y], z]", "-  - a\n   - b", "- - - a",
]
# Left to PyYAML (which reads them, or reports the fault with its line).
OTHER = [
    "a: 1\n---\nb: 2", "a: 1\n...", "key:\n  value\n  more", "a: 1\n a2: 2", "a:\n  - 1\n  b: 2", "- a\n  b",
    "a: b: c", "a: b:", "[a, b,]", "{a: 1, a: 2}", "a: 1\na: 2", "{a}", "{a: }", "[a: 1]", "{a:1}", "a: -x", "a: - x",
    "a: 'x' y", 'a: "x\\ty"', "a: 'x # y'", "a: 2001-01-01", "<<: {a: 1}", "a: =", "- x: 2\n   y: 3", "-\n  a: 1",
    "- \n- a", "a: &x 1\nb: *x", "a: !!str 1", "a: |\n  text", "a: >\n  text", "%YAML 1.1\n---\na: 1", "a: @x",
    "? a\n: b", "a: [b, c] d", "x: [a, b]]", "a: b\t", "\u00e9: b", "a: [x,\n\n  y]", "a: [x,\n  # c\n  y]",
    "[a,\nb]", "a: [x,\n  'y']", "a: [x,\n  y] z", "a: [x,\n  y]\n  b: 1", "a:\r\n  b: 1",
]
# Texts the reader may take or leave; when it takes one, the tree must match.
EDGES = [
    "a[0]: x", "k: ---", "--- \na: 1", "a:\n", "a: -", "a#b: c", "- 'x': 1", '- "k": v', "-1: a", "=: a", "a: .NaN",
    "a:  b", "a  : b", "  - 1\n  - 2", "-   x: 2\n    y: 3", "a:\n\n\n  b: 1\n\n# end", "a: 'it''s'", 'a: ""',
    "a: x,y", "a: {x: y,z}", "[x y, 'z w']", "- ? a", "a: `x`", "a: %x", "a:\n- - 1\n  - 2\n- 3", "- a:\n  - 1\n  b: 2",
    "- a:\n    - 1\n  b: 2", "a: 0b101", "a: 1.e3", "a: -.5", "a: 1__0", "a: 0", "a: 00", "{a: b}: c", "[a, [b, [c]]]",
    "a: [b, c] # x", "x: a\"b", "x: {a'b: c}", "x: [-1, -.5, -a]", "x: [?a]", "x: [a?b]", "x: {a: b: c}", "x: [[a], b]",
    "- -1\n- - 2", "a: b\n-c: d", "x: 1\n\n  \ny: 2", "a:\n  {b: c}", "a:\n  [b,\n  c]", "'a''b': c", '"a b": c',
    "'a:b': c", "a: ' '", "a: '  x  '", 'a: "#"', "k: {\"a\": 'b'}", "k: {'a': b}", "k: ['a''b']", "a: [x,\n y]",
    "a: [x,\ny]", "  a: [x,\n  y]", "- [a,\n  b]", "- [a,\n b]", "-  [a,\n   b]", "- k: [a,\n   b]", "- k: [a,\n  b]",
    "a: [x, y\n  ]", "a: ['x',\n  y]", "a:\n  [x,\n  y]", "a:\n  [x,\n   y]", "[a,\n b]", "a: {b:\n  c}", "a: 1e", "a: .",
    "{a: 1, b: -2.5, c: x y}", "{a: 1,b: 2}", "{ a : 1 }", "{a: 1, a: 2}", "{1: a, 1.0: b}", "{a: b c, d: -x}", "[a,b]", "{a: [b,c]}", "a: [b ,c]", "a: [ b , c ]", "a: [b c,d e]", "a: [a*b, c!d, e?f, g-h]", "a: [x\n  y]", "a: -.inf", "a: +.5", "a: 0x", "a: 1:", "a: 1: 2", "a: [1:2]", "a: {1: 2}", "a: {~: x}", "a: [null, Null, NULL, ~]",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_yaml_is_read_as_pyyaml_reads_it(text):
    assert read_alike(text), "the subset reader should take this text"


@pytest.mark.parametrize("text", OTHER)
def test_the_rest_is_left_to_pyyaml(text):
    assert _yaml_subset.load(text) is _yaml_subset.NOT_PLAIN


@pytest.mark.parametrize("text", EDGES)
def test_edges_are_read_alike_or_left(text):
    read_alike(text)


def _yaml_files():
    folders = [REPO / "nets", REPO / "tests", REPO / "pycaffe2", SHARED]
    return sorted(path for folder in folders if folder.is_dir() for path in folder.rglob("*.yaml"))


def test_every_yaml_file_here_is_read_alike():
    taken = [path for path in _yaml_files() if read_alike(path.read_text(encoding="utf-8", errors="replace"))]
    nets = [path for path in _yaml_files() if "nets" in path.parts or "broken" in path.parts]
    assert set(nets) <= set(taken), "net files should all be plain YAML"


def _mutate(text: str, rng: random.Random) -> str:
    """One small edit of the kind that turns valid YAML into odd or invalid YAML."""
    lines = text.split("\n")
    line = rng.randrange(len(lines))
    choice = rng.random()
    if choice < 0.4:
        pos = rng.randint(0, len(lines[line]))
        lines[line] = lines[line][:pos] + rng.choice(" -:[]{},#'\"?&*!|>~1.x\t") + lines[line][pos:]
    elif choice < 0.6 and lines[line]:
        pos = rng.randrange(len(lines[line]))
        lines[line] = lines[line][:pos] + lines[line][pos + 1:]
    elif choice < 0.8:
        lines[line] = " " * rng.randint(0, 6) + lines[line].lstrip(" ")
    else:
        lines.insert(line, rng.choice(["", "# c", "  - x", "x: 1", "  ]", "---"]))
    return "\n".join(lines)


@pytest.mark.parametrize(("name", "edits"), [("mlp.yaml", 300), ("examples/lenet_digits/model.yaml", 30)])
def test_edited_net_files_are_read_alike_or_left(name, edits):
    text = (REPO / "nets" / name).read_text()
    rng = random.Random(17)
    for _ in range(edits):
        edited = text
        for _ in range(rng.randint(1, 3)):
            edited = _mutate(edited, rng)
        try:
            _yaml.load_pyyaml(edited)
        except yaml.YAMLError:
            assert _yaml_subset.load(edited) is _yaml_subset.NOT_PLAIN, edited
            continue
        read_alike(edited)


_WORDS = ["a", "X", "conv1_w", "yes", "No", "on", "1", "-1", "+1", "1.5", "0x1F", "010", "1_000", "~", "null", "true",
          "a b", "a:b", "a#b", "a - b", "", "'q'", '"', "[x]", "-x", "1e3", "1.0e+3", ".inf", ".nan", "2001-01-01", "<<",
          "=", "a: b", "a #b", "x,y", "{a}", "a\\b", "0", "0.", ".5", "1:30", "-", "?", ":", "%", "@", "!", "&a", "*a",
          "|", ">", "a'b", "3.", "y", "n", "off", "Conv"]
_SCALARS = st.one_of(st.sampled_from(_WORDS), st.integers(-10**6, 10**6), st.booleans(), st.none(),
                     st.sampled_from([0.0, 1.5, -2.25, 1e20, 3.0e-5, float("inf")]),
                     st.text(alphabet="ab _-:#,[]{}'\"01.", max_size=6))
_TREES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_WORDS[:24]) | _SCALARS, inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(tree=_TREES, flow=st.sampled_from([False, None, True]), indent=st.sampled_from([2, 4]),
       width=st.sampled_from([20, 80, 1000]), sort_keys=st.booleans())
def test_dumped_trees_are_read_alike_or_left(tree, flow, indent, width, sort_keys):
    try:
        text = yaml.safe_dump({"op": tree}, default_flow_style=flow, indent=indent, width=width, sort_keys=sort_keys)
    except (yaml.YAMLError, TypeError):
        return  # keys PyYAML cannot sort
    read_alike(text)


@pytest.mark.parametrize("text", [
    "a" + " " * 100_000 + "x", "k: [a" + " " * 100_000 + "x", "k: {a" + " " * 100_000 + "x: 1}", "a" + " " * 100_000 + ": 1",
    "k: [" + "a, " * 30_000 + "]", "k: [a,\n" + "  a,\n" * 30_000 + "  b]", "k: {" + "a: b, " * 30_000 + "}",
], ids=["spaces", "flow-spaces", "pair-spaces", "key-spaces", "long-flow", "many-lines", "long-pairs"])
def test_long_lines_are_read_in_one_pass(text):
    """Nothing in the reader backtracks over a line (a quadratic regex would take minutes here)."""
    read_alike(text)


@pytest.mark.parametrize("size", [990, 1000, 1010, 1030, 1100])
@pytest.mark.parametrize("form", ["{k}: 1", "'{k}': 1", "a: {{{k}: 1}}", "a: {{{k} : 1, b: 2}}", "a: [{{'{k}': 1}}]"])
def test_long_keys_are_left_to_pyyaml_near_its_limit(form, size):
    read_alike(form.format(k="k" * size))
