"""Pull the records of a JSON API (``kind: http``) page by page, with the standard library.

A 5xx answer or a dropped connection is retried (``retries`` times, backing off); any other
error, an answer that is not JSON (an HTML error page), more pages than ``max_pages`` or a
pagination that comes back to a page it gave already stops the pull, and nothing lands."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from andon.config import HttpSourceConfig
from andon.errors import SourceError

_LIST_KEYS = ("data", "items", "results", "records")


@dataclass(frozen=True)
class Page:
    number: int
    url: str
    records: list[dict[str, Any]]


def _dig(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _records(doc: Any, spec: HttpSourceConfig, name: str, url: str) -> list[dict[str, Any]]:
    found = _dig(doc, spec.records) if spec.records else doc
    if spec.records is None and isinstance(doc, dict):
        found = next((doc[k] for k in _LIST_KEYS if isinstance(doc.get(k), list)), None)
    if not isinstance(found, list):
        where = f"at {spec.records!r}" if spec.records else "in the answer"
        raise SourceError(f"source {name!r}: no list of records {where} of {url}",
                          step=name, hint="set 'records:' of the source to the dotted path "
                          "of the list (e.g. data.items)")
    bad = next((i for i, r in enumerate(found) if not isinstance(r, dict)), None)
    if bad is not None:
        raise SourceError(f"source {name!r}: record {bad} of {url} is not a JSON object: "
                          f"{json.dumps(found[bad])[:100]}", step=name)
    return found


def _get(url: str, spec: HttpSourceConfig, name: str, headers: dict[str, str],
         secret: str | None) -> Any:
    """The JSON document at ``url``, retrying 5xx answers and dropped connections."""
    last = ""
    for attempt in range(spec.retries + 1):
        if attempt:
            time.sleep(min(spec.backoff * 2 ** (attempt - 1), 30.0))
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=spec.timeout) as resp:
                body = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            if e.code >= 500:
                last = f"HTTP {e.code} {e.reason}"
                continue
            hint = ("check the secret named in auth_secret (andon secrets set NAME)"
                    if e.code in (401, 403) else "check url: of the source in andon.yaml")
            raise SourceError(f"source {name!r}: {url} answered HTTP {e.code} {e.reason}",
                              step=name, hint=hint + "; nothing was pulled") from e
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            last = str(getattr(e, "reason", e))
            continue
        text = body.decode("utf-8", errors="replace")
        if "html" in ctype.lower() or text.lstrip()[:1] == "<":
            excerpt = " ".join(text.split())[:120]
            if secret:
                excerpt = excerpt.replace(secret, "***")
            raise SourceError(f"source {name!r}: {url} answered HTML, not JSON: {excerpt}",
                              step=name, hint="a login or error page? check url: and the "
                              "auth secret; nothing was pulled")
        try:
            return json.loads(text)
        except ValueError as e:
            raise SourceError(f"source {name!r}: {url} answered text that is not JSON "
                              f"({e}): {text[:120]!r}", step=name,
                              hint="nothing was pulled") from e
    raise SourceError(f"source {name!r}: {url} failed {spec.retries + 1} times ({last})",
                      step=name, hint="the API is down? run the pull again later (retries: "
                      "in andon.yaml sets how often a pull retries); nothing was pulled")


def _with_param(url: str, key: str, value: Any) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != key]
    query.append((key, str(value)))
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


def pages(spec: HttpSourceConfig, name: str, secret: str | None) -> Iterator[Page]:
    """Every page of the source, following its pagination up to ``max_pages``."""
    headers = {"Accept": "application/json", "User-Agent": "andon"}
    if secret is not None:
        headers[spec.auth_header] = secret
    url = spec.url if spec.paginate != "page" else _with_param(spec.url, spec.page_param, 1)
    seen: set[str] = set()
    number = 1
    while True:
        if url in seen:
            raise SourceError(f"source {name!r}: the pagination loops: page {number} is "
                              f"{url} again", step=name,
                              hint="check 'paginate:'/'next:' of the source; nothing was "
                                   "pulled")
        seen.add(url)
        doc = _get(url, spec, name, headers, secret)
        records = _records(doc, spec, name, url)
        yield Page(number, url, records)
        following: str | None = None
        if spec.paginate == "next_link":
            link = _dig(doc, spec.next)
            following = urllib.parse.urljoin(url, link) if isinstance(link, str) and link \
                else None
        elif spec.paginate == "page" and records:
            following = _with_param(url, spec.page_param, number + 1)
        elif spec.paginate == "cursor":
            token = _dig(doc, spec.next)
            following = _with_param(url, spec.page_param, token) \
                if token not in (None, "") else None
        if following is None:
            return
        if number >= spec.max_pages:
            raise SourceError(f"source {name!r}: more than max_pages {spec.max_pages} pages "
                              f"(page {number + 1} would be {following})", step=name,
                              hint="an endless pagination? or raise max_pages of the source "
                                   "in andon.yaml; nothing was pulled")
        url = following
        number += 1
