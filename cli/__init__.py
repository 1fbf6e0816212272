"""`python -m sansio_wss`: the command line: `demo`, `serve`, `trace`, `probe`, `walkthrough`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sansio_wss import Config, ConfigError, Listener, ProxyPolicy
from sansio_wss.hep import PayloadFormat

from . import probe, tracing

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m sansio_wss", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="a registrar and one client per adapter, printed as a transcript")
    _serve_parser(commands.add_parser("serve", help="run a registrar or echo server on WSS listeners"))
    trace_help = "switch a running serve's HEP tracing on or off, or show its state (wss_trace)"
    tracing.add_arguments(commands.add_parser("trace", help=trace_help))
    probe_help = "check a WSS server: TLS, the upgrade, OPTIONS round trips"
    probe.add_arguments(commands.add_parser("probe", help=probe_help))
    commands.add_parser("walkthrough", help="drive a client and a server core by hand, printing every step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    if args.command == "walkthrough":
        from .walkthrough import main as walkthrough  # noqa: PLC0415 (each command loads what it needs)

        walkthrough()
        return 0
    if args.command == "serve":
        from .serve import ServeOptions, serve, test_page  # noqa: PLC0415

        try:
            config = _config(args, pages=(test_page(),))
        except ConfigError as exc:
            parser.error(str(exc))
        trusted = tuple(args.trusted_proxy or ())
        listeners = tuple(_listener(parser, uri, trusted) for uri in args.listen or ["wss://127.0.0.1:8443"])
        if (args.cert is None) != (args.key is None):
            parser.error("--cert and --key go together")
        if args.workers < 1:
            parser.error("--workers: at least 1")
        if trusted and all(listener.proxy is None for listener in listeners):
            parser.error("--trusted-proxy: no --listen uses it (add ?proxy-protocol or ?forwarded=HEADER)")
        if args.workers > 1 and any(listener.port == 0 for listener in listeners):
            parser.error("--workers: the listeners need fixed ports")
        trace = _trace_options(parser, args)
        options = ServeOptions(
            listeners, args.cert, args.key, args.adapter, args.app, config, args.workers, trace
        )
        try:
            return serve(options)
        except OSError as exc:  # a listener's port or the control socket is taken
            print(f"serve: {exc}", file=sys.stderr)
            return 1
    if args.command == "trace":
        return tracing.run(args)
    if args.command == "probe":
        return probe.run(args)
    if args.command == "demo":
        from .demo import main as demo  # noqa: PLC0415

        return demo()
    parser.print_help()
    return 2


def _serve_parser(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--listen",
        action="append",
        metavar="URI",
        help="wss://HOST:PORT, or ws://HOST:PORT behind a TLS proxy; repeatable; IPv6 in []; options "
        "after ?: proxy-protocol (PROXY v1/v2 header required), forwarded=x-forwarded-for|forwarded",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="NET",
        help="a proxy whose PROXY header or forwarded header is believed: 10.0.0.0/8, ::1 (repeatable)",
    )
    serve.add_argument("--cert", metavar="FILE", help="PEM certificate chain (generated when absent)")
    serve.add_argument("--key", metavar="FILE", help="PEM private key")
    serve.add_argument("--adapter", choices=("asyncio", "trio", "sync"), default="asyncio")
    serve.add_argument("--app", choices=("registrar", "echo"), default="registrar")
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N", help="processes on the same ports (SO_REUSEPORT)"
    )
    _config_arguments(serve)
    trace = serve.add_argument_group("HEP tracing")
    trace.add_argument("--trace", metavar="udp:HOST:PORT", help="send HEPv3 traces there (or tcp:HOST:PORT)")
    trace.add_argument("--trace-format", choices=("homer5", "json"), default="homer5", help="event payloads")
    trace.add_argument("--capture-id", type=int, default=1, metavar="N", help="HEP capture agent id")
    trace.add_argument("--trace-off", action="store_true", help="start with tracing off")
    trace.add_argument("--control", metavar="PATH", help="the trace control socket (default: per user)")
    serve.add_argument("--verbose", action="store_true", help="log connections and failures")


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--origin", action="append", metavar="ORIGIN", help="allowed Origin (repeatable)")
    parser.add_argument("--no-require-origin", action="store_true", help="accept requests without Origin")
    parser.add_argument("--resource", action="append", metavar="PATH", help="served resource (repeatable)")
    parser.add_argument("--max-msg-chunks", type=int, metavar="N", help="reads per message, 0 for no limit")
    parser.add_argument("--max-message-size", type=int, metavar="BYTES")
    for name in ("handshake", "tls-handshake", "send", "close"):
        parser.add_argument(f"--{name}-timeout", type=float, metavar="SECONDS")
    parser.add_argument("--ping-interval", type=float, metavar="SECONDS", help="0 turns keepalive Pings off")
    parser.add_argument("--idle-timeout", type=float, metavar="SECONDS", help="0: never (the default)")
    parser.add_argument("--deflate", action="store_true", help="accept permessage-deflate (RFC 7692)")
    parser.add_argument("--deflate-window-bits", type=int, metavar="N", help="our window, 9 to 15 (12)")


def _config(args: argparse.Namespace, **fixed: object) -> Config:
    values: dict[str, object] = dict(fixed)
    if args.origin:
        values["allowed_origins"] = frozenset(args.origin)
    if args.no_require_origin:
        values["require_origin"] = False
    if args.resource:
        values["resources"] = frozenset(args.resource)
    if args.max_msg_chunks is not None:
        values["max_msg_chunks"] = args.max_msg_chunks or 1 << 16  # 0: as many as Config allows
    if args.max_message_size is not None:
        values["max_message_size"] = args.max_message_size
    for name in ("handshake_timeout", "tls_handshake_timeout", "send_timeout", "close_timeout"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.deflate:
        values["deflate"] = True
    if args.deflate_window_bits is not None:
        values["deflate_window_bits"] = args.deflate_window_bits
    for name in ("ping_interval", "idle_timeout"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value or None
    return Config(**values)  # type: ignore[arg-type]


def _trace_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tracing.TraceOptions | None:
    if args.trace is None:
        for given, name in ((args.trace_off, "--trace-off"), (args.control, "--control")):
            if given:
                parser.error(f"{name} goes with --trace")
        return None
    from sansio_wss.adapters import check_destination  # noqa: PLC0415 (serve alone needs the adapters)

    try:
        check_destination(args.trace)
    except ValueError as exc:
        parser.error(f"--trace: {exc}")
    if not 0 <= args.capture_id <= 0xFFFFFFFF:
        parser.error("--capture-id: 0 to 4294967295")
    return tracing.TraceOptions(
        destination=args.trace,
        payload_format=PayloadFormat(args.trace_format),
        capture_id=args.capture_id,
        on=not args.trace_off,
        control=args.control or tracing.default_control_path(),
    )


def _listener(parser: argparse.ArgumentParser, uri: str, trusted: tuple[str, ...]) -> Listener:
    """`wss://HOST:PORT` or `ws://HOST:PORT` (port 0: any free port), with its proxy options
    after `?` (`proxy-protocol`, `forwarded=HEADER`, joined by `&`) and the trusted proxies."""
    base, _, query = uri.partition("?")
    proxy: dict[str, object] = {}
    for option in filter(None, query.split("&")):
        name, sep, value = option.partition("=")
        if name == "proxy-protocol" and not sep:
            proxy["proxy_protocol"] = True
        elif name == "forwarded" and sep:
            proxy["forwarded"] = value
        else:
            parser.error(f"--listen {uri}: unknown option {option!r} (proxy-protocol, forwarded=HEADER)")
    try:
        policy = ProxyPolicy(trusted=trusted, **proxy) if proxy else None  # type: ignore[arg-type]
        return Listener.parse(base, proxy=policy)
    except ConfigError as exc:
        parser.error(f"--listen {uri}: {exc}")
