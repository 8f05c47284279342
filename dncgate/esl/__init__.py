"""FreeSWITCH event-socket (ESL) protocol layer: codec, outbound server, inbound client."""

from dncgate.esl.codec import EslDecoder, Limits
from dncgate.esl.errors import (
    AccessDeniedError,
    AuthError,
    CommandEncodingError,
    CommandError,
    EslConnectionClosed,
    EslError,
    EslProtocolError,
    EslTimeoutError,
    IncompleteMessageError,
    InvalidBodyError,
    InvalidContentLengthError,
    LimitExceededError,
    MalformedHeaderError,
    UnexpectedMessageError,
)
from dncgate.esl.inbound import Backoff, InboundClient, InboundConfig, stream_events
from dncgate.esl.messages import ChannelData, Event, Headers, Message
from dncgate.esl.outbound import Handler, OutboundConfig, OutboundServer, OutboundSession

__all__ = [
    "AccessDeniedError",
    "AuthError",
    "Backoff",
    "ChannelData",
    "CommandEncodingError",
    "CommandError",
    "EslConnectionClosed",
    "EslDecoder",
    "EslError",
    "EslProtocolError",
    "EslTimeoutError",
    "Event",
    "Handler",
    "Headers",
    "InboundClient",
    "InboundConfig",
    "IncompleteMessageError",
    "InvalidBodyError",
    "InvalidContentLengthError",
    "LimitExceededError",
    "Limits",
    "MalformedHeaderError",
    "Message",
    "OutboundConfig",
    "OutboundServer",
    "OutboundSession",
    "UnexpectedMessageError",
    "stream_events",
]
