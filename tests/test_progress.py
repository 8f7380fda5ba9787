"""The command line's progress bar: drawn on a terminal after a moment, with an ETA; silent otherwise."""

from __future__ import annotations

import io

from controller.cli.progress import SHOW_AFTER_S, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_long_run_draws_a_bar_with_an_eta_then_clears_its_line() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress("backtest", 8760, unit="intervals", stream=stream, clock=clock)
    progress(10)  # the first moments draw nothing: a short run never flashes a bar
    assert stream.getvalue() == ""
    clock.now = SHOW_AFTER_S + 8.0
    progress(4380)
    line = stream.getvalue()
    print(repr(line))
    assert line.startswith("\rbacktest  50% |##############..............| 4380/8760 intervals")
    assert "0:10 spent, 0:10 left" in line
    progress(4381)  # within the redraw interval: nothing more
    assert stream.getvalue() == line
    progress.close()
    assert stream.getvalue().endswith("\r\033[K")


def test_nothing_is_drawn_off_a_terminal_or_when_disabled() -> None:
    for progress, stream in (
        (lambda s, c: Progress("simulate", 20, stream=s, clock=c), io.StringIO()),
        (lambda s, c: Progress("simulate", 20, stream=s, clock=c, enabled=False), Terminal()),
    ):
        clock = Clock()
        bar = progress(stream, clock)
        clock.now = 100.0
        bar(10)
        bar.close()
        assert stream.getvalue() == ""


def test_the_eta_is_unknown_before_the_first_unit() -> None:
    assert Progress("x", 5, enabled=False).line(0, 3.0).endswith("0:03 spent, estimating")
    assert Progress("x", 1, enabled=False).line(1, 3725.0).endswith("1:02:05 spent, 0:00 left")
