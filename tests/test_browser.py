"""The course's sliders as learners use them: JupyterLab in headless Chromium, driven by Playwright.

Headless notebook runs cannot see what a learner sees (a plot inside a widget rendered as the text
``<Figure size ... with 1 Axes>`` passed every headless test), so these tests open each notebook that
has a widget in a real browser, run its cells in the page, and for each slider check: a plot (<img>)
is shown; moving the slider by keyboard and by mouse drag changes the plot and the readout within a
bounded wait; the blank release notebook shows the widget's one-line message, not a traceback.

Adding a slider = one ``Slider`` entry in ``SLIDERS`` below (fields: tests/browser_support.py).

Speed (the suite must stay under 5 min on 2 cores): the page runs a copy of each notebook that keeps
only the setup cell, the ungraded cells above the widget (exercise answers, the widget's inputs) and
the widget cell; an entry's ``edits`` shrink a slow input (02's sweep runs on 64 sentences, not 400).
The teacher is prepared headless first (``course prepare``: seconds when cached).

Output (for humans, gitignored): ``out/browser/<notebook>[-release]-<state>.png`` and
``out/browser/timings.json`` (input-to-image times in ms, cell run times in s); override the folder
with ``COURSE_BROWSER_OUT``. Needs Debian's chromium at /usr/bin/chromium (``apt-get install chromium``).
Run only these: ``make test-browser``.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course.env import set_environment
from browser_support import CHROMIUM, INSTALL_HINT, ROOT, JupyterLab, NotebookPage, Slider, launch_chromium, \
    prepare_notebook

SLIDERS = [
    Slider("01_distillation", widget="temperature_explorer", description="temperature T",
           keys=(("ArrowRight", "1.5"), ("End", "20.0")), drag=(10.0, "10.0"),
           release_message=("softmax_with_temperature", "not implemented")),
    Slider("02_quantization", widget="bitwidth_explorer", description="bits",
           keys=(("ArrowRight", "5"), ("End", "8")), drag=(3, "3"), toggle="per-channel",
           # the sweep: 64 sentences, not 400, and only the bit-widths this test visits (4 configs, not 14)
           edits=((r"EVAL_N = \d+", "EVAL_N = 64"), (r"for bits in range\(8, 1, -1\):", "for bits in (8, 5, 4, 3):")),
           release_message=("qparams_asymmetric", "not implemented")),
]
if (ROOT / "source" / "03_pruning").is_dir():  # the sparsity slider: readouts default to the handle's aria-valuenow
    SLIDERS.append(Slider("03_pruning", widget="sparsity_explorer", description="sparsity", toggle="local",
                          skip=("SENSITIVITY = ",),                # per-kind sweep: not an input of the widget
                          # its sparsity sweep: 64 sentences, 3 sparsities (6 evaluations, not 10)
                          edits=((r"EVAL_N = \d+", "EVAL_N = 64"), (r"SPARSITIES = \([^)]*\)", "SPARSITIES = (0.0, 0.5, 0.9)")),
                          release_message=("not implemented",)))

MOVE_TIMEOUT_S = 30      # one move: input -> new image + readout (measured 0.2-0.9 s in 01/02, 2.7-4.4 s in 03, loaded 2 cores)
CELL_TIMEOUT_S = 300     # one cell of a prepared notebook
OUT = Path(os.environ.get("COURSE_BROWSER_OUT", ROOT / "out" / "browser"))

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report():
    """Timings of this run, written to OUT/timings.json at the end."""
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    data = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "sliders": {}}
    start = time.monotonic()
    yield data
    data["suite_wall_s"] = round(time.monotonic() - start, 1)
    (OUT / "timings.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"browser suite: {data['suite_wall_s']} s; timings in {OUT / 'timings.json'}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, report):
    """Prepared teacher (headless, seconds when cached), then one JupyterLab server for the module."""
    env = set_environment({"COURSE_CACHE": os.environ.get("COURSE_CACHE", str(ROOT / ".cache" / "course"))})
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "course", "prepare"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, f"course prepare failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    report["prepare_s"] = round(time.monotonic() - start, 1)
    root = tmp_path_factory.mktemp("lab-root")
    with JupyterLab(root, tmp_path_factory.mktemp("lab-state"), env) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise AssertionError(f"playwright is not installed ({error}): run `make setup` "
                             "(requirements.lock pins it)") from None
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()
    lab.shutdown_kernels()


def open_prepared(page, lab, slider: Slider, kind: str) -> tuple[NotebookPage, list[float]]:
    label = slider.notebook if kind == "source" else f"{slider.notebook}-release"
    name = f"{label}.ipynb"
    kept = prepare_notebook(slider, kind, lab.root / name)
    nb = NotebookPage(page, lab, OUT, label)
    nb.open(name, len(kept))
    return nb, nb.run_cells(CELL_TIMEOUT_S)


def test_debian_chromium_is_installed():
    assert CHROMIUM.exists(), f"{CHROMIUM} not found. {INSTALL_HINT}"


@pytest.mark.parametrize("slider", SLIDERS, ids=lambda s: s.notebook)
def test_slider_responds_in_jupyterlab(page, lab, report, slider):
    """Solved notebook: a plot is shown; keyboard, drag (and toggle) each change the plot and readout."""
    nb, cell_s = open_prepared(page, lab, slider, "source")
    widget = nb.slider(slider.description, timeout_s=MOVE_TIMEOUT_S)
    nb.wait(nb.plot_ok, MOVE_TIMEOUT_S, lambda: f"{slider.notebook}: no <img> plot in the widget output; it shows:\n"
                                                 f"{nb.widget_cell().inner_text()[-1500:]}")
    assert "<Figure size" not in nb.widget_cell().inner_text(), "the figure is shown as text, not as an image"
    errors = [t.strip() for t in nb.widget_cell().locator(".course-widget-message").all_inner_texts() if t.strip()]
    assert not errors, f"{slider.notebook}: the solved notebook's widget shows an error line: {errors}"
    nb.shot(nb.widget_cell(), "initial")
    times = {"cells_s": [round(s, 1) for s in cell_s], "keyboard_ms": {}, "drag_ms": None, "toggle_ms": None}
    report["sliders"][slider.notebook] = times   # filled in as the test goes (kept if it fails)
    nb.arm_probe()
    handle = widget.locator(".noUi-handle").first
    for key, readout in slider.keys:
        before = nb.before_move(widget)
        handle.focus()
        page.keyboard.press(key)
        shown = nb.expect_move(widget, readout, before, MOVE_TIMEOUT_S)
        nb.settle(MOVE_TIMEOUT_S)
        times["keyboard_ms"][f"{key} -> {shown}"] = nb.response_ms(("keydown",))
        nb.shot(nb.widget_cell(), f"key-{key}")
    before = nb.before_move(widget)
    value, readout = slider.drag
    nb.drag_handle(widget, value)
    shown = nb.expect_move(widget, readout, before, MOVE_TIMEOUT_S)
    nb.settle(MOVE_TIMEOUT_S)
    times["drag_ms"] = nb.response_ms(("pointermove", "pointerup"))
    times["drag_readout"] = shown
    nb.shot(nb.widget_cell(), "drag")
    if slider.toggle:
        old = nb.plot_src()
        button = nb.widget_cell().get_by_role("button", name=slider.toggle, exact=True)
        assert button.count() == 1, f"{slider.notebook}: no toggle button {slider.toggle!r}"
        button.click()
        nb.wait(lambda: nb.plot_src() not in (None, old) and nb.plot_ok(), MOVE_TIMEOUT_S,
                f"{slider.notebook}: clicking {slider.toggle!r} did not change the plot")
        nb.settle(MOVE_TIMEOUT_S)
        times["toggle_ms"] = nb.response_ms(("click",))
        nb.shot(nb.widget_cell(), f"toggle-{slider.toggle}")
    times["screenshots"] = nb.screenshots
    print(f"{slider.notebook}: {json.dumps(times)}")


@pytest.mark.parametrize("slider", SLIDERS, ids=lambda s: s.notebook)
def test_blank_release_slider_shows_one_line(page, lab, report, slider):
    """Release notebook, exercises blank: the widget shows its one-line message, no traceback."""
    nb, cell_s = open_prepared(page, lab, slider, "release")
    cell = nb.widget_cell()
    message = cell.locator(".course-widget-message")
    nb.wait(lambda: message.count() and message.first.inner_text().strip(), MOVE_TIMEOUT_S,
            lambda: f"{slider.notebook} (release): no .course-widget-message text in the widget cell; it shows:\n"
                    f"{cell.inner_text()[-1500:]}")
    text = message.first.inner_text().strip()
    missing = [part for part in slider.release_message if part not in text.lower()]
    assert not missing, f"{slider.notebook} (release): the message {text!r} does not mention {missing}"
    assert len(text.splitlines()) == 1, f"the message should be one line, got {text!r}"
    shown = cell.locator(".jp-OutputArea").inner_text()
    assert "Traceback" not in shown and "course/lib" not in shown and "Error:" not in shown.replace(text, ""), \
        f"{slider.notebook} (release): the widget cell shows a traceback:\n{shown[-1500:]}"
    assert not cell.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count(), \
        f"{slider.notebook} (release): the widget cell writes to stderr:\n{shown[-1500:]}"
    nb.shot(cell, "message")
    report["sliders"].setdefault(f"{slider.notebook} (release)", {}).update(
        {"message": text, "cells_s": [round(s, 1) for s in cell_s], "screenshots": nb.screenshots})
