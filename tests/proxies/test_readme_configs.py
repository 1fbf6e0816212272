"""The README's nginx and HAProxy configurations are the ones these tests run."""

from __future__ import annotations

import pathlib

from real_proxies import HAPROXY_CFG, NGINX_CONF

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_quotes_the_tested_configurations() -> None:
    text = README.read_text(encoding="utf-8")
    assert f"```nginx\n{NGINX_CONF}```" in text
    assert f"```haproxy\n{HAPROXY_CFG}```" in text
