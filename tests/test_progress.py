"""The progress helper: a tqdm bar on a terminal, plain lines elsewhere, nothing when disabled."""

import io
import time

from bayesifu._progress import is_terminal, progress, sampler_progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_off_a_terminal():
    stream = io.StringIO()
    items = list(progress(range(900), desc="redshift", unit="spectra", stream=stream, interval=0))
    assert items == list(range(900))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "redshift: 1/900 spectra (0%)"
    assert "redshift: 400/900 spectra (44%)" in lines
    assert lines[-1] == "redshift: 900/900 spectra (100%)"
    assert "\r" not in stream.getvalue()  # no bar redraws in a log file


def test_plain_lines_are_occasional():
    """Off a terminal, a line each ``interval`` seconds and a last one: work quicker than the
    interval prints nothing (an error message then stays the only line on stderr)."""
    stream = io.StringIO()
    assert sum(progress(range(500), desc="bin", stream=stream)) == sum(range(500))
    assert stream.getvalue() == ""

    def slow(n):
        for i in range(n):
            time.sleep(0.03)
            yield i

    stream = io.StringIO()
    list(progress(slow(10), total=10, desc="bin", unit="steps", stream=stream, interval=0.1))
    lines = stream.getvalue().splitlines()
    assert 2 <= len(lines) <= 5, lines
    assert lines[-1] == "bin: 10/10 steps (100%)"
    assert lines[0] != lines[-1]


def test_unknown_total_counts_items():
    stream = io.StringIO()
    gen = (i for i in range(3))
    assert list(progress(gen, desc="x", unit="files", stream=stream, interval=0)) == [0, 1, 2]
    assert stream.getvalue().splitlines() == ["x: 1 files", "x: 2 files", "x: 3 files"]


def test_tqdm_bar_on_a_terminal():
    stream = FakeTerminal()
    assert list(progress(range(50), desc="fit", unit="spectra", stream=stream)) == list(range(50))
    text = stream.getvalue()
    assert "\r" in text and "50/50" in text and "fit" in text  # tqdm redraws one line


def test_disabled_writes_nothing():
    for stream in (io.StringIO(), FakeTerminal()):
        assert list(progress([1, 2, 3], desc="demo", enabled=False, stream=stream)) == [1, 2, 3]
        assert stream.getvalue() == ""


def test_sampler_bar_only_on_a_terminal():
    assert is_terminal(FakeTerminal()) and not is_terminal(io.StringIO())
    assert sampler_progress_bar(True, FakeTerminal())
    assert not sampler_progress_bar(True, io.StringIO())
    assert not sampler_progress_bar(False, FakeTerminal())
