"""`Config`: validation of every field, and building it from OpenSIPS parameter names and units."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from sansio_wss import Config, ConfigError


def test_defaults() -> None:
    config = Config()
    assert (config.port, config.resource, config.max_msg_chunks, config.max_message_size) == (
        443,
        "/",
        4,
        65536,
    )
    assert config.require_origin and config.auto_accept and not config.cert_check_on_conn_reuse
    assert (config.handshake_timeout, config.tls_handshake_timeout, config.send_timeout) == (10.0, 10.0, 10.0)


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"port": "443"},
        {"max_msg_chunks": 0},
        {"max_message_size": 0},
        {"max_handshake_size": 10},
        {"resource": "wss"},
        {"resource": "/a b"},
        {"resource": "/\x00"},
        {"handshake_timeout": 0},
        {"handshake_timeout": -1.0},
        {"close_timeout": None},
        {"pong_timeout": float("nan")},
        {"ping_interval": float("inf")},
        {"send_timeout": "10"},
        {"origin": "https://a\r\nInjected: 1"},
        {"origin": ""},
        {"allowed_origins": "https://a"},
        {"allowed_origins": ["ok", "bad\n"]},
        {"allowed_origins": 5},
        {"resources": "/ws"},
        {"resources": ["nope"]},
    ],
)
def test_invalid_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Config(**changes)


def test_collections_become_frozensets() -> None:
    config = Config(allowed_origins=["https://a", "null"], resources=("/ws",))  # type: ignore[arg-type]
    assert config.allowed_origins == frozenset({"https://a", "null"})
    assert config.resources == frozenset({"/ws"})
    assert hash(config.allowed_origins)


def test_replace_validates() -> None:
    assert Config().replace(port=8443).port == 8443
    with pytest.raises(ConfigError):
        Config().replace(port=-1)


def test_from_opensips() -> None:
    config = Config.from_opensips(
        {
            "wss_port": 44344,
            "wss_max_msg_chunks": 8,
            "wss_resource": "/wss",
            "wss_handshake_timeout": 300,
            "wss_tls_handshake_timeout": 200,
            "wss_send_timeout": 150,
            "require_origin": "no",
            "cert_check_on_conn_reusage": 1,
        },
        idle_timeout=120.0,
    )
    assert (config.port, config.max_msg_chunks, config.resource) == (44344, 8, "/wss")
    assert (config.handshake_timeout, config.tls_handshake_timeout, config.send_timeout) == (0.3, 0.2, 0.15)
    assert not config.require_origin and config.cert_check_on_conn_reuse
    assert config.idle_timeout == 120.0
    assert Config.from_opensips({}).handshake_timeout == 10.0  # ours, not OpenSIPS's 100 ms


@pytest.mark.parametrize(
    ("params", "overrides"),
    [
        ({"wss_nonsense": 1}, {}),
        ({"wss_handshake_timeout": 0}, {}),
        ({"wss_handshake_timeout": 1.5}, {}),
        ({"require_origin": 2}, {}),
        ({"require_origin": "maybe"}, {}),
        ({"wss_port": 0}, {}),
        ({}, {"no_such_field": 1}),
    ],
)
def test_from_opensips_rejects(params: dict[str, Any], overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Config.from_opensips(params, **overrides)


@pytest.mark.parametrize(
    ("word", "value"), [("1", True), ("yes", True), ("ON", True), (0, False), ("off", False)]
)
def test_opensips_flags(word: object, value: bool) -> None:
    assert Config.from_opensips({"require_origin": word}).require_origin is value


def test_every_field_is_documented_with_its_opensips_name_or_as_ours() -> None:
    source = inspect.getsource(Config)
    for field in dataclasses.fields(Config):
        doc = source.split(f"    {field.name}:", 1)[1].split('"""', 2)[1]
        assert "OpenSIPS" in doc or "Ours" in doc or "ours" in doc, field.name
