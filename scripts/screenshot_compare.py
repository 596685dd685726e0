"""Screenshot the MLflow UI's compare view of the latest workflow run's candidates (docs/compare-view.png), or
with ``--curves`` the training curves of its first candidate that has them (docs/training-curves.png).

Starts `mlflow server` on a free loopback port against the store, opens
``#/compare-runs?runs=[...]&experiments=[...]`` in headless Chromium (Debian's package: apt-get install
chromium), folds the plot and parameter sections, shows only metrics that differ, scrolls the metric table
to the headline metrics (through the DevTools protocol, as a user would click), saves the window as PNG and
stops the browser and the server again.

    .venv/bin/python scripts/screenshot_compare.py                      # the demo's store (make demo)
    .venv/bin/python scripts/screenshot_compare.py --tracking-uri sqlite:////tmp/x/mlruns.db --out /tmp/x.png
    .venv/bin/python scripts/screenshot_compare.py --curves --mlflow .server-venv/bin/mlflow \
        --tracking-uri sqlite:////tmp/copy/mlruns.db --out docs/training-curves.png
        # a DIET candidate's run page, "Model metrics" tab: the curve/<component>/<figure> against the epoch
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow

from nlu_mlflow import constants as c

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_server(tracking_uri: str, log: Path, mlflow_cli: str | None = None) -> Iterator[str]:
    """`mlflow server` on a free loopback port; yields its URL, stops it (and its workers) on exit."""
    port = free_port()
    program = [mlflow_cli] if mlflow_cli else [sys.executable, "-m", "mlflow"]
    command = [*program, "server", "--backend-store-uri", tracking_uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/health", server, log)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited ({server.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {url} within {timeout:.0f} s; see {log}")


def latest_candidates(tracking_uri: str, experiment_name: str) -> tuple[str, list[str]]:
    """The experiment id and the candidate run ids of the latest workflow run, ordered by run name."""
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise SystemExit(f"{tracking_uri}: no experiment {experiment_name!r}; run `make demo` first.")
    ids = [experiment.experiment_id]
    [parent] = client.search_runs(
        ids, f"tags.`{c.TAG_ROLE}` = '{c.ROLE_WORKFLOW}'", order_by=["start_time DESC"], max_results=1
    ) or [None]
    if parent is None:
        raise SystemExit(f"{experiment_name!r} holds no workflow run; run `make demo` first.")
    children = client.search_runs(
        ids,
        f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.`{c.TAG_ROLE}` = '{c.ROLE_CANDIDATE}'",
        order_by=["attributes.run_name ASC"],
    )
    return experiment.experiment_id, [run.info.run_id for run in children]


def curves_url(base: str, tracking_uri: str, experiment_id: str, run_ids: list[str]) -> str:
    """The "Model metrics" tab of the first candidate with training curves (``curve/...`` step metrics)."""
    client = mlflow.MlflowClient(tracking_uri)
    for run_id in run_ids:
        if any(key.startswith(c.CURVE_PREFIX + "/") for key in client.get_run(run_id).data.metrics):
            return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics"
    raise SystemExit("no candidate of the latest workflow run has training curves: train a DIET config.")


def compare_url(base: str, experiment_id: str, run_ids: list[str]) -> str:
    runs = urllib.parse.quote(json.dumps(run_ids))
    experiments = urllib.parse.quote(json.dumps([experiment_id]))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}"


# What a reader wants to see, done the way a user would: fold the plot and the (long) parameter table,
# keep only metrics that differ between the runs, and scroll the metric table to the headline metrics.
ARRANGE_PAGE = """(() => {
  for (const section of ["Visualizations", "Parameters"]) {
    document.querySelector(`[aria-label="collapse ${section}"]`).closest("[role=button]").click();
  }
  document.querySelector('[aria-label="Metrics - Show diff only"]').click();
})()"""
SCROLL_METRICS = """(() => {
  const cell = [...document.querySelectorAll("table th a")].find((a) => a.textContent === "%s");
  const table = cell.closest("table");
  table.scrollTop = cell.closest("tr").offsetTop;
})()"""
PAGE_READY = "!!document.querySelector('[aria-label=\"Metrics - Show diff only\"]')"


def screenshot(url: str, out: Path, window: str, budget_ms: int) -> None:
    """The page as it loads (no arrangement): Chromium's own --screenshot."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={window}"]
        command += [f"--virtual-time-budget={budget_ms}", f"--screenshot={out.resolve()}", url]
        subprocess.run(command, check=True, capture_output=True, timeout=180)


@contextmanager
def chromium(profile: Path) -> Iterator[str]:
    """Headless Chromium with the DevTools protocol on a free port; yields its page's websocket URL."""
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0"]
    browser = subprocess.Popen(
        [*command, "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if browser.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{CHROMIUM} did not start its DevTools endpoint")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        yield next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        browser.wait(timeout=30)


async def arranged_screenshot(page: str, url: str, out: Path, window: str, scroll_to: str) -> None:
    """Open ``url``, arrange the compare view (ARRANGE_PAGE) and save a PNG of the window."""
    import websockets  # a dependency of Rasa

    width, height = (int(x) for x in window.split(","))
    async with websockets.connect(page, max_size=None) as ws:
        ids = iter(range(1, 1_000_000))

        async def call(method: str, **params) -> dict:
            number = next(ids)
            await ws.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:  # skip the protocol's events until our answer comes
                message = json.loads(await ws.recv())
                if message.get("id") == number:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message["result"]

        async def run_js(expression: str):
            result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            if "exceptionDetails" in result:
                raise RuntimeError(f"the page changed: {result['exceptionDetails']}")
            return result["result"].get("value")

        await call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        await call("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while not await run_js(PAGE_READY):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: the compare view did not load within 60 s")
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # let the tables settle
        await run_js(ARRANGE_PAGE)
        await asyncio.sleep(1)
        await run_js(SCROLL_METRICS % scroll_to)
        await asyncio.sleep(1)
        shot = await call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlruns.db'}")
    parser.add_argument("--experiment", default=c.DEFAULT_EXPERIMENT)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "compare-view.png")
    parser.add_argument("--window", default="1600,1120", help="width,height in pixels")
    parser.add_argument("--scroll-to", default=c.INTENT_F1_MACRO, help="metric row to scroll the metrics to")
    parser.add_argument(
        "--as-loaded",
        action="store_true",
        help="plain `chromium --screenshot` of the page as it loads (plot and parameters on top)",
    )
    parser.add_argument("--budget-ms", type=int, default=20000, help="--virtual-time-budget of --as-loaded")
    parser.add_argument(
        "--curves", action="store_true", help="the training curves of a candidate (its run page), as loaded"
    )
    parser.add_argument(
        "--mlflow",
        help="the `mlflow` program whose UI to show, e.g. .server-venv/bin/mlflow (MLflow 3.18: 3.5.1's UI "
        "did not draw a candidate's run page on 2026-12-07); it migrates a SQLite store: give it a copy",
    )
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing; install Debian's package: apt-get install -y chromium")
    experiment_id, run_ids = latest_candidates(args.tracking_uri, args.experiment)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="mlflow-ui-") as tmp,
        mlflow_server(args.tracking_uri, Path(tmp) / "server.log", args.mlflow) as base,
    ):
        if args.curves:
            url = curves_url(base, args.tracking_uri, experiment_id, run_ids)
            print(f"training curves: {url}")
        else:
            url = compare_url(base, experiment_id, run_ids)
            print(f"comparing {len(run_ids)} runs: {url}")
        if args.as_loaded or args.curves:
            screenshot(url, args.out, args.window, args.budget_ms)
        else:
            with chromium(Path(tmp) / "profile") as page:
                asyncio.run(arranged_screenshot(page, url, args.out, args.window, args.scroll_to))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
