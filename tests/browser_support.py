"""Helpers for tests/test_browser.py: JupyterLab in headless Chromium (Debian package) through Playwright.

* :class:`Slider` — one row of the table of sliders the browser suite checks.
* :func:`prepare_notebook` — a copy of a course notebook that keeps only the cells a widget needs.
* :class:`JupyterLab` — ``jupyter lab`` on a free localhost port with a token, isolated config.
* :func:`launch_chromium` — Playwright driving ``/usr/bin/chromium`` (Playwright's own browser
  download is not reachable here), or a failure that says how to install it.
* :class:`NotebookPage` — open a notebook, run its cells one by one, find and move a widget,
  measure input-to-image time in the page (``performance.now()``, ms).

Playwright docs: https://playwright.dev/python/docs/api/class-page (keyboard, mouse, screenshot).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
INSTALL_HINT = ("Debian's chromium is needed by the browser tests: `sudo apt-get update && sudo apt-get install -y "
                "chromium` (.ci/run does this on a fresh machine), then `make test-browser`.")
# The plot of a widget: an <img> inside the cell's output area (ipywidgets.Image, or an inline PNG).
PLOT = ".jp-OutputArea-output img"


@dataclass(frozen=True)
class Slider:
    """One slider of the course, as the browser suite drives it.

    notebook: assignment name; reads ``source/<notebook>/<notebook>.ipynb`` (solved) and
        ``release/<notebook>/<notebook>.ipynb`` (blank).
    widget: name of the function that builds it; the widget cell is the one code cell that calls
        ``widget(``. The prepared copy keeps the setup cell, every UNGRADED code cell above the widget
        cell (exercise answers and the cells that build the widget's inputs) and the widget cell;
        test cells are left out.
    description: the slider's description label (e.g. ``"bits"``).
    keys: ``((key, readout), ...)`` pressed in order on the focused slider handle; ``readout`` is the text
        expected in ``.widget-readout`` afterwards, or None for "a new value, equal to the handle's
        aria-valuenow to its rounding" (for an entry whose readouts are not known yet).
    drag: ``(value, readout)``: drag the handle with the mouse to ``value``; readout as in ``keys``.
    toggle: an option of a ToggleButtons in the widget to click (the image must change), or None.
    skip: substrings; ungraded cells above the widget containing one are left out (slow and not needed).
    edits: ``((pattern, new), ...)``: ``re.sub(pattern, new)`` on the prepared copies' sources; each pattern
        must match a kept cell (so a changed notebook fails here instead of silently running slow cells).
    release_message: lowercase substrings the blank (release) widget's ``.course-widget-message`` must show.
    """

    notebook: str
    widget: str
    description: str
    keys: tuple = (("ArrowRight", None), ("End", None))
    drag: tuple = (None, None)
    toggle: str | None = None
    skip: tuple = ()
    edits: tuple = ()
    release_message: tuple = ("not implemented",)


def notebook_path(name: str, kind: str) -> Path:
    """``source/<name>/<name>.ipynb`` (kind ``"source"``) or the release one (``"release"``)."""
    if kind not in ("source", "release"):
        raise ValueError(f"kind must be 'source' or 'release', got {kind!r}")
    return ROOT / kind / name / f"{name}.ipynb"


def prepare_notebook(slider: Slider, kind: str, dest: Path) -> list[int]:
    """Write to ``dest`` a copy of the notebook that keeps only the cells ``slider`` needs; return the kept
    cell indices of the original (the widget cell last). Raises AssertionError naming what is missing
    (widget cell, an edit that matches nothing) so that a notebook change cannot silently skip the test."""
    path = notebook_path(slider.notebook, kind)
    assert path.is_file(), f"{path} is missing (run `make release` for release/)"
    nb = nbformat.read(path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    calls = [i for i in code[1:] if f"{slider.widget}(" in nb.cells[i].source]
    assert len(calls) == 1, (f"{path.relative_to(ROOT)}: expected exactly one code cell calling {slider.widget}(, "
                             f"found cells {calls}; update the Slider entry in tests/test_browser.py")
    widget_cell = calls[0]

    def keep(i: int) -> bool:
        meta = nb.cells[i].metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            return False                                   # a test cell: not on the way to the widget
        return not any(s in nb.cells[i].source for s in slider.skip)

    kept = [code[0]] + [i for i in code[1:] if i < widget_cell and keep(i)] + [widget_cell]
    cells = [nbformat.v4.new_code_cell(nb.cells[i].source) for i in kept]
    for pattern, new in slider.edits:
        hits = [c for c in cells if re.search(pattern, c.source)]
        assert hits, f"{path.relative_to(ROOT)}: edit {pattern!r} matches no kept cell; update the Slider entry"
        for c in hits:
            c.source = re.sub(pattern, new, c.source)
    out = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                          "language": "python"}})
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(out, dest)
    return kept


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """``jupyter lab`` from this venv serving ``root`` on 127.0.0.1 with a random token.

    Config, runtime, settings and workspaces live under ``state`` (nothing from ~/.jupyter); kernels
    inherit ``env``. Lab settings: no news/update checks, no notebook windowing (every cell in the DOM).
    Use as a context manager; on exit the server is stopped (SIGTERM, which shuts its kernels down).
    """

    def __init__(self, root: Path, state: Path, env: dict[str, str], start_timeout_s: float = 120):
        self.root, self.state, self.start_timeout_s = Path(root), Path(state), start_timeout_s
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "JUPYTER_CONFIG_DIR": str(self.state / "config"),
                    "JUPYTER_RUNTIME_DIR": str(self.state / "runtime")}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.proc = None
        self.log = self.state / "jupyter-lab.log"

    def _settings(self) -> Path:
        settings = self.state / "settings"
        for plugin, values in {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                                                "checkForUpdates": False},
                               "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}}.items():
            file = settings / f"{plugin}.jupyterlab-settings"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(values))
        return settings

    def __enter__(self) -> "JupyterLab":
        jupyter = Path(sys.executable).parent / "jupyter"
        assert jupyter.exists(), f"{jupyter} is missing: run `make setup`"
        cmd = [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}", f"--LabApp.user_settings_dir={self._settings()}",
               f"--LabApp.workspaces_dir={self.state / 'workspaces'}", "--LabApp.news_url=",
               "--ServerApp.terminals_enabled=False"]
        self.state.mkdir(parents=True, exist_ok=True)
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"jupyter lab exited ({self.proc.returncode}):\n{self.log_tail()}"
            try:
                self.api("status")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise AssertionError(f"jupyter lab did not answer on {self.url} within {self.start_timeout_s:.0f} s:\n"
                             f"{self.log_tail()}")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def api(self, path: str, method: str = "GET"):
        """JSON from the server's REST API (``/api/<path>``), authenticated with the token."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernels_idle(self) -> bool:
        return all(k["execution_state"] == "idle" for k in self.api("kernels"))

    def shutdown_kernels(self) -> None:
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")

    def lab_url(self, notebook: str) -> str:
        # ?reset: start from an empty workspace (no notebook of an earlier test reopened next to this one)
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"


def launch_chromium(playwright):
    """Headless Debian chromium through Playwright; AssertionError with install instructions if missing."""
    assert CHROMIUM.exists(), f"{CHROMIUM} not found. {INSTALL_HINT}"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# In-page probe: timestamps (performance.now(), ms) of input events and of every change of the plot's src.
PROBE_JS = """([cell, selector]) => {
  const probe = window.__courseProbe = {inputs: [], images: []};
  if (!window.__courseProbeListeners) {
    for (const type of ["keydown", "pointerdown", "pointermove", "pointerup", "click"])
      document.addEventListener(type, (e) => window.__courseProbe.inputs.push({type: e.type, t: performance.now()}), true);
    window.__courseProbeListeners = true;
  }
  const src = () => { const img = cell.querySelector(selector); return img ? img.src : null; };
  let last = src();
  if (window.__courseProbeObserver) window.__courseProbeObserver.disconnect();
  window.__courseProbeObserver = new MutationObserver(() => {
    const now = src();
    if (now !== last) { last = now; probe.images.push({t: performance.now()}); }
  });
  window.__courseProbeObserver.observe(cell, {subtree: true, childList: true, attributes: true, attributeFilter: ["src"]});
}"""


def readout_value(text: str | None) -> float | None:
    """The number a slider readout shows ("10.0" -> 10.0, "50%" -> 0.5), or None if it shows none."""
    match = re.search(r"-?\d+(?:\.\d+)?", text or "")
    if not match:
        return None
    return float(match.group()) / (100 if text.strip().endswith("%") else 1)


class NotebookPage:
    """One notebook open in JupyterLab in a Playwright ``page``; ``out`` receives screenshots."""

    def __init__(self, page, lab: JupyterLab, out: Path, label: str):
        self.page, self.lab, self.out, self.label = page, lab, Path(out), label
        self.out.mkdir(parents=True, exist_ok=True)
        self.screenshots: list[str] = []

    def open(self, notebook: str, n_cells: int, timeout_s: float = 120) -> None:
        self.page.goto(self.lab.lab_url(notebook), timeout=timeout_s * 1000)
        panels = self.page.locator(".jp-NotebookPanel")
        cells = panels.locator(".jp-Notebook .jp-Cell")
        cells.nth(n_cells - 1).wait_for(timeout=timeout_s * 1000)
        assert panels.count() == 1, f"{notebook}: {panels.count()} notebooks open in the page, expected 1"
        assert cells.count() == n_cells, f"{notebook}: {cells.count()} cells in the page, expected {n_cells}"
        self.cells, self.n_cells = cells, n_cells   # Shift+Enter on the last cell adds an empty one below
        # the kernel is up when the server reports an idle kernel for this notebook's session
        self.wait(lambda: any(s["path"].endswith(notebook) and s["kernel"]["execution_state"] == "idle"
                              for s in self.lab.api("sessions")), timeout_s, f"{notebook}: no idle kernel")

    @staticmethod
    def wait(condition, timeout_s: float, what, poll_s: float = 0.25) -> float:
        """Poll ``condition()`` until true; return seconds waited. After ``timeout_s``: AssertionError with
        ``what`` (a str, or a callable giving one then, e.g. the cell's output at the time of failure)."""
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout_s:
                raise AssertionError(f"{what() if callable(what) else what} (waited {timeout_s:.0f} s)")
            time.sleep(poll_s)
        return time.monotonic() - start

    def run_cells(self, timeout_s: float = 300) -> list[float]:
        """Run every cell in order as a learner does (select it, Shift+Enter), each to completion
        (its prompt shows ``[n]:``), so that an error in one cell does not abort the next; return seconds per cell."""
        seconds = []
        for i in range(self.n_cells):
            cell = self.cells.nth(i)
            cell.locator(".jp-InputPrompt").first.click()
            self.page.keyboard.press("Shift+Enter")
            prompt = cell.locator(".jp-InputPrompt").first
            seconds.append(self.wait(lambda: re.fullmatch(r"\[\d+\]:", prompt.inner_text().strip()) is not None,
                                     timeout_s, lambda: f"{self.label}: cell {i} did not finish; it shows:\n"
                                                        f"{cell.inner_text()[-2000:]}"))
        return seconds

    def shot(self, target, state: str) -> str:
        path = self.out / f"{self.label}-{state}.png"
        target.screenshot(path=str(path))
        self.screenshots.append(path.name)
        return path.name

    # --- the widget ------------------------------------------------------------------------

    def widget_cell(self):
        return self.cells.nth(self.n_cells - 1)

    def slider(self, description: str, timeout_s: float = 60):
        """The ``.widget-slider`` whose description is ``description``, in the widget cell."""
        cell = self.widget_cell()
        label = cell.locator(".widget-slider .widget-label", has_text=description)
        label.first.wait_for(timeout=timeout_s * 1000)
        slider = cell.locator(".widget-slider", has=self.page.locator(".widget-label", has_text=description))
        assert slider.count() == 1, f"{self.label}: {slider.count()} sliders labelled {description!r}, expected 1"
        return slider

    def plot_src(self) -> str | None:
        img = self.widget_cell().locator(PLOT)
        return img.first.get_attribute("src") if img.count() else None

    def plot_ok(self) -> bool:
        """An <img> is displayed in the widget output and decoded to a real picture (> 200 px wide)."""
        return bool(self.widget_cell().locator(PLOT).evaluate_all(
            "els => els.some(e => e.complete && e.naturalWidth > 200 && e.offsetParent !== null)"))

    def arm_probe(self) -> None:
        self.page.evaluate(PROBE_JS, [self.widget_cell().element_handle(), PLOT])

    def settle(self, timeout_s: float, quiet_s: float = 0.6) -> None:
        """Wait until the kernel is idle and the plot has not changed for ``quiet_s``."""
        def quiet():
            images = self.page.evaluate("window.__courseProbe.images")
            last = images[-1]["t"] if images else 0
            return self.lab.kernels_idle() and self.page.evaluate("performance.now()") - last > quiet_s * 1000
        self.wait(quiet, timeout_s, f"{self.label}: the widget did not settle")

    def response_ms(self, inputs=("keydown",)) -> float:
        """Input-to-image time of the last move, in ms: the last plot change minus the last input event
        (of the given types) before it, both stamped in the page."""
        probe = self.page.evaluate("window.__courseProbe")
        assert probe["images"], f"{self.label}: the plot never changed after the input"
        t_image = probe["images"][-1]["t"]
        before = [e["t"] for e in probe["inputs"] if e["type"] in inputs and e["t"] <= t_image]
        assert before, f"{self.label}: no {inputs} event before the last plot change"
        return round(t_image - before[-1], 1)

    def before_move(self, slider) -> tuple[str | None, str]:
        """``(plot src, readout text)`` now: call before an input, pass to :meth:`expect_move`."""
        return self.plot_src(), slider.locator(".widget-readout").first.inner_text().strip()

    def expect_move(self, slider, readout: str | None, before_move: tuple, timeout_s: float) -> str:
        """Wait until the readout shows ``readout`` (None: a new value that agrees with the handle's
        aria-valuenow) and the plot's src differs from the one before the input; return the readout text."""
        handle, text = slider.locator(".noUi-handle").first, slider.locator(".widget-readout").first
        old_src, before = before_move

        def agrees_with_handle(shown: str) -> bool:
            # aria-valuenow is rounded (0.55 -> "0.6"): agree to its last decimal, and differ from before
            aria = handle.get_attribute("aria-valuenow") or ""
            decimals = len(aria.partition(".")[2])
            value = readout_value(shown)
            return value is not None and shown != before and abs(value - float(aria)) <= 0.5 * 10 ** -decimals + 1e-9

        def moved():
            shown = text.inner_text().strip()
            want_ok = (shown == readout) if readout is not None else agrees_with_handle(shown)
            return want_ok and self.plot_src() not in (None, old_src) and self.plot_ok()

        try:
            self.wait(moved, timeout_s, "", poll_s=0.05)
        except AssertionError:
            raise AssertionError(f"{self.label}: after the move the readout shows {text.inner_text().strip()!r} "
                                 f"(expected {readout or 'aria-valuenow ' + str(handle.get_attribute('aria-valuenow'))!r}) "
                                 f"and the plot {'changed' if self.plot_src() != old_src else 'did not change'} "
                                 f"within {timeout_s:.0f} s") from None
        return text.inner_text().strip()

    def drag_handle(self, slider, value: float | None) -> None:
        """Drag the slider's handle with the mouse to ``value`` (None: the middle of its range): press on
        the handle, move in 8 steps, release."""
        handle = slider.locator(".noUi-handle").first
        lo, hi = float(handle.get_attribute("aria-valuemin")), float(handle.get_attribute("aria-valuemax"))
        value = (lo + hi) / 2 if value is None else float(value)
        assert lo <= value <= hi, f"drag target {value} outside the slider's range [{lo}, {hi}]"
        track = slider.locator(".noUi-base").first.bounding_box()
        box = handle.bounding_box()
        x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        x1 = track["x"] + track["width"] * (value - lo) / (hi - lo)
        self.page.mouse.move(x0, y)
        self.page.mouse.down()
        self.page.mouse.move(x1, y, steps=8)
        self.page.mouse.up()

