"""Run a learner's Jupyter kernel inside a bubblewrap sandbox with hard limits.

Why: nbgrader executes a submission's code with the grader's own permissions (its docs say
so), so a kernel could rewrite the gradebook, read hidden tests, or leave daemons behind.
Here the *kernel* (not the grader) runs under `bubblewrap <https://github.com/containers/bubblewrap>`_
(``bwrap``; Debian/Ubuntu package ``bubblewrap``; chosen over a PyPI wheel because the distro
binary is maintained, security-patched and is what Flatpak uses), wrapped in ``prlimit`` and,
when the grader is root, ``setpriv`` (both util-linux). Per job:

* no network: its own network namespace; nbclient talks to it over ZMQ **ipc** sockets in the
  job's ``ipc`` folder (the only host folder it shares besides its scratch);
* read-only views of the system (``/usr``, selected ``/etc`` files), the Python environment,
  the ``course`` package and the course cache; a private writable scratch folder as ``$HOME``
  and working directory (``/home/learner``), a private ``/tmp`` (tmpfs of ``tmp_bytes``); no
  view of ``source/``, the gradebook, other submissions, the instructor's home or the repository;
* its own PID namespace (``/proc`` shows only the job; every process it starts, daemons
  included, is killed when the kernel ends: bwrap's PID 1 exits and ``--die-with-parent``);
* limits (``prlimit``): address space per process (``memory_bytes``), processes of the job's
  user (``processes``; as root each job runs as its own unprivileged uid, so the count is per
  job), CPU seconds per process, largest file; the scratch folder's total size is watched by the
  job (:mod:`autograder.job`), the wall clock per cell is nbgrader's ``Execute.timeout`` and per
  notebook the job's deadline;
* GPUs: ``/dev/nvidia*`` and ``/dev/dri`` are passed through when present, nothing else of ``/dev``.

Public API: :class:`Limits`, :func:`check_available`, :func:`kernel_command`,
:class:`SandboxedKernelManager`.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from course.env import ENV  # torch-free: nothing heavy loads before every kernel

HOME = "/home/learner"  # the scratch folder as the kernel sees it
# /etc entries a Python kernel needs (dynamic linker cache, users, time zone, TLS roots, fonts).
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime",
       "timezone", "ssl", "ca-certificates", "fonts", "mime.types", "alternatives")
# Set for every grading kernel (setdefault semantics): the course's quiet, offline environment
# (course.env.ENV: library chatter and progress bars off stderr, where nbgrader would count them
# as a failed test), and no tqdm bars from learner code either.
KERNEL_ENV = {**ENV, "TQDM_DISABLE": "1"}
# Environment the kernel gets (everything else is cleared: no tokens or paths of the grader leak).
PASSED_ENV = ("COURSE_CACHE", "PYTHONHASHSEED", *KERNEL_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL", "TZ")
FIRST_JOB_UID = 200_000  # unprivileged uids used for kernels when the grader runs as root


@dataclass(frozen=True)
class Limits:
    """Hard limits of one grading job (bytes, seconds, counts).

    Attributes:
        memory_bytes: address space of each kernel process (RLIMIT_AS), default 6 GiB.
        processes: processes and threads the job's user may run at once (RLIMIT_NPROC).
        cpu_seconds: CPU time of each process (RLIMIT_CPU).
        file_bytes: largest file the kernel may write (RLIMIT_FSIZE).
        scratch_bytes: total size of the scratch folder; the job is stopped beyond it.
        tmp_bytes: size of the private ``/tmp`` (tmpfs).
        cell_seconds: wall clock per cell (nbgrader ``Execute.timeout``).
        notebook_seconds: wall clock for the whole notebook; cells after it are not run.
    """

    memory_bytes: int = 6 << 30
    processes: int = 512
    cpu_seconds: int = 4 * 3600
    file_bytes: int = 1 << 30
    scratch_bytes: int = 2 << 30
    tmp_bytes: int = 1 << 30
    cell_seconds: int = 1800
    notebook_seconds: int = 3 * 3600

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name}: expected a positive int, got {value!r}")


def check_available() -> str | None:
    """None if bubblewrap can sandbox a process here, else a one-line reason.

    Runs ``bwrap --unshare-all ... true`` once (about 10 ms); fails e.g. on macOS, without the
    ``bubblewrap`` package, or where user namespaces are disabled.
    """
    tools = {name: shutil.which(name) for name in ("bwrap", "prlimit")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        return (f"{' and '.join(missing)} not found: install bubblewrap and util-linux "
                "(Debian/Ubuntu: apt-get install bubblewrap), or pass --no-sandbox to run learner code unsandboxed")
    probe = [tools["bwrap"], "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc",
             "--dev", "/dev", "true"]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return (f"bubblewrap cannot create a sandbox here ({done.stderr.strip().splitlines()[-1:]}); "
                "enable user namespaces or pass --no-sandbox")
    return None


def _system_binds() -> list[str]:
    """Read-only system folders; merged-/usr symlinks (/bin -> usr/bin) recreated as links."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _python_paths() -> list[str]:
    """Folders of this Python: the environment, its base installation, the real interpreter."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    import course  # the learner-facing helpers (an editable install lives in the repository)

    paths.add(str(Path(course.__file__).resolve().parent))
    return sorted(p for p in paths if p and os.path.isdir(p) and p != "/" and not p.startswith("/usr"))


def _course_cache() -> list[str]:
    from course import cache_root  # not course.lib: that imports torch (seconds per job)

    return [str(Path(cache_root()).resolve())]


def _outermost(paths: list[str]) -> list[str]:
    """``paths`` without those inside another one of them, sorted."""
    paths = sorted(set(paths))
    return [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]


def _parents(path: str, made: set[str]) -> list[str]:
    """``--dir`` arguments creating the missing ancestors of ``path`` world-traversable (bwrap
    would copy the host's modes, and ``/root`` is 0700: the kernel's uid could not pass it)."""
    args = []
    for parent in reversed(Path(path).parents[:-1]):  # outermost first, "/" excluded
        name = str(parent)
        if name not in made and name not in ("/tmp", "/usr", "/etc"):
            made.add(name)
            args += ["--perms", "0755", "--dir", name]
    return args


def job_uid(job_dir: Path) -> int:
    """An unprivileged uid for the job, derived from its folder (root only; 50,000 values)."""
    digest = hashlib.sha256(str(job_dir).encode()).digest()
    return FIRST_JOB_UID + int.from_bytes(digest[:4], "big") % 50_000


def kernel_command(kernel_cmd: list[str], *, scratch: Path, ipc_dir: Path, limits: Limits,
                   env: dict[str, str] | None = None) -> list[str]:
    """The command line that runs ``kernel_cmd`` inside the sandbox.

    Args:
        kernel_cmd: the kernel's own command (``python -m ipykernel_launcher -f <connection>``);
            the connection file must lie in ``ipc_dir``.
        scratch: host folder mounted read-write as ``/home/learner`` (cwd and ``$HOME``).
        ipc_dir: host folder shared read-write at the same path (connection file, ipc sockets).
        limits: the job's :class:`Limits`.
        env: environment to pick :data:`PASSED_ENV` from (default ``os.environ``).
    Returns:
        ``[prlimit ..., (setpriv ... when root), bwrap ..., *kernel_cmd]``.
    Raises:
        FileNotFoundError: ``bwrap``/``prlimit`` missing (see :func:`check_available`).
    """
    env = dict(os.environ if env is None else env)
    bwrap, prlimit = shutil.which("bwrap"), shutil.which("prlimit")
    if not bwrap or not prlimit:
        raise FileNotFoundError("bwrap or prlimit not found (apt-get install bubblewrap)")
    cmd = [prlimit, f"--as={limits.memory_bytes}", f"--nproc={limits.processes}",
           f"--cpu={limits.cpu_seconds}", f"--fsize={limits.file_bytes}", "--core=0", "--"]
    as_root = os.geteuid() == 0
    if as_root:  # bwrap mounts as root (it can read root-only folders), then the kernel drops to its own uid
        uid = job_uid(ipc_dir)
        for path in (scratch, ipc_dir):
            os.chown(path, uid, uid)
        cmd += [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:  # unprivileged: a user namespace too
        cmd += [bwrap, "--unshare-all"]
    cmd += ["--die-with-parent", "--new-session", "--hostname", "sandbox", *_system_binds(),
            "--proc", "/proc", "--dev", "/dev",  # a private /dev; its /dev/shm bounded like /tmp
            "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm",
            # /tmp before the binds: a repository or job folder under /tmp is mounted on top of it
            "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    for device in sorted(glob.glob("/dev/nvidia*")) + ["/dev/dri"]:
        cmd += ["--dev-bind-try", device, device]
    made: set[str] = set()
    for path in _outermost(_python_paths() + _course_cache()):
        cmd += _parents(path, made) + ["--ro-bind-try", path, path]
    cmd += [*_parents(HOME, made), "--bind", str(scratch), HOME,
            *_parents(str(ipc_dir), made), "--bind", str(ipc_dir), str(ipc_dir),
            "--chdir", HOME, "--clearenv",
            "--setenv", "HOME", HOME, "--setenv", "PATH", f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
            "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib", "--setenv", "PYTHONNOUSERSITE", "1"]
    for name in PASSED_ENV:
        if name in env:
            cmd += ["--setenv", name, env[name]]
    cmd.append("--")
    if as_root:  # no groups, no capabilities, no new privileges: an ordinary user inside the sandbox
        cmd += [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return cmd + kernel_cmd


class SandboxedKernelManager(AsyncKernelManager):
    """A jupyter_client kernel manager that starts the kernel under :func:`kernel_command`.

    Set the class attributes ``scratch``, ``ipc_dir`` and ``limits`` before nbgrader's
    Execute preprocessor creates it (``Execute.kernel_manager_class``; :mod:`autograder.job`
    does). Transport is ZMQ ``ipc`` (sockets in ``ipc_dir``), so the kernel needs no network;
    interrupts go as ``interrupt_request`` messages (signals cannot cross bwrap's session).
    """

    scratch: Path | None = None
    ipc_dir: Path | None = None
    limits: Limits = Limits()

    def __init__(self, **kwargs):
        if self.ipc_dir is None or self.scratch is None:
            raise RuntimeError("SandboxedKernelManager: set scratch and ipc_dir before use")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", str(Path(self.ipc_dir) / "kernel.json"))
        super().__init__(**kwargs)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if os.geteuid() == 0 and os.path.exists(self.connection_file):
            uid = job_uid(Path(self.ipc_dir))
            os.chown(self.connection_file, uid, uid)  # the kernel (its own uid) must read its key
        return kernel_command(cmd, scratch=Path(self.scratch), ipc_dir=Path(self.ipc_dir), limits=self.limits)

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt by message (ipykernel then signals itself inside the sandbox)."""
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel
