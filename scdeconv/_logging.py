"""The package logger: messages go through ``logging``, never ``print``, and follow scanpy's verbosity.

scanpy users set ``sc.settings.verbosity`` (0 error, 1 warning, 2 info, 3 hint, 4 debug) and
expect every scanpy-ecosystem package to listen. The ``scdeconv`` logger does, read at each
message (so changing the verbosity later takes effect), without importing scanpy: until scanpy
is imported nobody can have changed its verbosity, and its default (1, warnings) applies.

- **Level.** When the logger has no level of its own (the default), its level is scanpy's
  verbosity. A level set explicitly wins: ``logging.getLogger("scdeconv").setLevel(logging.INFO)``
  (and pytest's ``caplog.at_level(..., logger="scdeconv")``) behave as in any library.
- **Where it is printed.** Records propagate to the root logger as usual, so an application's
  logging configuration (``logging.basicConfig``, the CLI) and pytest's ``caplog`` see them. When
  the root logger has no handler (a plain ``python`` or IPython/Jupyter session), the logger's own
  handler prints the message where scanpy prints its own (``sc.settings.logfile``: standard
  error, or standard output in IPython/Jupyter), formatted as scanpy does (``WARNING: ...``,
  info as the bare message). It stays silent when the root logger has a handler, so no line is
  printed twice.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["logger", "verbosity_level"]

HINT = (logging.INFO + logging.DEBUG) // 2  # scanpy's level between info and debug
# scanpy's verbosity 0..4 as logging levels (scanpy.settings.verbosity.level, where available).
_VERBOSITY_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, HINT, logging.DEBUG)


def verbosity_level() -> int:
    """The logging level of ``scanpy.settings.verbosity`` now; warnings when scanpy is not imported."""
    scanpy = sys.modules.get("scanpy")
    verbosity = getattr(getattr(scanpy, "settings", None), "verbosity", None)
    if verbosity is None:
        return logging.WARNING  # scanpy's default verbosity (1); no one can have changed it yet
    level = getattr(verbosity, "level", None)  # scanpy's Verbosity enum knows its logging level
    if isinstance(level, int):
        return level
    return _VERBOSITY_LEVELS[min(max(int(verbosity), 0), len(_VERBOSITY_LEVELS) - 1)]


def _scanpy_stream() -> TextIO:
    """Where scanpy writes its log: ``sc.settings.logfile``, or scanpy's default before it is imported."""
    scanpy = sys.modules.get("scanpy")
    stream = getattr(getattr(scanpy, "settings", None), "logfile", None)
    if stream is not None:
        return stream
    import builtins

    return sys.stdout if getattr(builtins, "__IPYTHON__", False) else sys.stderr


class _FollowScanpyVerbosity:
    """Mixed into the ``scdeconv`` logger's class: without a level of its own, use scanpy's verbosity."""

    def getEffectiveLevel(self) -> int:
        return self.level or verbosity_level()

    def isEnabledFor(self, level: int) -> bool:
        # No cache (logging caches per level): the verbosity may change between two messages.
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()


class _ScanpyFormatter(logging.Formatter):
    """scanpy's format: info as the bare message, ``--> `` hints, indented debug, ``WARNING: `` otherwise."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO:
            return record.message
        if record.levelno == HINT:
            return f"--> {record.message}"
        if record.levelno <= logging.DEBUG:
            return f"    {record.message}"
        return f"{record.levelname}: {record.message}"


class _ScanpyStreamHandler(logging.StreamHandler):
    """Print where scanpy prints, unless the root logger will show the record anyway."""

    _scdeconv = True  # marks the handler, so that reloading this module does not add a second one

    def emit(self, record: logging.LogRecord) -> None:
        owner = logging.getLogger(record.name)
        if owner.propagate and logging.getLogger().handlers:
            return  # logging is configured (basicConfig, pytest, the CLI): the root's handlers show it
        self.stream = _scanpy_stream()  # looked up now: scanpy's logfile, or a redirected sys.stderr
        super().emit(record)


def _package_logger() -> logging.Logger:
    log = logging.getLogger("scdeconv")
    if not isinstance(log, _FollowScanpyVerbosity):
        log.__class__ = type("ScdeconvLogger", (_FollowScanpyVerbosity, type(log)), {})
    for handler in [h for h in log.handlers if getattr(h, "_scdeconv", False)]:
        log.removeHandler(handler)
    handler = _ScanpyStreamHandler()
    handler.setFormatter(_ScanpyFormatter())
    log.addHandler(handler)
    return log


logger = _package_logger()
