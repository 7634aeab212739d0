"""Secrets in URLs and a cell's known secrets: hidden in whatever is written or shown."""

from __future__ import annotations

import mlflow
import pytest

from mlsandbox.cluster import check_reachable
from mlsandbox.credentials import Scrubber, hide_url_passwords, redact, scrub_known, secrets_in
from mlsandbox.errors import InvalidInputError, SpecError
from mlsandbox.executors import runners
from mlsandbox.tracking import check_tracking_store


@pytest.mark.parametrize("text, shown", [
    ("--db postgresql://u:S3cret@db:5432/x --lr 1", "--db postgresql://u:***@db:5432/x --lr 1"),
    ("ray://admin:p@ss@10.0.0.1:10001", "ray://admin:***@10.0.0.1:10001"),  # an unencoded "@" in the password
    ("http://u:pw@a/ and https://v:qw@b/", "http://u:***@a/ and https://v:***@b/"),
    ("https://user@host/path:1@x", "https://user@host/path:1@x"),  # no password; a later "@" is in the path
    ("no file at https:/u:S3cret@host/x.yaml", "no file at https:/u:***@host/x.yaml"),  # made a path: "//" folded
    ("a plain text: with colons @ and at signs", "a plain text: with colons @ and at signs"),
    # a Ray address has no scheme: user:password@host:port
    ("RAY_ADDRESS=u:S3cr3tPW@127.0.0.1:1 and 'admin:p@ss@[::1]:10001'",
     "RAY_ADDRESS=u:***@127.0.0.1:1 and 'admin:***@[::1]:10001'"),
    ("at u:S3cr3tPW@head-node (no port)", "at u:***@head-node (no port)"),
    # a token as the URL's only userinfo; "user" (a placeholder in hints) is no secret
    ("http://S3cr3t@TOKEN@127.0.0.1:1/api and git+https://ghp_T0k3n@github.com/o/r.git",
     "http://***@127.0.0.1:1/api and git+https://***@github.com/o/r.git"),
    # credentials in a query string or fragment: the host, path and other parameters stay
    ("store http://127.0.0.1:1/?token=S3cr3tPW: refused", "store http://127.0.0.1:1/?token=***: refused"),
    ("'https://h/p?a=1&Access_Token=x%2Fy&X-Amz-Signature=ab:c&sig=z&API-KEY=k&pwd=&q=2#auth=t'",
     "'https://h/p?a=1&Access_Token=***&X-Amz-Signature=***&sig=***&API-KEY=***&pwd=&q=2#auth=***'"),
    ("unk_token=[UNK] key=value at 10:30, git@github.com:o/r, python:3.11@sha256:0a1b",
     "unk_token=[UNK] key=value at 10:30, git@github.com:o/r, python:3.11@sha256:0a1b"),
    # a URL inside a mapping as Python prints it (a param): its closing quote and brace stay
    ("{'url': 'http://h/x?token=S3cr3tPW'}", "{'url': 'http://h/x?token=***'}"),
])
def test_a_urls_password_is_hidden_wherever_it_stands(text: str, shown: str) -> None:
    assert hide_url_passwords(text) == shown
    assert scrub_known(text) == shown  # what is written to a store, even with no scrubber in force


@pytest.mark.parametrize("url, shown, secret", [
    ("u:S3cr3tPW@127.0.0.1:1", "u:***@127.0.0.1:1", "S3cr3tPW"),
    ("http://S3cr3tTOKEN@127.0.0.1:1", "http://***@127.0.0.1:1", "S3cr3tTOKEN"),
    ("http://127.0.0.1:1/?token=S3cr3t%2FPW", "http://127.0.0.1:1/?token=***", "S3cr3t/PW"),
    ("https://mlflow:5000/x?Api_Key=K3yS3cr3t&page=2", "https://mlflow:5000/x?Api_Key=***&page=2", "K3yS3cr3t"),
])
def test_a_urls_credentials_are_hidden_and_known_to_the_scrubber(url: str, shown: str, secret: str) -> None:
    assert redact(url) == shown
    scrub = Scrubber(secrets_in(url))
    assert secret in scrub.secrets
    said = f"auth failed for {secret!r} at {url}"  # a driver may quote it decoded, outside its URL
    assert scrub.finds(said) and scrub(said) == f"auth failed for '***' at {shown}"


def test_a_tracking_stores_token_is_not_shown_when_it_cannot_be_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)  # what the check sets
    for uri, shown in [("http://127.0.0.1:1/?token=S3cr3tPW", "http://127.0.0.1:1/?token=***"),
                       ("http://S3cr3tTOKEN@127.0.0.1:1", "http://***@127.0.0.1:1")]:
        mlflow.set_tracking_uri(uri)
        with pytest.raises(InvalidInputError) as refused:
            check_tracking_store()
        assert "S3cr3t" not in str(refused.value) and f"tracking store {shown}: " in str(refused.value)


def test_a_ray_address_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(SpecError) as refused:
        check_reachable("ray://u:RaySecret9@127.0.0.1:1", "--executor ray")
    assert "RaySecret9" not in str(refused.value) and "ray://u:***@127.0.0.1:1" in str(refused.value)
    assert "Connection refused" in str(refused.value)  # the host tried is 127.0.0.1, not "u:RaySecret9@127.0.0.1"


@pytest.mark.parametrize("address, shown", [
    ("u:RaySecret9@127.0.0.1:1", "at u:***@127.0.0.1:1 "),  # no scheme: what RAY_ADDRESS and executor.address take
    ("u:RaySecret9@head-node", "'u:***@head-node' is not host:port"),
])
def test_a_ray_address_without_a_scheme_is_refused_without_showing_its_password(address: str, shown: str) -> None:
    with pytest.raises(SpecError) as refused:
        check_reachable(address, "--executor ray")
    assert "RaySecret9" not in str(refused.value) and shown in str(refused.value)


def test_a_ray_cell_scrubs_the_tracking_stores_password_as_the_driver_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver may quote the password decoded, outside its URL; the worker knows it from the store's URI."""
    monkeypatch.setattr(runners.tracking, "adopt_run_environment", lambda environment: None)
    monkeypatch.setattr(runners, "_run", lambda where, request: scrub_known("authentication failed: 'Tr4ck1ngPW'"))
    said = runners._cell_task(None, None, {"MLFLOW_TRACKING_URI": "http://u:Tr4ck1ngPW@mlflow:5000"})  # type: ignore[arg-type]
    assert said == "authentication failed: '***'"


def test_a_secret_holding_a_url_is_hidden_whole_under_nested_scrubbers() -> None:
    """The outer scrubber hid the URL's password first, so the inner one no longer found its secret."""
    from mlsandbox.credentials import scrubbed_output

    secret = "pw-https://user:s3cretpass@host/x"
    with scrubbed_output(Scrubber([])), scrubbed_output(Scrubber([secret])):
        assert scrub_known(f"env: {secret}") == "env: ***"


def test_a_secret_raised_during_the_handling_of_another_error_still_leaks() -> None:
    """A traceback prints the implicit chain ("During handling of the above exception...") too."""
    scrub = Scrubber(["S3cretPW99"])
    try:
        try:
            raise RuntimeError("auth failed with S3cretPW99")
        except RuntimeError:
            raise ValueError("could not connect")  # noqa: B904 (the implicit chain is what is tested)
    except ValueError as err:
        assert err.__cause__ is None and err.__context__ is not None
        assert scrub.leaks(err)
    assert not scrub.leaks(ValueError("nothing secret"))


def test_a_password_is_known_in_its_url_encoded_forms_too() -> None:
    """SQLAlchemy renders a URL with its password %-encoded (as handed to Ray workers): that form is a secret too."""
    found = secrets_in("postgresql://u:pa$$w0rd!x@db/x")
    assert {"pa$$w0rd!x", "pa%24%24w0rd%21x"} <= set(found)
    assert "AKIAEXAMPLE123" in secrets_in("s3://bucket/x?AWSAccessKeyId=AKIAEXAMPLE123&Expires=1")
    assert "AKIAEXAMPLE123" not in hide_url_passwords("https://h/x?AWSAccessKeyId=AKIAEXAMPLE123&Expires=1")


def test_a_failed_commands_log_tail_is_logged_without_the_tracking_stores_password(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A command evaluator may print the tracking URI it was given: its tail is chatter before the one
    error line, and neither shows the password."""
    import logging

    import typer

    from mlsandbox.cli._errors import handles_errors
    from mlsandbox.errors import EvaluationError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:TailPassw0rd@db.example/mlflow")

    @handles_errors
    def evaluate() -> None:
        raise EvaluationError("benchmark 'b': command exited with status 1",
                              "connecting to postgresql://u:TailPassw0rd@db.example/mlflow\nTraceback ...")

    caplog.set_level(logging.INFO, logger="mlsandbox.cli")
    with pytest.raises(typer.Exit):
        evaluate()
    assert "connecting to postgresql://u:***@db.example/mlflow" in caplog.text and "TailPassw0rd" not in caplog.text
