"""Secrets in URLs and a cell's known secrets: hidden in whatever is written or shown."""

from __future__ import annotations

import pytest

from mlsandbox.cluster import _check_reachable
from mlsandbox.credentials import hide_url_passwords, scrub_known
from mlsandbox.errors import SpecError
from mlsandbox.executors import runners


@pytest.mark.parametrize("text, shown", [
    ("--db postgresql://u:S3cret@db:5432/x --lr 1", "--db postgresql://u:***@db:5432/x --lr 1"),
    ("ray://admin:p@ss@10.0.0.1:10001", "ray://admin:***@10.0.0.1:10001"),  # an unencoded "@" in the password
    ("http://u:pw@a/ and https://v:qw@b/", "http://u:***@a/ and https://v:***@b/"),
    ("https://user@host/path:1@x", "https://user@host/path:1@x"),  # no password; a later "@" is in the path
    ("a plain text: with colons @ and at signs", "a plain text: with colons @ and at signs"),
])
def test_a_urls_password_is_hidden_wherever_it_stands(text: str, shown: str) -> None:
    assert hide_url_passwords(text) == shown
    assert scrub_known(text) == shown  # what is written to a store, even with no scrubber in force


def test_a_ray_address_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(SpecError) as refused:
        _check_reachable("ray://u:RaySecret9@127.0.0.1:1", "--executor ray")
    assert "RaySecret9" not in str(refused.value) and "ray://u:***@127.0.0.1:1" in str(refused.value)


def test_a_ray_cell_scrubs_the_tracking_stores_password_as_the_driver_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver may quote the password decoded, outside its URL; the worker knows it from the store's URI."""
    monkeypatch.setattr(runners.tracking, "adopt_run_environment", lambda environment: None)
    monkeypatch.setattr(runners, "_run", lambda where, request: scrub_known("authentication failed: 'Tr4ck1ngPW'"))
    said = runners._cell_task(None, None, {"MLFLOW_TRACKING_URI": "http://u:Tr4ck1ngPW@mlflow:5000"})  # type: ignore[arg-type]
    assert said == "authentication failed: '***'"
