"""``python run.py ...`` as a process of its own, forked from a warm one.

Every cold ``python run.py`` spends about 7 s of a 2-core machine importing torch, Lightning
(which imports torchmetrics, torchvision and torch._dynamo) and timm before it reads its first
override; the README's commands are two dozen of them. A *zygote* (as multiprocessing's
forkserver and Android's app start do it) imports those libraries once per test worker and then
forks one child per command. The child is a real process: its own pid and exit status, its own
stdout and stderr (files, read back as text), its own working directory, environment and
``sys.argv``, signals and timeouts as for any process; it runs ``run.py`` as ``__main__`` from
the top (our own code is imported fresh in every child: the zygote never imports ``mask_cls``),
then Python's exit handlers (logging's flush, wandb's and MLflow's ends) and exits with the code.
A command that itself starts ``python run.py`` (``task=confirm``'s jobs) asks the zygote, over a
Unix socket, for a child of its own: a sibling forked from the same clean, warm process.

What it does not show, and where tests keep a cold ``python run.py`` (``run_cli(...,
in_process=False)``): the import time itself (the first line's timing), Python's warnings
printed at start (``PYTHONWARNINGS`` other than ``ignore``), and settings a library reads only
while it is imported. ``MASK_CLS_TEST_SUBPROCESS=1`` starts every command cold, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the libraries every run.py imports, loaded once by the zygote (never our own code)
PRELOAD = ("torch", "torchvision", "lightning.pytorch", "timm", "hydra", "omegaconf", "numpy", "pandas",
           "PIL.Image", "sklearn.metrics", "matplotlib")


def _child(request: dict, inherited: list[int]) -> None:
    """In the forked child: become ``python run.py *argv`` in ``cwd`` with ``env``; never returns.
    ``inherited``: the zygote's sockets, closed here (the child asks for its own children anew)."""
    code = 1
    try:
        for fd in inherited:
            os.close(fd)
        os.setpgid(0, 0)  # its own group: a timeout stops it and whatever it started
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        import warnings

        import torch

        warnings.simplefilter("ignore")  # PYTHONWARNINGS=ignore, the only value forked commands get
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
        sys.argv[:] = [str(ROOT / "run.py"), *request["argv"]]
        patch = _patched_run(functools.partial(Client.ask, request["socket"]))
        patch.__enter__()  # for the child's life (os._exit below: never left)
        sys.path[0] = str(ROOT)  # as for `python run.py`: the script's folder first
        import runpy

        try:
            runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
            code = 0
        except SystemExit as e:
            from tests.inprocess import exit_status

            code = exit_status(e)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        atexit._run_exitfuncs()  # what an ending interpreter runs: logging's flush, loggers' ends
    except BaseException:  # noqa: BLE001  # as an uncaught exception in a process: traceback, code 1
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def serve(path: str) -> None:
    """The zygote's loop: JSON requests, a line each, on stdin (the test) and on the Unix socket
    ``path`` (its children's own ``python run.py``); each is answered the child's pid, then its
    exit status (as ``subprocess`` gives it: negative for a signal), on the line it came from."""
    import importlib
    import logging

    # run.py imports them after Hydra has set up logging: Lightning, seeing a root handler, then
    # adds none of its own (it would print its INFO lines on the screen, past our filters)
    stand_in = logging.NullHandler()
    logging.getLogger().addHandler(stand_in)
    for name in PRELOAD:
        importlib.import_module(name)
    logging.getLogger().removeHandler(stand_in)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    print(json.dumps({"ready": True}), flush=True)
    lines: dict[int, _Lines] = {0: _Lines(0, lambda m: print(json.dumps(m), flush=True))}
    waiting: dict[int, Callable[[dict], None]] = {}  # a running child's pid: where its status goes
    while 0 in lines or waiting:
        ready, _, _ = select.select([listener, *lines], [], [], 0.05)
        for fd in ready:
            if fd is listener:
                conn, _ = listener.accept()
                lines[conn.fileno()] = _Lines(conn.fileno(), _sender(conn), conn)
                continue
            requests = lines[fd].read()
            if requests is None:
                lines.pop(fd).close()
            for request in requests or ():
                pid = os.fork()
                if pid == 0:
                    _child({**request, "socket": path}, [listener.fileno(), *(f for f in lines if f)])
                lines[fd].reply({"pid": pid})
                waiting[pid] = lines[fd].reply
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            waiting.pop(pid)({"code": os.waitstatus_to_exitcode(status)})


class _Lines:
    """One requester of the zygote: its JSON lines read as they come, replies sent back."""

    def __init__(self, fd: int, reply: Callable[[dict], None], conn: socket.socket | None = None) -> None:
        self.fd, self.reply, self.conn, self.buffer = fd, reply, conn, b""

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[dict] | None:
        """The whole lines that arrived; None at the end of the stream."""
        data = os.read(self.fd, 1 << 16)
        if not data:
            return None
        *whole, self.buffer = (self.buffer + data).split(b"\n")
        return [json.loads(line) for line in whole if line.strip()]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _sender(conn: socket.socket) -> Callable[[dict], None]:
    def send(message: dict) -> None:
        with contextlib.suppress(OSError):  # the asking child is gone: nobody to tell
            conn.sendall((json.dumps(message) + "\n").encode())
    return send


class _Asker:
    """Asks a zygote for a child per command: one JSON line out, the pid and the status back."""

    fd: int  # where the answers come from
    buffer = b""  # what was read past the last whole line (the pid and the status can come in one read)

    def _send(self, line: str) -> None:
        raise NotImplementedError

    def _read(self, timeout: float) -> dict:
        """The next answer, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            data = os.read(self.fd, 1 << 16) if ready else b""
            if not data:
                raise RuntimeError("the test zygote stopped answering")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            self._send(json.dumps({"argv": argv, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err)}))
            pid = self._read(60)["pid"]
            try:
                code = self._read(timeout)["code"]
            except RuntimeError:
                with contextlib.suppress(ProcessLookupError):  # (it may have ended just now)
                    os.killpg(pid, signal.SIGKILL)
                self._read(60)
                raise subprocess.TimeoutExpired(["run.py", *argv], timeout) from None
            return subprocess.CompletedProcess([sys.executable, "run.py", *argv], code,
                                               out.read_text(errors="replace"), err.read_text(errors="replace"))


class Zygote(_Asker):
    """One warm process per test worker; ``run`` forks a child of it for each command."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}
        self.folder = tempfile.TemporaryDirectory(prefix="zygote")  # its socket: a short path (108 bytes at most)
        path = os.path.join(self.folder.name, "s")
        self.proc = subprocess.Popen([sys.executable, "-c", f"from tests.forked import serve; serve({path!r})"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()  # read raw (tests/forked.py's own lines), never through the text wrapper
        self._read(600)

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.folder.cleanup()


class Client(_Asker):
    """In a child: the zygote's socket, for a ``python run.py`` the child itself starts."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.fd = self.sock.fileno()

    def _send(self, line: str) -> None:
        self.sock.sendall((line + "\n").encode())

    @classmethod
    def ask(cls, path: str, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        """``python run.py *argv`` as a sibling: one connection, closed after the answer."""
        client = cls(path)
        try:
            return client.run(argv, cwd, env, timeout)
        finally:
            client.sock.close()


_zygote: Zygote | None = None
#: commands that stay cold: their processes (DDP ranks, launchers' jobs) start from ``sys.argv``
#: (``task.launcher=`` is not one: ``task=confirm`` starts its ``-m`` sweeps with argv of its own)
COLD = ("trainer=ddp", "trainer.strategy=", "trainer.num_nodes=", "trainer.devices=", "hydra/launcher=")


def wanted(overrides: tuple[str, ...] | list[str]) -> bool:
    """Whether a forked child can stand in for a cold ``python run.py``: not for DDP or a launcher
    (they start processes of their own from ``sys.argv`` and pickle the task function)."""
    return not any(o.startswith(c) for o in overrides for c in COLD)


def run_forked(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """``python run.py *argv`` in ``cwd`` with ``env`` as a forked child of this worker's zygote
    (started on first use); cold ``python run.py`` where the zygote cannot stand in (see above)."""
    global _zygote
    from tests import slow_marks

    slow_marks.require_slow("run.py")
    if os.environ.get("MASK_CLS_TEST_SUBPROCESS") == "1" or env.get("PYTHONWARNINGS") != "ignore":
        return subprocess.run([sys.executable, str(ROOT / "run.py"), *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    if _zygote is None or not _zygote.alive():
        _zygote = Zygote()
        atexit.register(_zygote.close)
    return _zygote.run(argv, cwd, env, timeout)


def _run_py(cmd: object, cwd: object) -> list[str] | None:
    """The overrides of ``[python, run.py, *overrides]`` (run.py this repository's), else None."""
    if isinstance(cmd, (list, tuple)) and len(cmd) > 1 and str(cmd[0]) == sys.executable \
            and (Path(str(cwd or os.getcwd())) / str(cmd[1])).resolve() == ROOT / "run.py":
        return [str(c) for c in cmd[2:]]
    return None


def _deliver(r: subprocess.CompletedProcess, kwargs: dict) -> subprocess.CompletedProcess:
    """The child's output where the caller sent it: a file (``stdout=f``, ``stderr=STDOUT`` joins
    them), captured (``capture_output``, ``PIPE``; bytes unless ``text``), or nowhere it would see."""
    out, err = kwargs.get("stdout"), kwargs.get("stderr")
    if hasattr(out, "write"):
        out.write(r.stdout + (r.stderr if err == subprocess.STDOUT else ""))
        out.flush()
    if hasattr(err, "write"):
        err.write(r.stderr)
        err.flush()
    captured = kwargs.get("capture_output") or out == subprocess.PIPE or err == subprocess.PIPE
    text = kwargs.get("text") or kwargs.get("universal_newlines") or kwargs.get("encoding")
    if not captured:
        return subprocess.CompletedProcess(r.args, r.returncode, None, None)
    return r if text else subprocess.CompletedProcess(r.args, r.returncode, r.stdout.encode(), r.stderr.encode())


@contextlib.contextmanager
def _patched_run(runner: Callable[..., subprocess.CompletedProcess]) -> Iterator[None]:
    """Within: a ``subprocess.run`` of ``python run.py ...`` is ``runner(argv, cwd, env, timeout)``
    (a forked child), with ``PYTHONWARNINGS=ignore``, its output where the caller asked and
    ``check=True`` raising as it would; every other command starts as before."""
    real = subprocess.run

    def run(cmd, *args, check=False, cwd=None, env=None, timeout=None, **kwargs):  # type: ignore[no-untyped-def]
        overrides = _run_py(cmd, cwd)
        if overrides is None or not wanted(overrides) or args:
            return real(cmd, *args, check=check, cwd=cwd, env=env, timeout=timeout, **kwargs)
        env = {**(os.environ if env is None else env), "PYTHONWARNINGS": "ignore"}
        r = _deliver(runner(overrides, Path(cwd or os.getcwd()), env, timeout or 900), kwargs)
        if check and r.returncode:
            raise subprocess.CalledProcessError(r.returncode, cmd, r.stdout, r.stderr)
        return r

    subprocess.run = run  # type: ignore[assignment]
    try:
        yield
    finally:
        subprocess.run = real


def run_py_forked() -> contextlib.AbstractContextManager[None]:
    """Within: a ``subprocess.run`` of ``python run.py ...`` in the test process (a benchmark
    script's commands) is a forked child of this worker's zygote."""
    return _patched_run(run_forked)
