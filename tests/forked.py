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

What it does not show, and where tests keep a cold ``python run.py`` (``run_cli(...,
in_process=False)``): the import time itself (the first line's timing), Python's warnings
printed at start (``PYTHONWARNINGS`` other than ``ignore``), and settings a library reads only
while it is imported. ``MASK_CLS_TEST_SUBPROCESS=1`` starts every command cold, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the libraries every run.py imports, loaded once by the zygote (never our own code)
PRELOAD = ("torch", "torchvision", "lightning.pytorch", "timm", "hydra", "omegaconf", "numpy", "pandas",
           "PIL.Image", "sklearn.metrics", "matplotlib")


def _child(request: dict) -> None:
    """In the forked child: become ``python run.py *argv`` in ``cwd`` with ``env``; never returns."""
    code = 1
    try:
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


def serve() -> None:
    """The zygote's loop: a JSON request a line on stdin; answers the child's pid, then its exit
    status (as ``subprocess`` gives it: negative for a signal)."""
    import importlib
    import logging

    # run.py imports them after Hydra has set up logging: Lightning, seeing a root handler, then
    # adds none of its own (it would print its INFO lines on the screen, past our filters)
    stand_in = logging.NullHandler()
    logging.getLogger().addHandler(stand_in)
    for name in PRELOAD:
        importlib.import_module(name)
    logging.getLogger().removeHandler(stand_in)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)


class Zygote:
    """One warm process per test worker; ``run`` forks a child of it for each command."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}
        self.proc = subprocess.Popen([sys.executable, "-c", "from tests.forked import serve; serve()"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._read(600)

    def _read(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("the test zygote stopped answering")
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        assert self.proc.stdin is not None
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"argv": argv, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err)}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
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

    def close(self) -> None:
        if self.alive():
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_zygote: Zygote | None = None
#: commands that stay cold: their processes (DDP ranks, launchers' jobs) start from ``sys.argv``
COLD = ("trainer=ddp", "trainer.strategy=", "trainer.num_nodes=", "trainer.devices=", "task.launcher=",
        "hydra/launcher=")


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
def run_py_forked() -> Iterator[None]:
    """Within: a ``subprocess.run`` of ``python run.py ...`` (a benchmark script's commands, run in
    the test process) is a forked child; its warnings are not printed (``PYTHONWARNINGS=ignore``),
    its output goes where the caller asked, ``check=True`` raises as it would; every other command
    starts as before."""
    real = subprocess.run

    def run(cmd, *args, check=False, cwd=None, env=None, timeout=None, **kwargs):  # type: ignore[no-untyped-def]
        overrides = _run_py(cmd, cwd)
        if overrides is None or not wanted(overrides) or args:
            return real(cmd, *args, check=check, cwd=cwd, env=env, timeout=timeout, **kwargs)
        env = {**(os.environ if env is None else env), "PYTHONWARNINGS": "ignore"}
        r = _deliver(run_forked(overrides, Path(cwd or os.getcwd()), env, timeout or 900), kwargs)
        if check and r.returncode:
            raise subprocess.CalledProcessError(r.returncode, cmd, r.stdout, r.stderr)
        return r

    subprocess.run = run  # type: ignore[assignment]
    try:
        yield
    finally:
        subprocess.run = real
