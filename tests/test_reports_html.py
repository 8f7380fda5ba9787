"""``hemsd backtest --html`` and ``hemsd simulate --html``: self-contained reports, looked at in Chromium.

A generated scenario of six weeks across two months is replayed by the command line; each report is
opened from its file at phone and desktop widths: the week's chart and the months are drawn, another
week can be chosen, nothing is wider than the viewport and the page asks for nothing over the network.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from support.chromium import Page, chromium_binary, chromium_page

from controller.cli import backtest as backtest_cli
from controller.cli import simulate as simulate_cli

DAYS = 42
START = datetime(2024, 3, 18, tzinfo=UTC)
WIDE = (
    "(() => { const width = document.documentElement.clientWidth;"
    " return [...document.querySelectorAll('body *')].filter((e) => !e.closest('[hidden]') && e.getClientRects().length)"
    ".filter((e) => { const r = e.getBoundingClientRect(); return r.right > width + 0.5 || r.left < -0.5; })"
    ".filter((e) => !e.closest('.card table')).map((e) => e.id || e.tagName); })()"
)


def make_scenario(path: Path) -> Path:
    """An hourly house with PV, an evening peak and cheap nights (a lean copy of test_backtest's)."""
    hours = np.arange(DAYS * 24)
    hod = hours % 24
    pv = np.clip(np.sin((hod - 6) / 12 * np.pi), 0, None) * 5000.0 * (1 - 0.4 * ((hours // 24) % 2))
    load = 400.0 + 1500.0 * ((hod >= 17) & (hod < 21)) + 300.0 * ((hod >= 6) & (hod < 9))
    spot = 0.08 + 0.12 * ((hod >= 17) & (hod < 21)) - 0.05 * ((hod >= 11) & (hod < 15))
    lines = ["time,import_price,export_price,pv_w,load_w"]
    for i in range(DAYS * 24):
        t = (START + timedelta(hours=int(i))).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{t},{(spot[i] + 0.2) * 1.19:.5f},{spot[i]:.5f},{pv[i]:.1f},{load[i]:.1f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_backtest(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hemsd backtest")
    backtest_cli.configure_parser(parser)
    return backtest_cli.run_command(parser.parse_args(argv))


def run_simulate(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hemsd simulate")
    simulate_cli.configure_parser(parser)
    return simulate_cli.run_command(parser.parse_args(argv))


async def look(page: Page, report: Path, width: int, shots: Path, drawn: str) -> None:
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=width < 600
    )
    await page.send("Page.navigate", url=report.as_uri())
    await page.wait_for("document.readyState === 'complete'", 15, f"{report.name} loaded")
    await page.wait_for(drawn, 15, f"the charts of {report.name}")
    wide = await page.evaluate(WIDE)
    shot = await page.screenshot(shots / f"{report.stem}-{width}.png")
    print(f"{report.name} at {width} px: screenshot {shot}")
    assert wide == [], f"{report.name} at {width} px: wider than the viewport: {wide}"


@pytest.mark.slow
async def test_backtest_and_simulate_reports_in_chromium(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chromium_binary()
    scenario = make_scenario(tmp_path / "house_eur.csv")
    backtest_html, sweep_html = tmp_path / "backtest.html", tmp_path / "simulate.html"
    assert run_backtest(str(scenario), "--planner", "deterministic", "--html", str(backtest_html)) == 0
    assert f"report: {backtest_html}" in capsys.readouterr().out
    config = tmp_path / "hemsd.toml"  # a small battery now: what would a bigger one pay?
    config.write_text(
        '[site]\ncurrency = "EUR"\ntimezone = "Europe/Berlin"\n\n[battery]\ncapacity_kwh = 1.0\n',
        encoding="utf-8",
    )
    argv = (
        "--config",
        str(config),
        "--scenario",
        str(scenario),
        "--capacity",
        "0:10:5",
        "--battery-cost-per-kwh",
        "300",
    )
    assert (
        await asyncio.to_thread(run_simulate, *argv, "--html", str(sweep_html)) == 0
    )  # it runs a loop of its own
    text = backtest_html.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    async with chromium_page(tmp_path / "browser") as page:
        for width in (400, 1400):
            await look(
                page, backtest_html, width, tmp_path, "document.querySelectorAll('#month-chart rect').length"
            )
            weeks = await page.evaluate("document.getElementById('week').options.length")
            assert weeks == 7  # local weeks (Berlin for EUR): six, and the last two hours of Sunday UTC
            first = await page.evaluate("document.querySelectorAll('#week-chart rect[class^=act-]').length")
            assert first == 7 * 24 - 1  # from Monday 01:00 local, the file's first hour
            await page.evaluate(
                "(() => { const s = document.getElementById('week'); s.value = '6'; s.dispatchEvent(new Event('change')); })()"
            )
            last = await page.evaluate("document.querySelectorAll('#week-chart rect[class^=act-]').length")
            assert last == 2
            costs = await page.evaluate("document.getElementById('week-costs').textContent")
            assert costs.startswith("cost this week")
            months = await page.evaluate(
                "[...document.querySelectorAll('#months tbody tr')].map((r) => r.cells[0].textContent)"
            )
            assert months == ["2024-03", "2024-04"]
            assert await page.evaluate("document.querySelectorAll('#month-chart rect.bar').length") == 2
            assert await page.evaluate("document.querySelectorAll('#totals tbody tr').length") == 4

            await look(
                page, sweep_html, width, tmp_path, "document.querySelectorAll('#saving-chart circle').length"
            )
            assert await page.evaluate("document.querySelectorAll('#saving-chart circle').length") == 3
            assert await page.evaluate("document.querySelectorAll('#payback-chart circle').length") >= 1
            assert await page.evaluate("document.querySelectorAll('#variants tbody tr').length") == 4
        outside = [u for u in page.requested_urls() if not u.startswith(("file:", "data:", "about:"))]
        assert outside == []
