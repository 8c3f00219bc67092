"""The reference's telemetry switches are no-ops that say so; its user error is ferry's."""

from __future__ import annotations

import logging

import pytest

from ferry import Experiment, Workspace, telemetry


def test_turning_diagnostics_on_changes_nothing_and_says_so_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "_noted", False)
    telemetry.set_diagnostics_collection(send_diagnostics=True)
    telemetry.set_diagnostics_collection(True, logging.DEBUG, reason="notebook", path="/x")
    telemetry.set_diagnostics_collection(send_diagnostics=False)
    err = capsys.readouterr().err
    assert err.count("collects and sends no diagnostics") == 1
    assert telemetry.get_diagnostics_collection_info() == (False, "NOTSET")
    assert telemetry.is_diagnostics_collection_info_available() is False
    telemetry.add_diagnostics_properties({"a": 1})
    telemetry.set_diagnostics_properties({"a": 1})
    assert isinstance(telemetry.get_telemetry_log_handler(), logging.NullHandler)


def test_turning_diagnostics_off_is_silent(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "_noted", False)
    telemetry.set_diagnostics_collection(send_diagnostics=False)
    assert capsys.readouterr().err == ""


def test_user_error_exception_catches_ferry_refusals(workspace: Workspace) -> None:
    with pytest.raises(telemetry.UserErrorException, match="unknown view_type"):
        Experiment.list(workspace, view_type="Everything")
    with pytest.raises(telemetry.UserErrorException, match="bad thing"):
        raise telemetry.UserErrorException("bad thing")
