"""``python run.py ...`` inside the test process: the same entry point (``run.check_argv``, the
mode probe, ``@hydra.main`` with its callbacks, the run folder claimed the same way), minus the
start of a new interpreter and the imports of torch, Lightning and timm that every subprocess
pays again (about half of a tiny run's seconds on 2 cores).

What only a process shows stays a process of its own: the README commands as typed and sweeps
forked from a warm process (``tests/forked.py``); signals, launchers, DDP, printed warnings and the
first line's timing cold (``run_cli(..., in_process=False)``). ``MASK_CLS_TEST_SUBPROCESS=1``
runs every command cold again (the old suite, to compare against). The process state a run may
change is put back afterwards: the environment
(Lightning's seed variable), the working directory, ``sys.argv``, the root logger's handlers and
levels, Hydra's global state (its composed config too) and the mode-probe patch, PIL's pixel limit, torch's thread count."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

from tests import forked

ROOT = Path(__file__).resolve().parents[1]

#: what marks a command that needs its own process: a sweep (forked, tests/forked.py), or what
#: starts processes from ``sys.argv`` (cold: forked.COLD)
NEEDS_A_PROCESS = ("-m", "--multirun", "hparams_search=", *forked.COLD)


def wanted(overrides: tuple[str, ...], env: dict[str, str]) -> bool:
    """Whether this command can run in the test process: not a sweep, a launcher or DDP (they start
    processes of their own), and not where Python's warnings are to be printed (in the test process
    pytest records them instead, so a test of what is printed would see none)."""
    if os.environ.get("MASK_CLS_TEST_SUBPROCESS") == "1" or env.get("PYTHONWARNINGS", "ignore") != "ignore":
        return False
    return not any(o == n or o.startswith(n) for o in overrides for n in NEEDS_A_PROCESS)


@contextlib.contextmanager
def _process_state(cwd: Path, env: dict[str, str]):
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from PIL import Image

    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), list(sys.argv)
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_levels = {n: lg.level for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    saved_disabled = {n: lg.disabled for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    saved_probe, saved_pixels = Hydra.get_mode, Image.MAX_IMAGE_PIXELS
    import torch

    saved_threads = torch.get_num_threads()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # type: ignore[assignment]  # else later tests see this run's folder
        Hydra.get_mode = saved_probe
        Image.MAX_IMAGE_PIXELS = saved_pixels
        torch.set_num_threads(saved_threads)
        for h in root.handlers:
            if h not in saved_root[0]:
                with contextlib.suppress(Exception):
                    h.close()
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for n, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.setLevel(saved_levels.get(n, logging.NOTSET))
                lg.disabled = saved_disabled.get(n, False)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv[:] = saved_argv


def exit_status(e: SystemExit) -> int:
    """The status ``sys.exit(x)`` gives a process: x if an int, 0 for None, else 1."""
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


def run_in_process(overrides: tuple[str, ...], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python run.py *overrides`` in ``cwd`` with ``env``, here; its exit status and output."""
    from tests import slow_marks

    slow_marks.require_slow("run.py")
    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with _process_state(cwd, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import run as entry
        from mask_cls.typos import check_argv

        # Hydra finds conf/ beside the file of a task function of ``__main__`` (as when run.py is
        # started); of an imported module ``run`` it would look for a package ``conf``
        entry.main.__wrapped__.__module__ = "__main__"

        sys.argv[:] = [str(ROOT / "run.py"), *overrides]
        try:
            typo = check_argv(list(overrides))
            if typo:
                print(f"error: {typo}", file=sys.stderr)
                code = 1
            else:
                entry.skip_mode_probe(list(overrides))
                entry.main()
        except SystemExit as e:
            code = exit_status(e)
    return subprocess.CompletedProcess([sys.executable, "run.py", *overrides], code, out.getvalue(), err.getvalue())


def run_script(script: Path, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python SCRIPT *args`` (a benchmark script) in the test process, its ``python run.py``
    commands each a process forked from a warm one (``tests/forked.py``); its exit status and what
    it printed. For a script whose subject is what it does with its runs, not how it starts."""
    import runpy

    from tests import slow_marks

    slow_marks.require_slow(script.name)
    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    saved_path = list(sys.path)
    with _process_state(cwd, {**os.environ, **(env or {})}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err), forked.run_py_forked():
        sys.argv[:] = [str(script), *args]
        sys.path.insert(0, str(script.parent))  # as `python SCRIPT`: its folder first
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as e:
            code = exit_status(e)
        finally:
            sys.path[:] = saved_path
    return subprocess.CompletedProcess([sys.executable, str(script), *args], code, out.getvalue(), err.getvalue())
