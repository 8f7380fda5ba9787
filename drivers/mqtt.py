"""A generic MQTT client for one site: retained state out, an announcement, messages in; paho-mqtt 2.x on asyncio.

What the messages mean is the caller's: state values are published under ``<base>/<key>``, an
optional :class:`Announcement` (Home Assistant discovery, say) is sent on every connect and when
its birth topic says ``online``, and every message on ``<base>/<key>/set`` goes to the
:class:`Inbox` (parsed on arrival, applied in order by one task). An inbox that refuses a message
raises :class:`MessageRejectedError`; its document is published on ``<base>/error``.

Threading. paho's own network thread (``loop_start``) does the socket work for one connection;
its callbacks only hand events to the event loop with ``call_soon_threadsafe``, so every piece of
mutable state here (latest values, counters, the connection flag) lives on the event-loop thread
and needs no lock. ``publish`` is paho's thread-safe entry point. The blocking TCP/TLS connect
runs in a worker thread (``asyncio.to_thread``) so a slow DNS or TLS handshake never stalls the
loop.

Connection life. paho's automatic reconnect is off: one session is connect -> network thread ->
disconnected, and :meth:`MqttClient._run` repeats sessions forever with exponential backoff and
jitter. That keeps the real reason of every failure (refused credentials, TLS verification,
unreachable host) for the log and :class:`MqttStats`, and nothing ever raises to the caller.

Delivery. Retained state keeps only the latest payload per topic (bounded); it is (re)published
after every connect, because a broker restarted without persistence has forgotten it. Nothing
that was published while disconnected is replayed as a backlog: paho's unacknowledged queue is
dropped when a session ends and the latest values are sent instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from drivers import DriverError
from drivers.backoff import Backoff
from drivers.plain import plain

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
QOS = 1
REJECTION_LOG_EVERY_S = 10.0  # a flood of bad commands is one log line per this, with a count
STABLE_SESSION_S = 10.0  # a session shorter than this does not reset the backoff (e.g. client-id ping-pong)
STATUS_KEY = "status"  # online / offline (the last will)
ERROR_KEY = "error"  # rejected messages, not retained
_RESERVED_KEYS = frozenset({STATUS_KEY, ERROR_KEY})


class _WithoutCleanDisconnectNoise(logging.Filter):
    """paho's network thread logs "Client is not connected" as an error after every clean disconnect."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


class MqttError(DriverError):
    """The MQTT client cannot be set up (bad settings, unreadable TLS files)."""


class MessageRejectedError(MqttError):
    """An inbound message is refused; ``document`` is what the client publishes on ``<base>/error``."""

    def __init__(self, message: str, document: Mapping[str, object]) -> None:
        super().__init__(message)
        self.document = document


class Inbox(Protocol):
    """What the client does with a message on ``<base>/<key>/set``."""

    def parse(self, topic: str, key: str, payload: bytes) -> object:
        """The message's meaning, checked on arrival; MessageRejectedError when it is invalid."""
        ...

    async def apply(self, topic: str, message: object) -> None:
        """Act on a parsed message (one at a time, in order); MessageRejectedError when refused."""
        ...

    def rejected(self, topic: str, field: str, value: object, reason: str) -> MessageRejectedError:
        """The error for a message the client itself refuses (retained, too many waiting)."""
        ...

    def supersedes(self, message: object) -> bool:
        """True when ``message`` sets a whole value (a switch, a mode), so that one still waiting on
        the same topic is dropped for it: a flood of toggles ends in the last one, not a full queue."""
        ...


class _PendingMessages:
    """Parsed messages waiting for the inbox, in order, at most ``limit``; a superseding message
    replaces the superseding one still waiting on its topic (and goes to the end)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._waiting: list[tuple[str, object, bool]] = []
        self._ready = asyncio.Event()

    def put(self, topic: str, message: object, *, supersedes: bool) -> bool:
        """False, and nothing kept, when ``limit`` messages are waiting and none is replaced."""
        if supersedes:
            self._waiting = [w for w in self._waiting if not (w[2] and w[0] == topic)]
        if len(self._waiting) >= self._limit:
            return False
        self._waiting.append((topic, message, supersedes))
        self._ready.set()
        return True

    async def get(self) -> tuple[str, object]:
        while not self._waiting:
            self._ready.clear()
            await self._ready.wait()
        topic, message, _ = self._waiting.pop(0)
        return topic, message


@dataclass(frozen=True, slots=True)
class Announcement:
    """A retained message sent after every connect and again whenever ``birth_topic`` receives
    ``online`` (Home Assistant's discovery and its birth message)."""

    topic: str
    payload: str
    birth_topic: str | None = None


def _check_topic(name: str, topic: str) -> str:
    levels = topic.split("/")
    if not topic or len(topic) > 200 or any(not level for level in levels):
        raise ValueError(
            f"{name} must be non-empty levels separated by '/' (no leading/trailing '/'), got {topic!r}"
        )
    if any(ch in topic for ch in "#+\0"):
        raise ValueError(f"{name} must not contain '#', '+' or NUL, got {topic!r}")
    return topic


@dataclass(frozen=True, slots=True)
class TlsSettings:
    ca_file: Path | None = None  # None: the system's CA store
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False  # skip the host name check (never the certificate chain)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    base_topic: str
    client_id: str
    port: int = 1883
    username: str = ""
    password: str = field(default="", repr=False)
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = 60
    tls: TlsSettings | None = None
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_retained_topics: int = 256
    max_queued_messages: int = 2000
    max_pending_commands: int = 100

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("MqttSettings.host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"MqttSettings.port must be 1..65535, got {self.port!r}")
        _check_topic("MqttSettings.base_topic", self.base_topic)
        _check_topic("MqttSettings.discovery_prefix", self.discovery_prefix)
        if not self.client_id or len(self.client_id.encode()) > 65535:
            raise ValueError(f"MqttSettings.client_id must be non-empty, got {self.client_id!r}")
        if not 5 <= self.keepalive_s <= 3600:
            raise ValueError(f"MqttSettings.keepalive_s must be 5..3600, got {self.keepalive_s!r}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError(
                f"MqttSettings reconnect delays must satisfy 0 < min <= max, got {self.reconnect_min_s}..{self.reconnect_max_s}"
            )
        for name in (
            "connect_timeout_s",
            "max_retained_topics",
            "max_queued_messages",
            "max_pending_commands",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"MqttSettings.{name} must be > 0, got {getattr(self, name)!r}")

    @classmethod
    def for_site(cls, site_id: str, host: str, **options: Any) -> MqttSettings:
        """Settings with the site's defaults: base topic ``hemsd/<site>`` and client id ``hemsd-<site>``."""
        options["base_topic"] = options.get("base_topic") or f"hemsd/{site_id}"
        options["client_id"] = options.get("client_id") or f"hemsd-{site_id}"
        return cls(host=host, **options)


class ConnectionState(enum.StrEnum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RETRYING = "retrying"  # network or TLS failure; waiting before the next attempt
    REFUSED = "refused"  # the broker refused us (credentials, client id); waiting before the next attempt


@dataclass(frozen=True, slots=True)
class MqttStats:
    state: ConnectionState
    last_error: str | None
    published: int  # acknowledged by the broker
    dropped: int  # never reached the broker: superseded while disconnected, over the topic bound, queue full
    reconnects: int  # successful connects after the first
    rejected_commands: int
    connect_failures: int  # consecutive, reset by a stable session
    retained_topics: int
    unsent_topics: int


def encode_payload(value: object) -> str:
    """Text of a state payload: strings as they are, None as ``None`` (unknown in Home Assistant), else JSON."""
    data = plain(value)
    if data is None:
        return "None"
    if isinstance(data, str):
        return data
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


class MqttClient:
    """One connection to the broker for one site; see the module docstring for the life cycle."""

    def __init__(
        self,
        settings: MqttSettings,
        inbox: Inbox | None = None,
        *,
        announcement: Announcement | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        listen: Mapping[str, Callable[[str, bytes], None]] | None = None,
    ) -> None:
        self.settings = settings
        self._inbox = inbox
        self._announcement = announcement
        # topics outside <base> (a device's own, e.g. its measured power): each to its handler
        self._listen = dict(listen or {})
        for topic in self._listen:
            _check_topic("listened topic", topic)
        self._now = now
        base = settings.base_topic
        self.status_topic = f"{base}/{STATUS_KEY}"
        self.error_topic = f"{base}/{ERROR_KEY}"
        self._command_filter = f"{base}/+/set"
        self._paho = self._make_paho()

        self._latest: dict[str, str] = {}
        self._unsent: set[str] = set()
        self._bound_warned = False
        self._state = ConnectionState.STOPPED
        self._last_error: str | None = None
        self._published = self._dropped = self._reconnects = self._rejected = self._failures = 0
        self._rejection_logged_at = -REJECTION_LOG_EVERY_S
        self._rejected_logged = 0
        self._ever_connected = False
        self._session_connected_at: float | None = None
        self._connected = asyncio.Event()
        self._session_ended = asyncio.Event()
        self._stopping = asyncio.Event()
        self._commands = _PendingMessages(settings.max_pending_commands)
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rng = secrets.SystemRandom()

    def _make_paho(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=True, reconnect_on_failure=False
        )
        paho_log = logging.getLogger(f"{__name__}.paho")
        if not any(isinstance(f, _WithoutCleanDisconnectNoise) for f in paho_log.filters):
            paho_log.addFilter(_WithoutCleanDisconnectNoise())
        client.enable_logger(paho_log)
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        client.will_set(self.status_topic, OFFLINE, qos=QOS, retain=True)
        client.max_queued_messages_set(s.max_queued_messages)
        client.connect_timeout = s.connect_timeout_s
        if s.tls is not None:
            try:
                client.tls_set(
                    ca_certs=str(s.tls.ca_file) if s.tls.ca_file else None,
                    certfile=str(s.tls.cert_file) if s.tls.cert_file else None,
                    keyfile=str(s.tls.key_file) if s.tls.key_file else None,
                )
            except (OSError, ValueError) as exc:
                raise MqttError(
                    f"MQTT TLS files cannot be loaded (ca_file={s.tls.ca_file}, cert_file={s.tls.cert_file}, "
                    f"key_file={s.tls.key_file}): {exc}"
                ) from exc
            client.tls_insecure_set(s.tls.insecure)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        client.on_publish = self._paho_publish
        return client

    # --- public API -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def stats(self) -> MqttStats:
        return MqttStats(
            state=self._state,
            last_error=self._last_error,
            published=self._published,
            dropped=self._dropped,
            reconnects=self._reconnects,
            rejected_commands=self._rejected,
            connect_failures=self._failures,
            retained_topics=len(self._latest),
            unsent_topics=len(self._unsent),
        )

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see :meth:`wait_connected`)."""
        if self._tasks:
            raise RuntimeError("MqttClient.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._run(), name="mqtt-connection"),
            asyncio.create_task(self._dispatch_commands(), name="mqtt-commands"),
        ]

    async def wait_connected(self, within_s: float) -> bool:
        """True once connected; False if that did not happen within ``within_s`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), within_s)
        return self.connected

    async def stop(self) -> None:
        """Publish ``offline``, disconnect cleanly and stop the background tasks."""
        self._stopping.set()
        run, dispatch = self._tasks or (None, None)
        if run is not None:
            try:
                await asyncio.wait_for(run, self.settings.connect_timeout_s + 5.0)
            except TimeoutError:
                log.warning("MQTT client did not stop in time; abandoning the connection")
        if dispatch is not None:
            dispatch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatch
        self._tasks = []
        self._state = ConnectionState.STOPPED

    async def __aenter__(self) -> MqttClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def publish_state(self, key: str, value: object, *, retain: bool = True) -> None:
        """Publish ``value`` on ``<base>/<key>`` (see :func:`encode_payload`); never blocks, never raises on I/O.

        Retained values are remembered (latest per topic) and sent again after every connect;
        a non-retained value published while disconnected is dropped.
        """
        _check_topic("state key", key)
        if key in _RESERVED_KEYS or key.rsplit("/", 1)[-1] == "set":
            raise ValueError(f"state key {key!r} is reserved (status, error and */set belong to the client)")
        self._publish(f"{self.settings.base_topic}/{key}", encode_payload(value), retain=retain)

    def publish_to(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """Publish ``payload`` on a topic outside ``<base>`` (a device's own command topic); never
        blocks. Not retained, it is dropped while disconnected: the caller sends it again."""
        _check_topic("topic", topic)
        self._publish(topic, payload, retain=retain)

    def announce(self) -> None:
        """Send the announcement (done by itself on every connect and on its birth topic's ``online``)."""
        if self.connected and self._announcement is not None:
            self._send(self._announcement.topic, self._announcement.payload, retain=True)

    # --- publishing (event-loop thread) ----------------------------------------------------------

    def _publish(self, topic: str, payload: str, *, retain: bool) -> None:
        if retain:
            if topic not in self._latest and len(self._latest) >= self.settings.max_retained_topics:
                self._dropped += 1
                if not self._bound_warned:
                    self._bound_warned = True
                    log.warning(
                        "MQTT: more than %d retained topics; %s and further new topics are not published",
                        self.settings.max_retained_topics,
                        topic,
                    )
                return
            if topic in self._unsent:
                self._dropped += 1  # the previous value never reached the broker and is superseded
            self._latest[topic] = payload
            self._unsent.add(topic)
        if self.connected:
            self._send(topic, payload, retain=retain)
        elif not retain:
            self._dropped += 1

    def _send(self, topic: str, payload: str, *, retain: bool) -> None:
        info = self._paho.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            if retain:
                self._unsent.discard(topic)
        elif info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE and not retain:
            self._dropped += 1
        # NO_CONN: paho holds the message until the session ends, where it is counted (see _end_session)

    def _flush(self) -> None:
        for topic, payload in list(self._latest.items()):
            self._send(topic, payload, retain=True)

    def _report_rejection(self, topic: str, error: MessageRejectedError) -> None:
        self._rejected += 1
        now = asyncio.get_running_loop().time()
        if now - self._rejection_logged_at >= REJECTION_LOG_EVERY_S:
            unlogged = self._rejected - self._rejected_logged - 1
            more = f" ({unlogged} more rejected since the last report)" if unlogged else ""
            log.warning("MQTT command on %s rejected: %s%s", topic, error, more)
            self._rejection_logged_at, self._rejected_logged = now, self._rejected
        self._publish(self.error_topic, encode_payload(error.document), retain=False)

    # --- paho callbacks (network thread): hand everything to the event loop -----------------------

    def _handoff(self, callback: Callable[..., None], *args: object) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing left to tell
            self._loop.call_soon_threadsafe(callback, *args)

    def _paho_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self._handoff(self._on_refused, str(reason))
            return
        topics = [(self._command_filter, QOS), *((topic, QOS) for topic in self._listen)]
        if self._announcement is not None and self._announcement.birth_topic:
            topics.append((self._announcement.birth_topic, QOS))
        client.subscribe(topics)
        self._handoff(self._on_connected)

    def _paho_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._handoff(self._on_disconnected, str(reason))

    def _paho_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._handoff(self._on_message, message.topic, bytes(message.payload), bool(message.retain))

    def _paho_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        self._handoff(self._on_published, not reason.is_failure)

    # --- events (event-loop thread) --------------------------------------------------------------

    def _on_connected(self) -> None:
        if self._ever_connected:
            self._reconnects += 1
        self._ever_connected = True
        self._session_connected_at = asyncio.get_running_loop().time()
        self._state = ConnectionState.CONNECTED
        self._connected.set()
        s = self.settings
        log.info(
            "MQTT connected to %s:%d as %s (base topic %s) after %d failed attempts",
            s.host, s.port, s.client_id, s.base_topic, self._failures,
        )  # fmt: skip
        self.announce()
        self._flush()
        self._send(self.status_topic, ONLINE, retain=True)

    def _on_refused(self, reason: str) -> None:
        s = self.settings
        who = f"user {s.username!r}" if s.username else "anonymous (no username configured)"
        self._fail(f"MQTT broker {s.host}:{s.port} refused the connection for {who}: {reason}", refused=True)

    def _on_disconnected(self, reason: str) -> None:
        was_connected = self.connected
        self._connected.clear()
        self._session_ended.set()
        if was_connected and not self._stopping.is_set():
            self._last_error = f"lost the connection to {self.settings.host}:{self.settings.port}: {reason}"
            log.warning("MQTT %s; reconnecting", self._last_error)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        announcement = self._announcement
        if announcement is not None and topic == announcement.birth_topic:
            if payload == ONLINE.encode() and not retained:
                log.info("%s came online; announcing again", topic)
                self.announce()
            return
        handler = self._listen.get(topic)
        if handler is not None:
            try:
                handler(topic, payload)
            except Exception:
                log.exception("MQTT handler of %s failed", topic)
            return
        inbox = self._inbox
        if inbox is None:
            return
        try:
            if retained:
                raise inbox.rejected(
                    topic,
                    "retain",
                    True,
                    "retained commands are ignored (they would replay on every connect)",
                )
            key = topic[len(self.settings.base_topic) + 1 : -len("/set")]
            message = inbox.parse(topic, key, payload)
        except MessageRejectedError as error:
            self._report_rejection(topic, error)
            return
        if not self._commands.put(topic, message, supersedes=inbox.supersedes(message)):
            self._report_rejection(
                topic, inbox.rejected(topic, "topic", topic, "too many commands waiting; try again")
            )

    def _on_published(self, ok: bool) -> None:
        if ok:
            self._published += 1

    def _fail(self, message: str, *, refused: bool) -> None:
        # The same failure repeats every backoff period while the broker is away: log it once.
        level = logging.DEBUG if message == self._last_error else logging.ERROR
        self._last_error = message
        self._state = ConnectionState.REFUSED if refused else ConnectionState.RETRYING
        log.log(level, "%s (retrying with backoff)", message)

    # --- background tasks ------------------------------------------------------------------------

    async def _dispatch_commands(self) -> None:
        while True:
            topic, message = await self._commands.get()
            if self._inbox is None:
                continue
            try:
                await self._inbox.apply(topic, message)
            except MessageRejectedError as error:
                self._report_rejection(topic, error)
            except Exception:
                log.exception("MQTT message handler failed for %r", message)

    def _backoff_s(self) -> float:
        s = self.settings
        return Backoff(s.reconnect_min_s, s.reconnect_max_s, 0.5, 1.0).delay_s(self._failures + 1, self._rng)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if self._state is not ConnectionState.REFUSED:
                self._state = ConnectionState.CONNECTING
            stable = await self._session()
            if self._stopping.is_set():
                break
            self._failures = 0 if stable else self._failures + 1
            if self._state is ConnectionState.CONNECTED:
                self._state = ConnectionState.RETRYING
            delay = self._backoff_s()
            log.debug("MQTT next connection attempt in %.1f s (failures in a row: %d)", delay, self._failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _session(self) -> bool:
        """One connection from connect to disconnect; True when it stayed up long enough to count as stable."""
        s = self.settings
        self._session_ended.clear()
        self._session_connected_at = None
        try:
            await asyncio.to_thread(self._paho.connect, s.host, s.port, s.keepalive_s)
        except (OSError, ValueError) as exc:  # ssl.SSLError and socket.gaierror are OSErrors
            self._fail(f"cannot connect to MQTT broker {s.host}:{s.port}: {exc}", refused=False)
            return False
        self._paho.loop_start()
        try:
            stop = asyncio.ensure_future(self._stopping.wait())
            ended = asyncio.ensure_future(self._session_ended.wait())
            await asyncio.wait((stop, ended), return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            ended.cancel()
            if self._stopping.is_set() and not self._session_ended.is_set():
                await self._disconnect_cleanly()
        finally:
            await asyncio.to_thread(self._paho.loop_stop)
            self._end_session()
        started = self._session_connected_at
        return started is not None and asyncio.get_running_loop().time() - started >= STABLE_SESSION_S

    async def _disconnect_cleanly(self) -> None:
        if self.connected:
            info = self._paho.publish(self.status_topic, OFFLINE, qos=QOS, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                await asyncio.to_thread(info.wait_for_publish, 2.0)
        self._paho.disconnect()  # wakes the network thread, which sends DISCONNECT and ends
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._session_ended.wait(), 2.0)

    def _end_session(self) -> None:
        self._connected.clear()
        for message in self._paho.drop_out_messages():
            if message.retain and message.topic in self._latest:
                self._unsent.add(message.topic)  # sent again, as its latest value, after the next connect
            elif not message.retain:
                self._dropped += 1
