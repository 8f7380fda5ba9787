"""The shared HTTP client: retries with backoff and jitter, Retry-After, limits, error texts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from support.price_server import PriceApiServer, Reply

from drivers.http import HttpClient, HttpError, RetryPolicy, public_url


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


class RecordedSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(attempts=6, backoff_s=1.0, max_backoff_s=5.0, jitter=0.5)
    rng = random.Random(7)
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (5, 5.0)]:
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert min(delays) >= 0.5 * base
        assert max(delays) <= 1.5 * base
        assert max(delays) - min(delays) > 0.5 * base  # really jittered
    assert RetryPolicy(jitter=0.0, backoff_s=2.0).delay(2, rng) == 4.0


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match=r"jitter must be within 0\.\.1, got 2"):
        RetryPolicy(jitter=2)


async def test_server_errors_are_retried_then_succeed(api: PriceApiServer) -> None:
    route = api.add("/x", Reply(body="a", status=500), Reply(body="b", status=502), Reply(body="ok"))
    sleep = RecordedSleep()
    policy = RetryPolicy(attempts=3, timeout_s=1.0, backoff_s=0.1, max_backoff_s=1.0, jitter=0.0)
    async with HttpClient(policy, sleep=sleep) as http:
        response = await http.get(f"{api.url}/x")
    assert response.text == "ok"
    assert route.calls == 3
    assert sleep.delays == [0.1, 0.2]


async def test_retry_after_is_honoured_up_to_the_cap(api: PriceApiServer) -> None:
    api.add("/x", Reply(body="slow down", status=429, headers={"Retry-After": "3"}), Reply(body="ok"))
    sleep = RecordedSleep()
    policy = RetryPolicy(attempts=2, timeout_s=1.0, backoff_s=0.1, max_backoff_s=2.0, jitter=0.0)
    async with HttpClient(policy, sleep=sleep) as http:
        assert (await http.get(f"{api.url}/x")).text == "ok"
    assert sleep.delays == [2.0]


async def test_client_errors_are_not_retried(api: PriceApiServer) -> None:
    route = api.add("/x", Reply(body='{"error": "no such area"}', status=404))
    async with HttpClient(RetryPolicy(attempts=3, backoff_s=0.0)) as http:
        with pytest.raises(HttpError, match="answered HTTP 404") as caught:
            await http.get(f"{api.url}/x", params={"token": "s3cret"})
    assert route.calls == 1
    assert caught.value.status == 404
    assert "no such area" in caught.value.body
    assert "s3cret" not in str(caught.value)


async def test_connection_refused_is_retried_and_reported(api: PriceApiServer) -> None:
    url = f"{api.url}/x"
    await api.__aexit__(None, None, None)  # nothing listens on the port any more
    sleep = RecordedSleep()
    async with HttpClient(RetryPolicy(attempts=3, timeout_s=0.5, backoff_s=0.01), sleep=sleep) as http:
        with pytest.raises(HttpError, match="ClientConnectorError") as caught:
            await http.get(url)
    assert caught.value.status is None
    assert len(sleep.delays) == 2


async def test_oversized_body_is_refused(api: PriceApiServer) -> None:
    api.add("/x", Reply(body="x" * 5000))
    async with HttpClient(RetryPolicy(attempts=1, max_body_bytes=1000)) as http:
        with pytest.raises(HttpError, match="larger than 1000 bytes"):
            await http.get(f"{api.url}/x")


async def test_extra_ok_statuses_are_returned(api: PriceApiServer) -> None:
    api.add("/x", Reply(status=204))
    async with HttpClient(RetryPolicy(attempts=1)) as http:
        response = await http.get(f"{api.url}/x", ok_statuses=frozenset({200, 204}))
    assert response.status == 204
    assert response.text == ""


def test_public_url_drops_query_and_credentials() -> None:
    assert public_url("https://user:pw@example.org/api?securityToken=abc") == "https://example.org/api"
