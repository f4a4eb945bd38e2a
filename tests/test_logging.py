"""The ``scdeconv`` logger follows ``sc.settings.verbosity``, prints once, and stays visible to caplog."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from scdeconv._logging import logger, verbosity_level

SESSION = textwrap.dedent(
    """
    import logging, sys
    import scdeconv
    from scdeconv._logging import logger

    logger.info("info before scanpy")
    logger.warning("warning before scanpy")
    print("scanpy imported:", "scanpy" in sys.modules, flush=True)
    import scanpy as sc

    sc.settings.verbosity = "info"  # changed after scdeconv was imported
    logger.info("info at verbosity info")
    logger.debug("debug at verbosity info")
    sc.settings.verbosity = 4
    logger.debug("debug at verbosity 4")
    sc.settings.verbosity = 0
    logger.warning("warning at verbosity 0")
    logger.error("error at verbosity 0")
    sc.settings.verbosity = 2
    logging.basicConfig(format="root: %(message)s")  # an application configures logging
    logger.info("info with a root handler")
    """
)


def test_plain_session_follows_scanpy_verbosity_and_prints_once():
    done = subprocess.run([sys.executable, "-c", SESSION], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "scanpy imported: False"  # nothing of it went to stdout
    assert done.stderr.splitlines() == [
        "WARNING: warning before scanpy",
        "info at verbosity info",
        "    debug at verbosity 4",
        "ERROR: error at verbosity 0",
        "root: info with a root handler",  # the root's handler shows it; ours stays silent
    ]


@pytest.fixture
def verbosity():
    import scanpy as sc

    before = sc.settings.verbosity
    yield sc.settings
    sc.settings.verbosity = before


def test_level_is_read_at_each_message(verbosity):
    for value, level in [(0, logging.ERROR), ("warning", logging.WARNING), (2, logging.INFO), (4, logging.DEBUG)]:
        verbosity.verbosity = value
        assert verbosity_level() == level == logger.getEffectiveLevel()
        assert logger.isEnabledFor(logging.INFO) is (level <= logging.INFO)
    verbosity.verbosity = "hint"
    assert logger.isEnabledFor(logging.INFO) and not logger.isEnabledFor(logging.DEBUG)


def test_caplog_sees_records_at_scanpy_verbosity(verbosity, caplog):
    verbosity.verbosity = "info"
    logger.info("visible at info")
    logger.debug("hidden at info")
    assert [r.getMessage() for r in caplog.records if r.name == "scdeconv"] == ["visible at info"]


def test_an_explicit_level_wins_over_verbosity(verbosity, caplog):
    verbosity.verbosity = 0
    with caplog.at_level(logging.INFO, logger="scdeconv"):
        logger.info("asked for explicitly")
    logger.info("back to verbosity 0")
    assert logger.level == logging.NOTSET
    assert [r.getMessage() for r in caplog.records if r.name == "scdeconv"] == ["asked for explicitly"]


def test_one_package_handler_after_reload():
    import importlib

    import scdeconv._logging as module

    importlib.reload(module)
    assert sum(getattr(h, "_scdeconv", False) for h in logging.getLogger("scdeconv").handlers) == 1
    assert logging.getLogger("scdeconv") is module.logger is logger
