"""Secrets: credentials encrypted at rest (Fernet), resolved only when a step runs, redacted
from everything andon prints or stores, never part of a fingerprint.

The key comes from ``ANDON_SECRETS_KEY`` or from ``.andon/secrets.key`` (created with mode
0600 on first use). Values are per environment, or for every environment (``*``)."""

from __future__ import annotations

import contextlib
import decimal
import functools
import os
import re
import time
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from andon.errors import AndonError, did_you_mean
from andon.store import Row, Store

KEY_ENV = "ANDON_SECRETS_KEY"
ALL = "*"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


class SecretError(AndonError):
    """A missing secret, a bad name or a key that does not decrypt."""


def key_file(root: Path) -> Path:
    return root / ".andon" / "secrets.key"


def load_key(root: Path, *, create: bool) -> bytes:
    env = os.environ.get(KEY_ENV)
    if env:
        key = env.encode()
    else:
        path = key_file(root)
        if not path.exists():
            if not create:
                raise SecretError("no secrets key", hint=f"set {KEY_ENV}, or create secrets "
                                  "with `andon secrets set NAME` (which creates "
                                  ".andon/secrets.key)")
            _create_key(path)
        key = path.read_bytes().strip()
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise SecretError("the secrets key is not a valid Fernet key",
                          hint=f"check {KEY_ENV} or .andon/secrets.key (32 url-safe base64 "
                               "bytes)") from None
    return key


def _create_key(path: Path) -> None:
    """Write a new key with mode 0600, atomically: a process creating it at the same time
    either wins or reads the winner's key, never a half-written or a second key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it first
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise SecretError(f"invalid secret name {name!r}",
                          hint="use letters, digits, '_', '-' or '.', starting with a letter")


def set_secret(store: Store, root: Path, name: str, value: str, *, environment: str = ALL,
               who: str) -> None:
    _check_name(name)
    if environment != ALL:
        from andon.environments import check_name as check_environment

        check_environment(environment)
    token = Fernet(_key_to_set(store, root)).encrypt(value.encode()).decode()
    store.secrets.put(name, environment, token, who=who)


def _key_to_set(store: Store, root: Path) -> bytes:
    """The key, created on first use only: with secrets stored, a missing key file is lost,
    and a new key would leave every stored secret undecryptable."""
    if os.environ.get(KEY_ENV) or key_file(root).exists():
        return load_key(root, create=False)
    stored = list_secrets(store)
    if stored:
        raise SecretError(
            f"the secrets key is missing ({KEY_ENV} is not set and .andon/secrets.key does "
            f"not exist), and {len(stored)} stored secret(s) were encrypted with it",
            hint="restore .andon/secrets.key from a backup (or set "
                 f"{KEY_ENV}); if the key is lost, remove the secrets (`andon secrets rm "
                 "NAME --env ENV`) and set them again, which creates a new key")
    return load_key(root, create=True)


def list_secrets(store: Store) -> list[Row]:
    return [{"name": r.name, "environment": r.environment,
             "updated": time.strftime("%Y-%m-%dT%H:%M:%S",
                                      time.localtime(r.updated_at.timestamp())),
             "by": r.updated_by} for r in store.secrets.all()]


def remove_secret(store: Store, name: str, *, environment: str = ALL) -> None:
    if not store.secrets.remove(name, environment):
        hint = did_you_mean(name, [r["name"] for r in list_secrets(store)])
        raise SecretError(f"no secret {name!r} for environment {environment!r}", hint=hint)


def get_secret(store: Store, root: Path, name: str, environment: str, *,
               step: str | None = None) -> str:
    """The value for ``environment`` (or for every environment), decrypted."""
    rows = store.secrets.ciphertexts(name, [environment, ALL])
    token = rows.get(environment) or rows.get(ALL)
    if token is None:
        raise SecretError(
            f"secret {name!r} is not set for environment {environment!r}", step=step,
            hint=f"set it: andon secrets set {name} --env {environment}",
        )
    try:
        return Fernet(load_key(root, create=False)).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretError(
            f"secret {name!r} cannot be decrypted: the secrets key is not the one it was "
            "encrypted with", step=step,
            hint=f"use the right key ({KEY_ENV} or .andon/secrets.key), or set the secret "
                 "again",
        ) from None


SHOWN = 8  # an error's excerpt may cut a secret: any part this long of it is hidden too


def redact(text: str, values: list[str]) -> str:
    """``text`` without the values: raw, SQL-escaped (``'`` doubled), or any part of
    ``SHOWN`` characters or more of them (what an excerpt of a query keeps)."""
    forms = {f for v in values if v for f in (v, v.replace("'", "''"))}
    for v in sorted(forms, key=len, reverse=True):
        text = text.replace(v, "***")
        while len(v) > SHOWN:
            m = SequenceMatcher(None, text, v, autojunk=False).find_longest_match()
            if m.size < SHOWN:
                break
            text = text[:m.a] + "***" + text[m.a + m.size:]
    return text


def stored_values(store: Store, root: Path) -> Callable[[], list[str]]:
    """Every stored secret value the key decrypts, of every environment (an artifact built in
    one environment is checked in another when promoted); read once, on first call, so
    nothing is decrypted unless there is something to redact."""

    @functools.cache
    def values() -> list[str]:
        tokens = [r.ciphertext for r in store.secrets.all()]
        if not tokens:
            return []
        try:
            fernet = Fernet(load_key(root, create=False))
        except SecretError:
            return []
        out: list[str] = []
        for token in tokens:
            with contextlib.suppress(InvalidToken):
                out.append(fernet.decrypt(token.encode()).decode())
        return out

    return values


def redact_all(value: Any, values: list[str]) -> Any:
    """``value`` (a string, or lists and dicts of them, as stored in JSON) with every form of
    the secret values replaced by ``***``."""
    if not values:
        return value
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, dict):
        return {redact_all(k, values): redact_all(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_all(v, values) for v in value)
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool) \
            and any(_same_number(value, v) for v in values):
        return "***"  # a numeric secret read as a number (a PIN cast to INTEGER)
    return value


def _same_number(number: int | float | decimal.Decimal, secret: str) -> bool:
    if len(secret.strip()) < 4:  # a one-digit "secret" would hide every count of 1
        return False
    try:
        return decimal.Decimal(secret.strip()) == decimal.Decimal(str(number))
    except (decimal.InvalidOperation, ValueError):
        return False
