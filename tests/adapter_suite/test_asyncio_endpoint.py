"""The asyncio endpoint: flows, reuse, the TLS-domain check on reuse, routes that cannot exist."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from adapter_helpers import OK, REGISTER, certs, client_domain, server_domain

from sansio_wss import Cause, Config, ConnectFailed, NoRoute, SipMessageReceived, TLSDomain
from sansio_wss.adapters.asyncio import Endpoint


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def test_request_and_reply_over_one_reused_connection() -> None:
    async def main() -> None:
        async with Endpoint(tls=[server_domain()]) as proxy, Endpoint(tls=[client_domain()]) as phone:
            _, port = await proxy.listen("127.0.0.1", 0)
            for _ in range(3):
                sent = await phone.send(REGISTER, ("localhost", port))
                incoming = await proxy.recv()
                assert incoming.event == SipMessageReceived(REGISTER, False)
                assert incoming.flow.accepted and incoming.flow.listener == ("127.0.0.1", port)
                await proxy.send(OK, incoming.flow.flow_id)  # a reply goes back over its flow
                answer = await phone.recv()
                assert answer.event == SipMessageReceived(OK, False) and answer.flow == sent
            assert len(phone.flows) == 1 and len(proxy.flows) == 1
            assert phone.stats.connected == 1 and proxy.stats.accepted == 1
            assert (phone.stats.messages_out, phone.stats.messages_in) == (3, 3)
            assert proxy.stats.bytes_in == 3 * len(REGISTER)
            await phone.send(REGISTER, f"sip:proxy@localhost:{port};transport=wss")
            await proxy.recv()
            assert len(phone.flows) == 1
        assert proxy.stats.open == 0 and phone.stats.open == 0

    run(main)


def test_cert_check_on_reuse() -> None:
    def domains() -> list[TLSDomain]:
        return [
            client_domain(name="by-name", names=frozenset({"localhost"})),
            client_domain(name="by-ip", names=frozenset({"127.0.0.1"})),
        ]

    async def main() -> None:
        async with Endpoint(tls=[server_domain()]) as proxy:
            _, port = await proxy.listen("127.0.0.1", 0)
            for check, expected in ((False, 1), (True, 2)):
                config = Config(cert_check_on_conn_reuse=check)
                async with Endpoint(tls=domains(), config=config) as phone:
                    first = await phone.send(REGISTER, ("localhost", port))
                    second = await phone.send(REGISTER, ("127.0.0.1", port))
                    assert first.tls_domain == "by-name"
                    assert len(phone.flows) == expected
                    assert (first == second) is (expected == 1)
                    if expected == 2:
                        assert second.tls_domain == "by-ip"
                    await proxy.recv()
                    await proxy.recv()

    run(main)


def test_routes_that_cannot_exist() -> None:
    async def main() -> None:
        async with Endpoint(tls=[client_domain()]) as phone:
            with pytest.raises(NoRoute, match="opened"):
                await phone.send(REGISTER, "sip:uh7a12ms@df7jal23ls0d.invalid;transport=ws")
            with pytest.raises(NoRoute, match="closed"):
                await phone.send(REGISTER, 12345)
            with pytest.raises(NoRoute):
                await phone.send(REGISTER, "sip:alice@example.com;transport=tcp")
            with pytest.raises(NoRoute):
                await phone.send(REGISTER, "ws://example.com/")

    run(main)


def test_failures_are_counted_by_cause() -> None:
    async def main() -> None:
        async with Endpoint(tls=[server_domain()]) as proxy:
            _, port = await proxy.listen("127.0.0.1", 0)
            distrust = TLSDomain(name="wrong-ca", side="client", ca_list=certs().other_ca)
            async with Endpoint(tls=[distrust]) as phone:
                with pytest.raises(ConnectFailed):
                    await phone.send(REGISTER, ("localhost", port))
                assert phone.stats.failed[Cause.TLS_FAILED] == 1 and phone.stats.open == 0
            await asyncio.sleep(0.05)
            assert proxy.stats.failed[Cause.TLS_FAILED] == 1
            assert proxy.stats.as_dict()["failed"] == {"tls_failed": 1}

    run(main)


def test_flow_closes_and_is_forgotten() -> None:
    async def main() -> None:
        async with Endpoint(tls=[server_domain()]) as proxy, Endpoint(tls=[client_domain()]) as phone:
            _, port = await proxy.listen("127.0.0.1", 0)
            flow = await phone.send(REGISTER, ("localhost", port))
            incoming = await proxy.recv()
            await flow.connection.close()
            for _ in range(50):
                if not proxy.flows:
                    break
                await asyncio.sleep(0.01)
            assert len(proxy.flows) == 0 and len(phone.flows) == 0
            with pytest.raises(NoRoute):
                await proxy.send(OK, incoming.flow.flow_id)
            assert proxy.stats.failed == {} and proxy.stats.open == 0

    run(main)
