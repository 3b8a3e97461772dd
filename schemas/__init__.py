"""pz contracts shared by the edge and the aggregator: events, profiles, snapshots, deltas, signing."""

from schemas.delta_codec import DeltaBatch, decode_delta, encode_delta
from schemas.errors import DecodeError, SchemaError, SignatureError, ValidationError
from schemas.event_codec import decode_event, encode_event
from schemas.events import EVENT_TYPES, MAX_BODY_BYTES, Attribution, Event, parse_browser_event
from schemas.profiles import ItemHistory, Lifetime, Profile
from schemas.signing import SigningKey, open_sealed, seal
from schemas.snapshot_codec import PartitionPosition, SnapshotContent, SnapshotReader, encode_snapshot
from schemas.user_key import user_key

__all__ = [
    "Attribution",
    "DecodeError",
    "DeltaBatch",
    "EVENT_TYPES",
    "Event",
    "ItemHistory",
    "Lifetime",
    "MAX_BODY_BYTES",
    "PartitionPosition",
    "Profile",
    "SchemaError",
    "SignatureError",
    "SigningKey",
    "SnapshotContent",
    "SnapshotReader",
    "ValidationError",
    "decode_delta",
    "decode_event",
    "encode_delta",
    "encode_event",
    "encode_snapshot",
    "open_sealed",
    "parse_browser_event",
    "seal",
    "user_key",
]
