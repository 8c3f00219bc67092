"""The JSON fast paths of a search page: the server writes run records as they are
(pydantic-core), the client reads large answers with pydantic-core and makes records without
the dataclass's generated ``__init__`` — each giving exactly what the plain path gives."""

from __future__ import annotations

import json
import math
from types import MappingProxyType

import pytest

from ferry.errors import ConfigError
from ferry.server.boundary import FerryJSON
from ferry.status import RunStatus
from ferry.tracking import RunRecord, wire
from ferry.tracking.base import run_record
from ferry.tracking.http import decode_json


def _record(n: int) -> RunRecord:
    return RunRecord(
        id=f"fast_{n}_aaaaaaaa",
        experiment="fast",
        status=RunStatus.FAILED,
        created_at=1.5 + n,
        end_time=3,
        definition={"arguments": ["--lr", 0.1], "nested": {"inf": math.inf}},
        error={"message": "é ✓"},
        tags=MappingProxyType({"team": "a", "blank": None}),
        properties={"alpha": "1"},
        number=n,
    )


def test_the_server_writes_records_as_run_to_wire_does() -> None:
    records = [_record(n) for n in range(3)]
    fast = json.loads(bytes(FerryJSON({"runs": records}).body))
    plain = json.loads(json.dumps({"runs": [wire.run_to_wire(r) for r in records]}))
    assert fast == plain


def test_a_value_json_cannot_write_is_still_an_error() -> None:
    with pytest.raises(Exception, match=r"not JSON serializable|Unable to serialize"):
        FerryJSON({"runs": [object()]})


def test_large_and_small_answers_decode_as_json_does() -> None:
    page = {"runs": [wire.run_to_wire(_record(n)) for n in range(200)], "x": [math.nan, -1e308]}
    body = json.dumps(page, allow_nan=True).encode()
    assert len(body) > 16_384
    fast, plain = decode_json(body), json.loads(body)
    assert math.isnan(fast["x"][0]) and fast["x"][1] == plain["x"][1]
    assert fast["runs"] == plain["runs"]
    assert decode_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    with pytest.raises(ValueError):
        decode_json(b"{" * 20_000)


def test_records_from_the_wire_equal_the_records_sent() -> None:
    for n in range(3):
        record = _record(n)
        back = wire.run_from_wire(json.loads(json.dumps(wire.run_to_wire(record))))
        assert back == record and back.status is RunStatus.FAILED
        assert repr(back) == repr(RunRecord(**{**vars(back)}))
    partial = wire.run_from_wire({"id": "p_1_aaaaaaaa", "experiment": "e"})  # defaults filled
    assert partial.target == "local" and partial.tags == {}
    with pytest.raises(ConfigError, match="run created_at"):
        wire.run_from_wire({"id": "x", "experiment": "e", "created_at": "yesterday"})
    with pytest.raises(ConfigError, match="unknown run status"):
        wire.run_from_wire({"id": "x", "experiment": "e", "status": "Done"})
    with pytest.raises(ConfigError, match="unknown run fields"):
        wire.run_from_wire({"id": "x", "experiment": "e", "colour": "red"})


def test_a_record_made_from_every_field_is_a_frozen_record() -> None:
    values = vars(_record(1)).copy()
    made = run_record(values)
    assert made == _record(1) and hash(made.id) == hash("fast_1_aaaaaaaa")
    with pytest.raises(AttributeError):
        made.id = "other"  # type: ignore[misc]
    # run_record skips the generated __init__: a check added to the dataclass would be skipped
    assert not hasattr(RunRecord, "__post_init__"), "run_record must run it too"


def test_without_pydantic_core_the_client_writes_and_reads_with_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pydantic-core is optional for a client: without it, both fast paths are json's."""
    import sys

    from ferry.tracking import http

    http._pydantic_core.cache_clear()
    monkeypatch.setitem(sys.modules, "pydantic_core", None)  # import fails
    try:
        assert http._pydantic_core() is None
        page = {"runs": [wire.run_to_wire(_record(n)) for n in range(200)], "x": [-1e308]}
        body = json.dumps(page).encode()
        assert len(body) > 16_384 and http.decode_json(body) == json.loads(body)
        values = {"values": [0.5, math.inf, -math.inf, 1e-300]}
        assert http.encode_json(values, many=True) == json.dumps(values).encode()
    finally:
        http._pydantic_core.cache_clear()
