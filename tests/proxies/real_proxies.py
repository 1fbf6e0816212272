"""Debian's nginx and HAProxy run as subprocesses on loopback, each with a configuration the test writes."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

__all__ = [
    "HAPROXY_CFG",
    "NGINX_CONF",
    "Proxy",
    "free_port",
    "haproxy",
    "nginx",
]

START_LIMIT = 10.0  # seconds a proxy may take to listen
STOP_LIMIT = 5.0  # seconds it may take to exit after SIGTERM, before SIGKILL

NGINX_CONF = """\
# nginx ends TLS and hands the WebSocket to sansio-wss's plain ws:// listener on loopback,
# listen("127.0.0.1", 5060, secure=False,
#        proxy=ProxyPolicy(trusted=["127.0.0.1"], forwarded="x-forwarded-for"))
server {
    listen 443 ssl;
    server_name sip.example.com;
    ssl_certificate     /etc/ssl/sip.example.com.pem;
    ssl_certificate_key /etc/ssl/sip.example.com.key;

    location / {
        proxy_pass http://127.0.0.1:5060;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # sansio-wss pings an idle connection every ping_interval (30 s): any longer will do
        proxy_read_timeout 120s;
        proxy_send_timeout 120s;
    }
}
"""
"""The server block the README quotes; `nginx()` puts test addresses and certificates in it."""

HAPROXY_CFG = """\
# HAProxy passes the TCP stream (TLS or not) to sansio-wss behind a PROXY v2 header:
# listen("127.0.0.1", 5061, proxy=ProxyPolicy(trusted=["127.0.0.1"], proxy_protocol=True))
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend sip
    bind :443
    default_backend sansio_wss

backend sansio_wss
    server local 127.0.0.1:5061 send-proxy-v2
"""
"""The configuration the README quotes; `haproxy()` puts test addresses in it."""

# What nginx needs to run as any user out of one folder (it would write under /var otherwise).
_NGINX_MAIN = """\
worker_processes 1;
{user}
events {{
    worker_connections 64;
}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{server}}}
"""


@dataclass(frozen=True)
class Proxy:
    """A running proxy: where clients connect, and its folder (configuration and logs)."""

    host: str
    port: int
    folder: pathlib.Path

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _binary(name: str) -> str:
    """The program's path; the test fails (CI installs it) rather than skips when it is missing."""
    found = shutil.which(name)
    for folder in ("/usr/sbin", "/usr/local/sbin"):  # not on a non-root user's PATH
        candidate = os.path.join(folder, name)
        if found is None and os.access(candidate, os.X_OK):
            found = candidate
    if found is None:
        pytest.fail(f"{name} is not installed: `make proxies` installs it (Debian's package)", pytrace=False)
    return found


def _substitute(text: str, changes: dict[str, str]) -> str:
    """`text` with each key, which must occur exactly once, replaced."""
    for old, new in changes.items():
        assert text.count(old) == 1, f"{old!r} is not in the configuration exactly once"
        text = text.replace(old, new)
    return text


def _listening(host: str, port: int) -> bool:
    """Whether a socket listens on host:port (IPv4), read from /proc/net/tcp without connecting:
    a probe would reach HAProxy's backend, our server, as a connection of its own."""
    wanted = f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}:{port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        return any(f[1] == wanted and f[3] == "0A" for f in (line.split() for line in table))


def _tail(path: pathlib.Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-3000:]
    return "(none)"


@contextlib.contextmanager
def _run(command: list[str], proxy: Proxy, logs: list[pathlib.Path]) -> Iterator[Proxy]:
    """Start `command`, wait until it listens, yield; then SIGTERM it (SIGKILL if it lingers)."""
    output = proxy.folder / "output.log"
    with open(output, "wb") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, cwd=proxy.folder
        )
    try:
        deadline = time.monotonic() + START_LIMIT
        while not _listening(proxy.host, proxy.port):
            exited = process.poll()
            if exited is not None or time.monotonic() > deadline:
                status = (
                    f"exited with {exited}" if exited is not None else f"not listening after {START_LIMIT}s"
                )
                details = "\n".join(f"--- {path.name}:\n{_tail(path)}" for path in [output, *logs])
                pytest.fail(f"{' '.join(command)}: {status}\n{details}", pytrace=False)
            time.sleep(0.01)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def nginx(folder: pathlib.Path, backend: int, certificate: str, host: str = "127.0.0.1") -> Iterator[Proxy]:
    """nginx with NGINX_CONF: TLS on a free port of `host` (`certificate`: one PEM file with the key
    and the chain), proxying to 127.0.0.1:`backend`. Its logs stay in `folder`."""
    program = _binary("nginx")
    proxy = Proxy(host, free_port(host), folder)
    server = _substitute(
        NGINX_CONF,
        {
            "listen 443 ssl;": f"listen {host}:{proxy.port} ssl;",
            "server_name sip.example.com;": "server_name localhost;",
            "/etc/ssl/sip.example.com.pem": certificate,
            "/etc/ssl/sip.example.com.key": certificate,
            "http://127.0.0.1:5060;": f"http://127.0.0.1:{backend};",
        },
    )
    # Run as root (as in CI's containers), nginx's workers would switch to nobody, who cannot
    # read the test's certificates or folder: keep them root.
    user = "user root;" if os.geteuid() == 0 else ""
    config = folder / "nginx.conf"
    config.write_text(_NGINX_MAIN.format(user=user, folder=folder, server=server))
    error_log = folder / "error.log"
    command = [
        program,
        "-p",
        f"{folder}/",
        "-e",
        str(error_log),
        "-c",
        str(config),
        "-g",
        f"daemon off; pid {folder}/nginx.pid; error_log {error_log} info;",
    ]
    with _run(command, proxy, [error_log]) as running:
        yield running


@contextlib.contextmanager
def haproxy(folder: pathlib.Path, backend: int, send_proxy: str = "send-proxy-v2") -> Iterator[Proxy]:
    """HAProxy with HAPROXY_CFG on a free port of 127.0.0.1 to 127.0.0.1:`backend`, the PROXY header
    written as `send_proxy` says ("send-proxy" for version 1)."""
    program = _binary("haproxy")
    proxy = Proxy("127.0.0.1", free_port(), folder)
    text = _substitute(
        HAPROXY_CFG,
        {
            "bind :443": f"bind 127.0.0.1:{proxy.port}",
            "127.0.0.1:5061 send-proxy-v2": f"127.0.0.1:{backend} {send_proxy}",
        },
    )
    config = folder / "haproxy.cfg"
    config.write_text(text)
    with _run([program, "-f", str(config), "-db"], proxy, []) as running:
        yield running
