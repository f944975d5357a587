"""User-facing errors: run.py prints them as one line and exits non-zero."""


class MaskClsError(Exception):
    """An expected failure the user can fix (bad data, bad config, missing file)."""


class DataError(MaskClsError):
    """The data on disk is not what the layout promises; the message names the file."""


class ConfigError(MaskClsError):
    """A config value is wrong; the message names the key and how to fix it."""


def one_line(exc: BaseException) -> str:
    """The last meaningful line of an error message.

    Errors re-raised from DataLoader workers carry the worker's whole traceback; the user wants
    only the final ``Type: message`` line, without the module path of the type.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    last = lines[-1]
    for prefix in ("mask_cls.errors.DataError: ", "mask_cls.errors.ConfigError: ",
                   "mask_cls.errors.MaskClsError: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last


#: OS errors reported as one line: disk full, read-only file system, over quota
DISK_ERRNOS = {28, 30, 122}  # ENOSPC, EROFS, EDQUOT


def is_expected(exc: BaseException) -> bool:
    """Failures a user fixes (ours, permissions, a full or read-only disk): one line, no traceback."""
    if isinstance(exc, MaskClsError | PermissionError | FileExistsError):
        return True
    return isinstance(exc, OSError) and getattr(exc, "errno", None) in DISK_ERRNOS


def describe(exc: BaseException) -> str:
    """One line for the user: our messages as they are, OS errors with the file they name."""
    if isinstance(exc, OSError) and not isinstance(exc, MaskClsError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{exc.strerror or exc} (check space and permissions of the output folder)"
    return one_line(exc)
