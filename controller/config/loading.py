"""Loading the configuration: TOML file, environment and credential files, readable errors.

Sources, highest priority first:
1. environment variables ``HEMSD_<SECTION>__<KEY>`` (nested with ``__``),
2. credential files (systemd ``$CREDENTIALS_DIRECTORY``), named like ``mqtt__password``, used
   where the file has that table (a credential for a section that is not configured is ignored),
3. the TOML file.

Unknown keys are errors. A bad configuration raises ConfigError carrying one readable line per
problem (key path, bad value, what is allowed); secrets are never echoed.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.config.models import (
    CREDENTIALS_ENV,
    SECRET_KEYS,
    ConfigError,
    EmulatedInverterConfig,
    GoodweInverterConfig,
    HemsdConfig,
    redact,
)

log = logging.getLogger(__name__)

MAX_PROBLEM_CHARS = 300  # one line of a problem, whatever value the file holds
MAX_CONFIG_BYTES = 1_000_000  # the example with every key is 25 kB


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every model class an annotation can hold (through Optional, unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _pick(models: list[type[BaseModel]], tag: object) -> type[BaseModel] | None:
    """The member of a discriminated union whose ``type`` is ``tag`` (else the only or first one)."""
    for model in models:
        field = model.model_fields.get("type")
        if field is not None and field.default == tag:
            return model
    return models[0] if models else None


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model found at ``loc`` (best effort, for the unknown-key hint)."""
    current: type[BaseModel] | None = model
    candidates: list[type[BaseModel]] = []
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        if part not in current.model_fields:
            # a discriminated union's tag: choose that member
            chosen = _pick(candidates, part) if candidates else None
            if chosen is not None:
                current = chosen
            continue
        candidates = _models_in(current.model_fields[part].annotation)
        current = _pick(candidates, None)
    return sorted(current.model_fields) if current is not None else []


def _model_at(data: dict[str, Any], path: list[str]) -> tuple[type[BaseModel], dict[str, Any]] | None:
    """The model and the file's table at ``path``, following ``type`` tags; None if the file has no such table."""
    model: type[BaseModel] = HemsdConfig
    node: Any = data
    candidates: list[type[BaseModel]] = []
    for key in path:
        if key.isdigit() and isinstance(node, list):
            index = int(key)
            if index >= len(node) or not isinstance(node[index], dict):
                return None
            node = node[index]
            chosen = _pick(candidates, node.get("type"))
            if chosen is None:
                return None
            model = chosen
            continue
        if not isinstance(node, dict) or key not in node or key not in model.model_fields:
            return None
        node = node[key]
        candidates = _models_in(model.model_fields[key].annotation)
        if isinstance(node, dict):
            chosen = _pick(candidates, node.get("type"))
            if chosen is None:
                return None
            model = chosen
    return (model, node) if isinstance(node, dict) else None


def apply_credentials(data: dict[str, Any], directory: Path) -> list[str]:
    """Put each credential file (``mqtt__password``) into the table it names, in place.

    A credential applies only where the configuration file has that table and its kind has that
    key (an InfluxDB token does not apply to a 1.x server); the others are returned, unused.
    """
    ignored: list[str] = []
    for file in sorted(directory.iterdir()):
        path = file.name.split("__")
        if len(path) < 2 or not file.is_file():
            continue
        target = _model_at(data, path[:-1])
        if target is None or path[-1] not in target[0].model_fields:
            ignored.append(file.name)
            continue
        target[1][path[-1]] = file.read_text(encoding="utf-8").rstrip("\r\n")
    return ignored


def _format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        secret = any(str(p) in SECRET_KEYS for p in loc)
        # the input of a table-level error is the whole table: its secrets are masked too
        value = "<hidden>" if secret else repr(redact(err.get("input")))
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(HemsdConfig, loc[:-1])
            hint = ""
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            if close:
                hint = f"; did you mean {close[0]!r}?"
            problems.append(f"{key}: unknown key{hint} (allowed: {', '.join(allowed)})")
        elif err["type"] == "union_tag_invalid":
            problems.append(f"{key}: {err['msg']}")
        elif not loc:  # a check across tables: its message names the keys and values, the input is all
            problems.append(str(err["msg"]).removeprefix("Value error, "))
        elif err["type"] == "value_error" and isinstance(err.get("input"), dict):
            problems.append(_table_problem(key, str(err["msg"]), err["input"], secret))
        else:
            problems.append(f"{key}: {err['msg']} (got {value})")
    return [p if len(p) <= MAX_PROBLEM_CHARS else p[: MAX_PROBLEM_CHARS - 3] + "..." for p in problems]


def _table_problem(key: str, message: str, table: dict[str, Any], secret: bool) -> str:
    """A check within one table: its message, and the values of the table's keys it names
    (not the whole table, which would bury them)."""
    message = message.removeprefix("Value error, ")
    named = [k for k in table if re.search(rf"(?<![\w.]){re.escape(str(k))}(?!\w)", message)]
    values = {k: v for k, v in redact({k: table[k] for k in named}).items() if str(v) not in message}
    if not values:
        return f"{key}: {message}"
    shown = ", ".join(f"{k}={'<hidden>' if secret else repr(v)}" for k, v in values.items())
    return f"{key}: {message} (got {shown})"


def load_config_text(
    text: str, source: str = "<text>", credentials_dir: Path | None = None, *, need_secrets: bool = True
) -> HemsdConfig:
    """Parse and validate a whole TOML configuration. Raises ConfigError, never anything else.

    ``need_secrets=False`` is for the commands that only read the state directory: a web server
    whose token is not at hand is taken as disabled rather than an error (they serve nothing)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source) from None
    cred = credentials_dir
    if cred is None and os.environ.get(CREDENTIALS_ENV):
        cred = Path(os.environ[CREDENTIALS_ENV])
    if cred is not None and cred.is_dir():
        try:
            for name in apply_credentials(data, cred):
                log.warning("credential %s does not apply to this configuration; ignored", name)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"cannot read the credentials directory {cred}: {exc}"], source) from None
    _only_the_chosen_inverter(data)
    if not need_secrets:
        _without_unread_secrets(data)
    try:
        return HemsdConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc), source) from None
    except (ValueError, TypeError) as exc:  # raised by settings sources, e.g. a malformed env value
        raise ConfigError([str(exc)], source) from None


def _only_the_chosen_inverter(data: dict[str, Any]) -> None:
    """``[inverter]`` may keep the keys of every inverter type (the example does): only the chosen
    type's are read, so switching ``type`` is a one-line edit. A key of no type is still an error."""
    table = data.get("inverter")
    if not isinstance(table, dict):
        return
    models = {m.model_fields["type"].default: m for m in (GoodweInverterConfig, EmulatedInverterConfig)}
    kind = table.get("type", EmulatedInverterConfig.model_fields["type"].default)
    chosen = models.get(kind) if isinstance(kind, str) else None
    if chosen is None:
        return  # an unknown type: the validation names it
    others = {name for model in models.values() if model is not chosen for name in model.model_fields}
    for name in list(table):
        if name in others and name not in chosen.model_fields:
            del table[name]


def _without_unread_secrets(data: dict[str, Any]) -> None:
    web = data.get("web")
    if isinstance(web, dict) and web.get("enabled") is True and not web.get("token"):
        web["enabled"] = False


def read_config_bytes(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_CONFIG_BYTES (a FIFO, a device or an endless
    file would block or fill the memory of whoever reads it). ConfigError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigError(["the configuration is not a regular file"], str(path))
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"cannot read the configuration file: {exc.strerror or exc}"], str(path)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"the configuration file is larger than {MAX_CONFIG_BYTES} bytes"], str(path))
    return data


def load_config(path: Path, credentials_dir: Path | None = None, *, need_secrets: bool = True) -> HemsdConfig:
    """The configuration in ``path``; ConfigError (one line per problem) for anything that is not one."""
    try:
        text = read_config_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(["the configuration file is not UTF-8 text"], str(path)) from None
    try:
        return load_config_text(text, str(path), credentials_dir, need_secrets=need_secrets)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(["the configuration is nested too deeply"], str(path)) from None
    except Exception as exc:  # a parser's own failure must still be one line, never a traceback
        raise ConfigError(
            [f"cannot be read as a configuration ({type(exc).__name__}: {exc})"], str(path)
        ) from None
