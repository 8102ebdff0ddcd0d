"""Structured logs: one JSON object per line on stderr, quiet (WARNING) by default."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "msg", ...extra}``."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line per record, with ``extra=`` fields and any exception text."""
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping: JSON lines on stderr at ``level``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # Faust and aiokafka narrate every rebalance at INFO; keep them at WARNING unless DEBUG.
        "loggers": {
            name: {"level": level if level == "DEBUG" else "WARNING"}
            for name in ("faust", "mode", "aiokafka", "kafka")
        },
    }


def configure_logging(level: str) -> None:
    """Apply :func:`logging_config` to this process."""
    import logging.config

    logging.config.dictConfig(logging_config(level))
