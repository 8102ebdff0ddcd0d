"""Structured logs: one JSON object per line on stderr, quiet (WARNING) by default.

Every line passes through a :class:`Redactor` holding the deployment's secrets (passwords from
the settings, also ones inside URLs), so no log line -- a message, an ``extra`` field, a
library's exception text or a traceback -- shows a secret, at any level.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class Redactor:
    """Masks secrets in text: each given value (also as JSON escapes it) and the password of
    any ``scheme://user:password@host`` URL, known or not."""

    _URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
    MASK = "***"

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for secret in secrets if secret for form in _forms(secret)}
        self._secrets = sorted(forms, key=len, reverse=True)  # longest first: no partial leak

    def __call__(self, text: str) -> str:
        """``text`` with every secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self.MASK)
        return self._URL_PASSWORD.sub(rf"\g<1>{self.MASK}@", text)


#: Secrets given to libraries through the environment rather than the settings (boto3 reads the
#: S3 credentials of the model store there).
ENVIRONMENT_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def environment_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values of :data:`ENVIRONMENT_SECRETS` that are set."""
    env = os.environ if environ is None else environ
    return tuple(env[name] for name in ENVIRONMENT_SECRETS if env.get(name))


def process_redactor(*secrets: Iterable[str]) -> Redactor:
    """The redactor of this process: the given secrets (settings, connections) and those its
    libraries read from the environment."""
    return Redactor([*(s for group in secrets for s in group), *environment_secrets()])


def _forms(secret: str) -> set[str]:
    """The secret as written, and as a JSON string and a Python repr would escape it."""
    return {secret, orjson.dumps(secret).decode()[1:-1], repr(secret)[1:-1]}


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "msg", ...extra}``, secrets masked."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redact = redactor or Redactor()

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
        line = orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        return self._redact(line)


def logging_config(level: str, redactor: Redactor | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping: JSON lines on stderr at ``level``, masked by
    ``redactor`` (at least URL passwords without one)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "redactor": redactor or Redactor()}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # Faust and aiokafka narrate every rebalance at INFO; keep them at WARNING unless DEBUG.
        # kafka-python's selector warns whenever its network thread waited 100 ms for the GIL
        # (the process was busy, e.g. training or printing): nothing an operator can act on.
        "loggers": {
            **{
                name: {"level": level if level == "DEBUG" else "WARNING"}
                for name in ("faust", "mode", "aiokafka", "kafka")
            },
            "kafka.net.selector": {"level": level if level == "DEBUG" else "ERROR"},
        },
    }


def configure_logging(level: str, redactor: Redactor | None = None) -> None:
    """Apply :func:`logging_config` to this process."""
    import logging.config

    logging.config.dictConfig(logging_config(level, redactor))
