"""The package logger: messages go through ``logging``, never ``print``."""

from __future__ import annotations

import logging

logger = logging.getLogger("scdeconv")
