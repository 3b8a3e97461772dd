"""Rules updates on their own channel (the `pz.rules` topic): a signed envelope around the rules
document and the time it was published, so that an edge can tell newer rules from older ones
whichever way they reach it (this channel or a snapshot)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from schemas.errors import DecodeError
from schemas.rules.model import RuleSet, load_rules_json
from schemas.signing import Signer, Verifier, open_sealed, seal


def seal_rules(rules: RuleSet, published_ms: int, key: Signer) -> bytes:
    body = b'{"published_ms":' + str(int(published_ms)).encode() + b',"rules":' + rules.to_json() + b"}"
    return seal(body, key)


def open_rules(data: bytes, keys: Mapping[str, Verifier]) -> tuple[RuleSet, int]:
    """The rules and when they were published; SchemaError if it does not verify, RulesInvalid if the
    rules do not validate."""
    payload = bytes(open_sealed(data, keys))
    try:
        message = orjson.loads(payload)
        published_ms = int(message["published_ms"])
        document = orjson.dumps(message["rules"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"not a rules update: {exc}") from None
    return load_rules_json(document), published_ms
