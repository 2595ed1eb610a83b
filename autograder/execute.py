"""nbgrader's Execute preprocessor, hardened for untrusted notebooks.

:class:`GuardedExecute` replaces ``nbgrader.preprocessors.Execute`` in autograding (see
:mod:`autograder.job`). On top of it:

* **A dead kernel costs only the cells after it.** nbclient raises ``DeadKernelError`` when the
  kernel exits (``os._exit``, killed, out of memory) and nbgrader then fails the whole notebook
  (no grade, no feedback). Here the cell that killed it and every later code cell get an error
  output instead ("not run"), so earlier cells keep their points and feedback is written.
* **A deadline for the notebook** (``notebook_seconds``); later cells are not run.
* **Outputs are capped** (``max_output_bytes`` per cell, a note says where it was cut).
* **The scratch folder's size is watched** (``scratch`` / ``scratch_bytes``): beyond it the
  kernel is killed.
* **Tamper probes.** In-kernel tampering can't be prevented in nbgrader's model (the tests run in
  the learner's kernel), so it is detected: before the first cell and after every graded test
  cell the grader runs a silent probe in the kernel (not stored in the notebook or history). It
  must fail with an ``AssertionError`` carrying a fresh nonce; its message is a fingerprint of
  the machinery the tests rely on (IPython's AST/input transformers, event callbacks, the shell's
  run/traceback methods, ``ExecutionResult.success``, ``sys.excepthook``, builtins, ``math.isclose``,
  ``numpy.testing``, ``torch.allclose`` ...). A probe reported as success (exceptions swallowed)
  or a fingerprint that differs from the first one flags the submission for review
  (:func:`tamper_reasons`). A targeted attack on the probe itself is not ruled out: the flag is
  a reason for a human to look, and the probe code is short so a reviewer can judge.

The run's findings go to ``report_path`` as JSON: ``{"probes": [...], "review": [...],
"kernel_died": str|None, "cut_cells": [...], "not_run": int}``.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from autograder.feedback import is_test_cell

PROBE_TIMEOUT = 60  # seconds a probe may take before it counts as unanswered
# Names a value test may call to convert or compare (a learner's global of that name would shadow it).
CONVERTERS = ("float", "int", "bool", "str", "isinstance", "type", "len", "abs", "round", "AssertionError",
              "math", "np", "numpy", "torch")
BUILTINS = ("float", "int", "bool", "str", "isinstance", "type", "len", "abs", "round", "all", "any", "sum",
            "min", "max", "sorted", "repr", "print", "AssertionError", "Exception", "BaseException",
            "__import__", "exec", "eval", "compile", "getattr", "setattr", "hasattr", "id", "hash")
HELPERS = (("math", "isclose"), ("numpy", "allclose"), ("numpy", "isclose"), ("numpy", "array_equal"),
           ("numpy.testing", "assert_allclose"), ("numpy.testing", "assert_array_equal"),
           ("numpy.testing", "assert_equal"), ("torch", "allclose"), ("torch", "equal"), ("torch", "isclose"),
           ("torch.testing", "assert_close"), ("pandas.testing", "assert_frame_equal"))
SHELL_METHODS = ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell", "transform_ast",
                 "showtraceback", "_showtraceback", "showsyntaxerror", "should_run_async", "ex", "ev")

PROBE = '''
def _course_probe_NONCE():
    import builtins, json, sys
    from IPython.core.interactiveshell import ExecutionResult
    ip = get_ipython()

    def name(f):
        f = getattr(f, "__func__", f)
        if not hasattr(f, "__qualname__"):  # an instance (e.g. an ast.NodeTransformer): its class
            f = type(f)
        return "%s.%s" % (getattr(f, "__module__", None), f.__qualname__)

    def helper(module, attr):
        if module not in sys.modules:
            return None
        return name(getattr(sys.modules[module], attr, None))

    success = vars(ExecutionResult).get("success")
    fp = {
        "ast": [name(t) for t in ip.ast_transformers],
        "input": [name(t) for t in list(ip.input_transformers_post) + list(ip.input_transformers_cleanup)],
        "events": {ev: [name(cb) for cb in cbs] for ev, cbs in sorted(ip.events.callbacks.items())},
        "shell": {m: name(getattr(ip, m, None)) for m in SHELL_METHODS},
        "result": [name(success.fget) if isinstance(success, property) else repr(success),
                   name(vars(ExecutionResult).get("raise_error"))],
        "excepthook": name(sys.excepthook),
        "builtins": {b: id(getattr(builtins, b, None)) for b in BUILTINS},
        "shadowed": sorted(n for n in CONVERTERS if n in ip.user_ns and not (
            n in ("math", "np", "numpy", "torch") and getattr(ip.user_ns[n], "__name__", "") in ("math", "numpy", "torch"))),
        "helpers": {m + "." + a: helper(m, a) for m, a in HELPERS},
    }
    raise AssertionError("course-probe-NONCE " + json.dumps(fp, sort_keys=True))

try:
    _course_probe_NONCE()
finally:
    del _course_probe_NONCE
'''


def probe_code(nonce: str) -> str:
    """The probe's source for one nonce (constants inlined: the kernel imports nothing of ours)."""
    consts = {"SHELL_METHODS": SHELL_METHODS, "BUILTINS": BUILTINS, "CONVERTERS": CONVERTERS, "HELPERS": HELPERS}
    body = PROBE.replace("NONCE", nonce)
    for key, value in consts.items():
        body = body.replace(key, repr(value))
    return body


def _defined_in_notebook(qualified: str | None) -> bool:
    """True for a function/class name that comes from learner code (``__main__``, lambdas)."""
    return qualified is None or qualified.startswith(("__main__.", "None.")) or "<lambda>" in qualified


def tamper_reasons(baseline: dict, current: dict | None, where: str) -> list[str]:
    """Why ``current`` (a probe's fingerprint after ``where``) shows tampering, compared with
    the ``baseline`` taken before the first cell; None means the probe did not fail as it must.

    Returns human-readable reasons (empty: nothing found).
    """
    if current is None:
        return [f"{where}: an exception raised in the kernel was not reported as an error "
                "(exceptions swallowed or execution results forced)"]
    reasons = []
    for key, label in (("ast", "IPython AST transformer"), ("input", "IPython input transformer")):
        added = [t for t in current[key] if t not in baseline[key]]
        reasons += [f"{where}: {label} added ({t})" for t in added]
    for event, callbacks in current["events"].items():
        added = [cb for cb in callbacks if cb not in baseline["events"].get(event, []) and _defined_in_notebook(cb)]
        reasons += [f"{where}: IPython '{event}' event callback defined in the notebook ({cb})" for cb in added]
    for method, qualified in current["shell"].items():
        if qualified != baseline["shell"].get(method) and not qualified.startswith(("IPython.", "ipykernel.")):
            reasons.append(f"{where}: IPython shell method {method} replaced ({qualified})")
    for key, label in (("result", "ExecutionResult patched"),
                       ("excepthook", "sys.excepthook replaced"), ("builtins", "builtins replaced")):
        if current[key] != baseline[key]:
            changed = ([k for k in current[key] if current[key][k] != baseline[key].get(k)]
                       if isinstance(current[key], dict) else [current[key]])
            reasons.append(f"{where}: {label}: {', '.join(map(str, changed))}")
    if current["shadowed"]:
        reasons.append(f"{where}: notebook globals shadow names the tests use: {current['shadowed']}")
    for helper, qualified in current["helpers"].items():
        if qualified is not None and _defined_in_notebook(qualified):
            reasons.append(f"{where}: {helper} replaced by notebook code ({qualified})")
    return reasons


def _error(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _text_size(output) -> int:
    if output.output_type == "stream":
        return len(output.get("text", ""))
    if output.output_type == "error":
        return sum(len(line) for line in output.get("traceback", [])) + len(output.get("evalue", ""))
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in output.get("data", {}).values())


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


class GuardedExecute(Execute):
    """nbgrader's Execute with dead-kernel recovery, a notebook deadline, capped outputs, a
    scratch-size watchdog and tamper probes (see the module docstring)."""

    notebook_seconds = Integer(0, help="Wall clock for the whole notebook (0: none)").tag(config=True)
    max_output_bytes = Integer(2 << 20, help="Output characters kept per cell").tag(config=True)
    scratch = Unicode("", help="The kernel's scratch folder (watched)").tag(config=True)
    scratch_bytes = Integer(0, help="Largest total size of the scratch folder (0: not watched)").tag(config=True)
    report_path = Unicode("", help="Where the JSON report of this run is written").tag(config=True)
    nonce = Unicode("", help="Fresh random text for this run's probes (empty: no probes)").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._report = {"probes": [], "review": [], "kernel_died": None, "cut_cells": [], "not_run": 0}
        self._baseline = None
        self._deadline = time.monotonic() + self.notebook_seconds if self.notebook_seconds else None
        self._stop = threading.Event()
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError as err:  # died between cells (e.g. during shutdown): keep what ran
            self._report["kernel_died"] = self._report["kernel_died"] or f"the kernel died ({err})"
            return self.nb, self.resources
        finally:
            self._stop.set()
            if self.report_path:
                Path(self.report_path).write_text(json.dumps(self._report, indent=1))

    # -- per cell ---------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if self._baseline is None and self.nonce:
            self._start_watchdog()
            self._baseline = self._probe("before the first cell") or {}
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        reason = self._report["kernel_died"] or (
            "the notebook ran out of time" if self._deadline and time.monotonic() > self._deadline else None)
        if reason:
            cell.outputs = [_error("NotRun", f"not run: {reason} before this cell")]
            self._report["not_run"] += 1
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            died = getattr(self, "_killed", None) or "the kernel stopped (it crashed, exited, ran out of memory or was killed)"
            self._report["kernel_died"] = f"{died} in cell {index}"
            cell.outputs = list(cell.get("outputs", [])) + [_error("KernelDied", f"{died} while running this cell")]
            return cell, resources
        except CellTimeoutError:  # interrupted at the time limit, and still no reply: stop the kernel
            self._kill_kernel()
            why = f"the cell ran past its {self.timeout} s limit and did not stop when interrupted"
            self._report["kernel_died"] = f"the kernel was stopped: {why} (cell {index})"
            cell.outputs = list(cell.get("outputs", [])) + [_error("CellTimeoutError", why)]
            return cell, resources
        self._cap_outputs(cell, index)
        if self.nonce and is_test_cell(cell):
            where = f"after test cell '{cell.metadata['nbgrader'].get('grade_id', index)}'"
            current = self._probe(where)
            seen = {reason.split(": ", 1)[1] for reason in self._report["review"]}  # each finding once
            self._report["review"] += [r for r in tamper_reasons(self._baseline, current, where)
                                       if r.split(": ", 1)[1] not in seen]
        return cell, resources

    def _cap_outputs(self, cell, index):
        kept, used = [], 0
        for output in cell.outputs:
            size = _text_size(output)
            if used + size <= self.max_output_bytes:
                kept.append(output)
                used += size
                continue
            room = self.max_output_bytes - used
            if output.output_type == "stream" and room > 0:
                output.text = output.text[:room]
                kept.append(output)
            total = sum(_text_size(o) for o in cell.outputs)
            kept.append(new_output("stream", name="stdout", text=(
                f"\n[output cut by the grader: this cell printed about {total / 2**20:.1f} MB; "
                f"the first {self.max_output_bytes / 2**20:.0f} MB are kept]\n")))
            self._report["cut_cells"].append(index)
            break
        cell.outputs = kept

    # -- probes -----------------------------------------------------------------------
    def _probe(self, where: str) -> dict | None:
        """Run the probe; its fingerprint, or None if it did not fail as it must."""
        if self._report["kernel_died"]:
            return self._baseline
        msg_id = self.kc.execute(probe_code(self.nonce), silent=True, store_history=False)
        deadline = time.monotonic() + PROBE_TIMEOUT
        while True:
            try:
                msg = run_sync(self.kc.shell_channel.get_msg)(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self._report["review"].append(f"{where}: the tamper probe got no reply in {PROBE_TIMEOUT} s")
                return self._baseline
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        prefix = f"course-probe-{self.nonce} "
        self._report["probes"].append({"where": where, "status": content.get("status")})
        if content.get("status") != "error":
            return None
        if not str(content.get("evalue", "")).startswith(prefix):  # it failed, but not as written
            self._report["review"].append(f"{where}: the tamper probe could not run "
                                          f"({content.get('ename')}: {str(content.get('evalue'))[:200]})")
            return self._baseline
        return json.loads(content["evalue"][len(prefix):])

    def _kill_kernel(self):
        """SIGKILL the kernel's process (bwrap: everything in its sandbox dies with it)."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)

    # -- scratch watchdog ----------------------------------------------------------------
    def _start_watchdog(self):
        if not (self.scratch and self.scratch_bytes):
            return

        def watch():
            while not self._stop.wait(1.0):
                used = _folder_bytes(Path(self.scratch))
                if used > self.scratch_bytes:
                    self._killed = (f"the kernel was stopped: its folder grew past "
                                    f"{self.scratch_bytes / 2**20:.0f} MB")
                    self._kill_kernel()
                    return

        threading.Thread(target=watch, name="scratch-watchdog", daemon=True).start()
