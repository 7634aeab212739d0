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
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from mlsandbox.errors import InvalidInputError

HIDDEN = "***"
# Query-string keys (or parts of them, split at "-", "_" and ".") that carry a credential: a password
# (libpq and MySQL drivers accept several spellings), a token, a key, a signature (a presigned URL's).
_SECRET_KEYS = {"password", "passwd", "pwd", "sslpassword", "token", "access_token", "key", "api_key", "apikey",
                "secret", "auth", "signature", "sig", "credential"}
_SECRET_KEY_PARTS = re.compile(r"token|secret|passw|signature|credential|api_?key|access_?key")  # client_secret, ...
# A user name alone in a URL is taken for a token, but for the placeholder the hints show.
_PLACEHOLDER_USERS = {"user", "username"}
# ``scheme:/`` too: a URL taken for a path has its ``//`` folded (``https:/user:pw@host/x`` in "no such file").
_SCHEME = r"\b[A-Za-z][A-Za-z0-9+.-]*:/{1,2}"
# ``scheme://user:password@`` or ``scheme://token@`` anywhere in a text (a spec value, a command line,
# a log line); each runs to the host part's last "@", so an unencoded "@" in it is hidden too.
_URL_USERINFO = re.compile(rf"(?P<head>{_SCHEME})(?P<user>[^\s/:?#]*)(?P<password>:[^\s/]*)?@")
# ``user:password@host`` with no scheme (a Ray address, ``user:password@host:port``): the user starts a
# word; not an image pinned to a digest (``python:3.11@sha256:...``).
_BARE_PASSWORD = re.compile(
    r"(?<![\w.%+:/@-])(?P<user>[\w.%+-]+):(?P<password>[^\s/]*)@(?!sha\d+:)(?=\[[0-9A-Fa-f:.]+\]|\w)")
# A URL's query string and fragment, and each ``key=value`` in them; a value ends before the
# punctuation a sentence puts after a URL ("...?token=X: refused").
_URL_QUERY = re.compile(rf"(?P<head>{_SCHEME}[^\s?#]*)(?P<query>[?#]\S*)")
_QUERY_PAIR = re.compile(r"(?P<head>[?&#](?P<key>[^\s=&#?]+)=)(?P<value>[^\s&#]*?)(?=[.,:;)\]}'\"]*(?:[\s&#]|$))")


def _secret_key(key: str) -> bool:
    key = unquote_plus(key).lower()
    return (key in _SECRET_KEYS or _SECRET_KEY_PARTS.search(key) is not None
            or not _SECRET_KEYS.isdisjoint(re.split(r"[-_.]", key)))


def _hide_userinfo(m: re.Match[str]) -> str:
    if m["password"] is not None:
        return f"{m['head']}{m['user']}:{HIDDEN}@"
    return m[0] if m["user"].lower() in _PLACEHOLDER_USERS | {""} else f"{m['head']}{HIDDEN}@"


def _hide_query(m: re.Match[str]) -> str:
    return m["head"] + _QUERY_PAIR.sub(
        lambda p: f"{p['head']}{HIDDEN}" if p["value"] and _secret_key(p["key"]) else p[0], m["query"])


def hide_url_passwords(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden, whatever the URL (a storage, a tracking
    server, a Ray address, with or without a scheme, a database a trainer is given): a password, a
    token given as the user, a credential in the query string; the host and path stay. What any text
    written out goes through."""
    text = _URL_USERINFO.sub(_hide_userinfo, text)
    text = _BARE_PASSWORD.sub(lambda m: f"{m['user']}:{HIDDEN}@", text)
    return _URL_QUERY.sub(_hide_query, text)


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


def _written_secret(url: str) -> str | None:
    """The password as written: between ``user:`` and the last ``@`` of the URL's host part; or, with
    no password, the user (a token), but for a placeholder."""
    userinfo, at, _ = _split(url)[1].rpartition("@")
    if at and ":" in userinfo:
        return userinfo.split(":", 1)[1]
    hidden = at and userinfo and not set("?#") & set(userinfo) and userinfo.lower() not in _PLACEHOLDER_USERS
    return userinfo if hidden else None


def redact(url: str) -> str:
    """The URL with its credentials hidden (:func:`hide_url_passwords`'s, and a password of the
    SQLAlchemy form); a ``user:password@host:port`` address too; other text as is."""
    if "://" not in url:
        return hide_url_passwords(url)
    scheme, netloc, path = _split(url)
    if netloc.count("@") > 1:  # an unencoded "@" in the password: no parser splits it as meant
        userinfo, host = netloc.rsplit("@", 1)
        shown = f"{userinfo.split(':', 1)[0]}:{HIDDEN}" if ":" in userinfo else HIDDEN
        return hide_url_passwords(f"{scheme}://{shown}@{host}{path}")
    parsed = _parse(url)
    if parsed is None:  # not a URL SQLAlchemy parses: show the scheme only
        return f"{scheme}://{HIDDEN}"
    hidden = {k: HIDDEN for k in parsed.query if _secret_key(k)}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    rendered = str(parsed.render_as_string(hide_password=True)).replace(quote(HIDDEN, safe=""), HIDDEN)
    return hide_url_passwords(rendered)  # a token given as the user


def secrets_in(url: str | None) -> list[str]:
    """The credentials a URL (or a ``user:password@host:port`` address) holds, those :func:`redact`
    hides, as written and as decoded (each may turn up in a message)."""
    if not url:
        return []
    found: set[str] = set()
    if "://" in url:
        written, parsed = _written_secret(url), _parse(url)
    else:
        written, parsed = None, None
        for bare in _BARE_PASSWORD.finditer(url):
            found.update([bare["password"], *bare["password"].split("@")])
    if written is not None:  # with an unencoded "@", also each part of it a driver may quote
        found.update([written, *written.split("@")])
    if parsed is not None:
        if parsed.password:
            found.add(str(parsed.password))
        for key, value in parsed.query.items():
            if _secret_key(key):
                found.update([value] if isinstance(value, str) else value)
    for query in _URL_QUERY.finditer(url):  # as written, whatever SQLAlchemy makes of the URL
        found.update(p["value"] for p in _QUERY_PAIR.finditer(query["query"]) if _secret_key(p["key"]))
    for secret in list(found):
        found.update({quote(secret, safe=""), quote_plus(secret), unquote(secret), unquote_plus(secret)})
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
        if any(s in text for s in self.secrets if len(s) >= self.SHORT) or hide_url_passwords(text) != text:
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
    # one scrubber of them all: each hides URL passwords, which would leave an inner one's secret
    # holding a URL unmatched (``pw-https://user:***@host``)
    return Scrubber([secret for scrub in _ACTIVE for secret in scrub.secrets])(text)


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
