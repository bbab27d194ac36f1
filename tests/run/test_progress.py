"""Training progress: a tqdm bar that redraws cleanly on a terminal, plain lines elsewhere."""
import io
import sys

import pytest

from pycaffe2.run.progress import Progress, metrics_text


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def screen(text: str) -> list[str]:
    """What a terminal shows after `text`: '\\r' returns to the line's start and later
    characters overwrite earlier ones; '\\n' starts a new line."""
    lines, line, column = [], [], 0
    for char in text:
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("".join(line))
            line, column = [], 0
        else:
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
    lines.append("".join(line))
    return [entry.rstrip() for entry in lines if entry.strip()]


def test_the_bar_redraws_without_leaving_characters_of_a_longer_line():
    pytest.importorskip("tqdm")
    stream = Terminal()
    progress = Progress("train", 3, 0, stream, min_redraw_s=0)
    assert progress.bar is not None
    progress.update(1, {"loss": 0.5, "accuracy": 19531.0})
    progress.update(2, {"loss": 0.25, "accuracy": 1.0})
    shown_mid = screen(stream.getvalue())
    assert "accuracy 1" in shown_mid[-1] and "19531" not in shown_mid[-1]
    progress.update(3, {"loss": 0.125, "accuracy": 1.0})
    progress.close()
    shown = screen(stream.getvalue())
    assert len(shown) == 1  # one line, redrawn in place
    last = shown[0]
    assert last.startswith("train") and "3/3" in last and "it/s" in last
    assert last.endswith("loss 0.125  accuracy 1]")
    assert "19531" not in last


def test_the_bar_shows_an_eta_while_the_loop_runs():
    pytest.importorskip("tqdm")
    stream = Terminal()
    progress = Progress("train", 100, 0, stream, min_redraw_s=0)
    progress.update(10, {"loss": 1.0})
    assert "10/100" in screen(stream.getvalue())[-1] and "<" in screen(stream.getvalue())[-1]
    progress.close()


def test_plain_lines_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    progress = Progress("train", 4, 0, stream, every_s=0)
    assert progress.bar is None
    progress.update(1, {"loss": 2.0})
    progress.update(2, {"loss": 1.0})
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("train 1/4  ") and "it/s" in lines[0] and "ETA " in lines[0]
    assert lines[0].endswith("loss 2")
    assert lines[-1].startswith("train 2/4") and lines[-1].endswith("loss 1")


def test_plain_lines_are_periodic_and_the_last_figures_come_at_the_end():
    stream = io.StringIO()
    progress = Progress("loop", None, 5, stream, every_s=3600)
    for done in range(6, 50):
        progress.update(done, {"loss": float(done)})
    assert stream.getvalue() == ""  # not an hour yet
    progress.close()
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("loop 49  ") and "ETA" not in line and line.endswith("loss 49")


def test_without_tqdm_a_terminal_gets_plain_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    stream = Terminal()
    progress = Progress("train", 2, 0, stream, every_s=0)
    assert progress.bar is None
    progress.update(1, {})
    progress.close()
    assert stream.getvalue().splitlines()[0].startswith("train 1/2")


def test_metrics_text():
    assert metrics_text({"loss": 0.123456, "accuracy": 1.0}) == "loss 0.1235  accuracy 1"


def read_all(fd) -> bytes:
    """Everything written to a pseudo-terminal so far: one read may return part of it."""
    import os
    import select
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_terminal_that_reports_no_size_still_gets_a_bar():
    """Some pseudo-terminals (CI runners, editors) say 0x0: tqdm alone would then draw nothing."""
    pytest.importorskip("tqdm")
    pty = pytest.importorskip("pty")
    import os
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as stream:
            assert os.get_terminal_size(slave).columns == 0
            progress = Progress("train", 3, 0, stream, min_redraw_s=0)
            progress.update(3, {"loss": 0.5})
            progress.close()
            stream.flush()
        shown = screen(read_all(master).decode("utf-8"))
    finally:
        os.close(master)
        os.close(slave)
    assert shown[-1].startswith("train: 100%") and "3/3" in shown[-1] and "loss 0.5" in shown[-1]
