"""Content negotiation: which decoder reads the body, which encoder writes the answer.

Content-Type parameters (``; charset=utf-8``) are ignored. Accept parameters are not: they
select the verbose answer (``application/json; verbose=true; top_k=3``), as do the same keys in
the ``X-Amzn-SageMaker-Custom-Attributes`` header (``verbose=true,top_k=3``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from serve import contract
from serve.errors import BadInput, NotAcceptable, UnsupportedContentType

_TRUE = ("true", "1", "yes")


@dataclass(frozen=True)
class ResponseOptions:
    verbose: bool = False
    top_k: int = contract.DEFAULT_TOP_K


@dataclass(frozen=True)
class Negotiated:
    request_type: str
    response_type: str
    options: ResponseOptions


def negotiate(
    headers: Mapping[str, str],
    decodable: Collection[str],
    encodable: Collection[str],
    default_accept: str = contract.DEFAULT_ACCEPT,
) -> Negotiated:
    """415 for a body we cannot read, 406 for an answer we cannot write, 400 for a bad top_k."""
    request_type = request_content_type(headers.get("Content-Type"), decodable)
    response_type, accept_params = response_content_type(
        headers.get("Accept"), encodable, default_accept
    )
    attributes = custom_attributes(headers.get(contract.HEADER_CUSTOM_ATTRIBUTES))
    return Negotiated(request_type, response_type, response_options(accept_params, attributes))


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """``"Type/Sub; K=v"`` -> ``("type/sub", {"k": "v"})``."""
    kind, *raw_params = value.split(";")
    params: dict[str, str] = {}
    for raw in raw_params:
        key, sep, val = raw.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"')
    return kind.strip().lower(), params


def request_content_type(header: str | None, supported: Collection[str]) -> str:
    kind = parse_media_type(header)[0] if header else ""
    if kind not in supported:
        shown = kind or "(none)"
        raise UnsupportedContentType(
            f"Content-Type {shown} is not supported; send one of {', '.join(supported)}"
        )
    return kind


def response_content_type(
    header: str | None, supported: Collection[str], default: str = contract.DEFAULT_ACCEPT
) -> tuple[str, dict[str, str]]:
    """Pick the most preferred Accept entry we can produce; no Accept (or a wildcard) means
    ``default``: JSON for classification, image/png for segmentation."""
    if not header or not header.strip():
        return default, {}
    ranges = []
    for position, item in enumerate(header.split(",")):
        kind, params = parse_media_type(item)
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranges.append((-quality, position, kind, params))
    for _, _, kind, params in sorted(ranges):
        if kind in supported:
            return kind, params
        if kind in contract.ACCEPT_WILDCARDS:
            return default, params
    raise NotAcceptable(
        f"Accept {header.strip()} cannot be produced; accept one of {', '.join(supported)}"
    )


def custom_attributes(header: str | None) -> dict[str, str]:
    """``"verbose=true, top_k=3"`` (``,`` or ``;`` separated) -> dict; other text is ignored."""
    attributes: dict[str, str] = {}
    for item in (header or "").replace(";", ",").split(","):
        key, sep, val = item.partition("=")
        if sep:
            attributes[key.strip().lower()] = val.strip()
    return attributes


def response_options(accept_params: dict[str, str], attributes: dict[str, str]) -> ResponseOptions:
    """Accept parameters win over custom attributes; asking for ``top_k`` implies verbose."""
    merged = {**attributes, **accept_params}
    verbose = merged.get(contract.PARAM_VERBOSE, "").lower() in _TRUE
    raw_k = merged.get(contract.PARAM_TOP_K)
    if raw_k is None:
        return ResponseOptions(verbose=verbose)
    try:
        top_k = int(raw_k)
    except ValueError:
        top_k = 0
    if top_k < 1:
        raise BadInput(f"top_k={raw_k!r} is not a positive integer; send e.g. top_k=5")
    return ResponseOptions(verbose=True, top_k=top_k)
