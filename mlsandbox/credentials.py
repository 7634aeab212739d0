"""Passwords in URLs, and other secrets: hidden in what is shown, scrubbed from logs and errors.

A study's storage may be a database URL with a password (``postgresql+psycopg2://u:pw@host/db``),
and so may the tracking URI, a Ray address or an argument a trainer is given.
Only :func:`redact`'s form of it is ever logged to MLflow or printed; while a command runs, every
log record and warning is scrubbed of the password (of any URL, and of the secrets the command
knows, such as a trainer's ``env`` values), and an error whose text (or the text of the errors it
came from) holds it is replaced by a scrubbed one, so a traceback cannot show it either. Params,
tags, spec copies and what trainers write go through :func:`scrub_known`.
"""

from __future__ import annotations

import logging
import re
import traceback
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

from mlsandbox.errors import InvalidInputError

HIDDEN = "***"
# Query-string keys that carry a password (libpq and MySQL drivers accept several spellings).
_PASSWORD_KEYS = {"password", "passwd", "pwd", "sslpassword"}
# ``scheme://user:password@`` anywhere in a text (a spec value, a command line, a log line); the
# password runs to the host part's last "@", so an unencoded "@" in it is hidden too.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s/]*@")


def hide_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it hidden, whatever the URL (a storage, a tracking
    server, a Ray address, a database a trainer is given): what any text written out goes through."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{HIDDEN}@", text)


def _parse(url: str) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def _split(url: str) -> tuple[str, str, str]:
    """The scheme, the host part as written (``user:password@host:port``) and the rest."""
    scheme, rest = url.split("://", 1)
    netloc = rest.split("/", 1)[0]
    return scheme, netloc, rest[len(netloc):]


def _written_password(url: str) -> str | None:
    """The password as written: between ``user:`` and the last ``@`` of the URL's host part."""
    userinfo, at, _ = _split(url)[1].rpartition("@")
    return userinfo.split(":", 1)[1] if at and ":" in userinfo else None


def redact(url: str) -> str:
    """The URL with its password (and any password in its query string) hidden; other text as is."""
    if "://" not in url:
        return url
    scheme, netloc, path = _split(url)
    if netloc.count("@") > 1:  # an unencoded "@" in the password: no parser splits it as meant
        user = netloc.split(":", 1)[0]
        return f"{scheme}://{user}:{HIDDEN}@{netloc.rsplit('@', 1)[1]}{path}"
    parsed = _parse(url)
    if parsed is None:  # not a URL SQLAlchemy parses: show the scheme only
        return f"{scheme}://{HIDDEN}"
    hidden = {k: HIDDEN for k in parsed.query if k.lower() in _PASSWORD_KEYS}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return str(parsed.render_as_string(hide_password=True)).replace(quote(HIDDEN, safe=""), HIDDEN)


def secrets_in(url: str | None) -> list[str]:
    """The passwords a URL holds, as written and as decoded (each may turn up in a message)."""
    if not url or "://" not in url:
        return []
    found: set[str] = set()
    written = _written_password(url)
    if written is not None:  # with an unencoded "@", also each part of it a driver may quote
        found.update([written, *written.split("@")])
    parsed = _parse(url)
    if parsed is not None:
        if parsed.password:
            found.add(str(parsed.password))
        for key, value in parsed.query.items():
            if key.lower() in _PASSWORD_KEYS:
                found.update([value] if isinstance(value, str) else value)
    for secret in list(found):
        found.update({quote(secret, safe=""), quote_plus(secret)})
    return sorted((s for s in found if s), key=len, reverse=True)  # longest first: no partial leftovers


class Scrubber:
    """Replaces known secrets in text by ``***``, and the password of any URL (:func:`hide_url_passwords`).

    A secret is replaced wherever it occurs; a short one (under :data:`SHORT` characters) only
    where it stands alone, so that a weak password does not blank out every word holding it.
    """

    SHORT = 6

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        alone = [re.escape(s) for s in self.secrets if len(s) < self.SHORT]
        self._short = re.compile(rf"(?<!\w)(?:{'|'.join(alone)})(?!\w)") if alone else None

    def finds(self, text: str) -> bool:
        if any(s in text for s in self.secrets if len(s) >= self.SHORT) or _URL_PASSWORD.search(text):
            return True
        return self._short is not None and self._short.search(text) is not None

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if len(secret) >= self.SHORT:
                text = text.replace(secret, HIDDEN)
        return hide_url_passwords(self._short.sub(HIDDEN, text) if self._short is not None else text)

    def leaks(self, err: BaseException) -> bool:
        """Whether the error, or an error it was raised from or during, names a secret."""
        seen: set[int] = set()
        current: BaseException | None = err
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if self.finds(f"{current!s} {current!r}"):
                return True
            current = current.__cause__ or current.__context__
        return False

    def clean_error(self, err: Exception) -> Exception:
        """An error safe to raise in place of ``err``: a user error stays one (exit code 2)."""
        message = self(str(err))
        if isinstance(err, InvalidInputError):
            try:
                return type(err)(message)
            except TypeError:  # a subclass with another constructor
                return InvalidInputError(message)
        return RuntimeError(f"{type(err).__name__}: {message}")


#: The scrubbers of the :func:`scrubbed_output` blocks in force, innermost last.
_ACTIVE: list[Scrubber] = []


def scrub_known(text: str) -> str:
    """``text`` without the secrets of every :func:`scrubbed_output` in force, nor any URL's password:
    for what is written to a store (a param, a tag, a run's end reason, a cell's failure, a trainer's
    log) rather than logged."""
    for scrub in _ACTIVE:
        text = scrub(text)
    return hide_url_passwords(text)


@contextmanager
def scrubbed_output(scrub: Scrubber) -> Iterator[None]:
    """While it lasts, log records (message and traceback) and warnings are scrubbed of secrets
    (URL passwords included), and :func:`scrub_known` knows them."""
    _ACTIVE.append(scrub)
    previous_factory = logging.getLogRecordFactory()
    previous_format = warnings.formatwarning

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous_factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it as it would have
            return record
        if scrub.finds(message):
            record.msg, record.args = scrub(message), None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if scrub.finds(text):
                record.exc_text = scrub(text)  # formatters use it instead of formatting exc_info
        return record

    def formatwarning(*args: Any, **kwargs: Any) -> str:
        return scrub(previous_format(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    warnings.formatwarning = formatwarning
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous_factory)
        warnings.formatwarning = previous_format
        _ACTIVE.remove(scrub)
