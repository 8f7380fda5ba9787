"""The one HTTP client every web source uses: timeouts, bounded retries, backoff with jitter.

Retried: connection errors, timeouts, HTTP 429 and 5xx (honouring a short Retry-After). Not
retried: other 4xx, which a retry cannot fix. Error messages carry the URL without its query,
so tokens in query parameters never reach logs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from drivers import DriverError
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HttpError(DriverError):
    """A request failed after its retries; ``status`` is None for network errors and timeouts."""

    def __init__(self, message: str, *, url: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    timeout_s: float = 15.0
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    max_body_bytes: int = 8_000_000

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.timeout_s <= 0:
            raise ValueError(f"RetryPolicy.timeout_s must be > 0, got {self.timeout_s}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("RetryPolicy backoff values must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the given number of consecutive failures (1 = first)."""
        return self.backoff.delay_s(failures, rng)

    @property
    def backoff(self) -> Backoff:
        first = min(self.backoff_s, self.max_backoff_s)
        return Backoff(first, self.max_backoff_s, 1.0 - self.jitter, 1.0 + self.jitter)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    text: str
    url: str


def public_url(url: str | URL) -> str:
    """The URL without query and credentials, for messages."""
    parsed = URL(url)
    return str(parsed.with_query(None).with_user(None))


class HttpClient:
    """Owns one aiohttp session, created on first use inside the running loop."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        user_agent: str = "hemsd",
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._user_agent = user_agent
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s),
                headers={"User-Agent": self._user_agent},
            )
        return self._session

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> HttpResponse:
        """GET with retries. Returns responses whose status is in ``ok_statuses``; raises HttpError."""
        shown = public_url(url)
        failures = 0
        while True:
            retry_after: float | None = None
            try:
                response = await self._attempt(url, params, headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                error = HttpError(f"GET {shown} failed: {reason}", url=shown)
            else:
                status, text, retry_after = response
                if status in ok_statuses:
                    return HttpResponse(status=status, text=text, url=shown)
                error = HttpError(
                    f"GET {shown} answered HTTP {status}: {text[:200].strip()!r}",
                    url=shown,
                    status=status,
                    body=text[:2000],
                )
                if status not in RETRY_STATUSES:
                    raise error
            failures += 1
            if failures >= self.policy.attempts:
                raise error
            delay = self.policy.delay(failures, self._rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.policy.max_backoff_s))
            log.info("%s; retry %d/%d in %.1f s", error, failures, self.policy.attempts - 1, delay)
            await self._sleep(delay)

    async def _attempt(
        self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str] | None
    ) -> tuple[int, str, float | None]:
        session = self._get_session()
        async with session.get(url, params=params, headers=headers) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(65536):
                size += len(chunk)
                if size > self.policy.max_body_bytes:
                    raise aiohttp.ClientPayloadError(
                        f"response body larger than {self.policy.max_body_bytes} bytes"
                    )
                chunks.append(chunk)
            charset = resp.charset or "utf-8"
            try:
                text = b"".join(chunks).decode(charset, errors="replace")
            except LookupError:
                text = b"".join(chunks).decode("utf-8", errors="replace")
            return resp.status, text, _retry_after_seconds(resp.headers.get("Retry-After"))


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: the exponential backoff applies
    return seconds if seconds >= 0 else None
