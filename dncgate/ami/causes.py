"""Q.850 cause codes to the canonical names both switches' records use (FreeSWITCH's spelling).

Asterisk's ``Cause-txt`` is prose ("Call Rejected", "Normal Clearing"); FreeSWITCH reports
``CALL_REJECTED``. A :class:`~dncgate.events.CallRecord` carries the latter for both switches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["CAUSE_NAMES", "DISPOSITION_CAUSES", "cause_name"]

CAUSE_NAMES: Mapping[int, str] = MappingProxyType(
    {
        0: "NONE",
        1: "UNALLOCATED_NUMBER",
        2: "NO_ROUTE_TRANSIT_NET",
        3: "NO_ROUTE_DESTINATION",
        6: "CHANNEL_UNACCEPTABLE",
        7: "CALL_AWARDED_DELIVERED",
        16: "NORMAL_CLEARING",
        17: "USER_BUSY",
        18: "NO_USER_RESPONSE",
        19: "NO_ANSWER",
        20: "SUBSCRIBER_ABSENT",
        21: "CALL_REJECTED",
        22: "NUMBER_CHANGED",
        23: "REDIRECTION_TO_NEW_DESTINATION",
        25: "EXCHANGE_ROUTING_ERROR",
        27: "DESTINATION_OUT_OF_ORDER",
        28: "INVALID_NUMBER_FORMAT",
        29: "FACILITY_REJECTED",
        30: "RESPONSE_TO_STATUS_ENQUIRY",
        31: "NORMAL_UNSPECIFIED",
        34: "NORMAL_CIRCUIT_CONGESTION",
        38: "NETWORK_OUT_OF_ORDER",
        41: "NORMAL_TEMPORARY_FAILURE",
        42: "SWITCH_CONGESTION",
        43: "ACCESS_INFO_DISCARDED",
        44: "REQUESTED_CHAN_UNAVAIL",
        45: "PRE_EMPTED",
        50: "FACILITY_NOT_SUBSCRIBED",
        52: "OUTGOING_CALL_BARRED",
        54: "INCOMING_CALL_BARRED",
        57: "BEARERCAPABILITY_NOTAUTH",
        58: "BEARERCAPABILITY_NOTAVAIL",
        63: "SERVICE_UNAVAILABLE",
        65: "BEARERCAPABILITY_NOTIMPL",
        66: "CHAN_NOT_IMPLEMENTED",
        69: "FACILITY_NOT_IMPLEMENTED",
        79: "SERVICE_NOT_IMPLEMENTED",
        81: "INVALID_CALL_REFERENCE",
        88: "INCOMPATIBLE_DESTINATION",
        95: "INVALID_MSG_UNSPECIFIED",
        96: "MANDATORY_IE_MISSING",
        97: "MESSAGE_TYPE_NONEXIST",
        98: "WRONG_MESSAGE",
        99: "IE_NONEXIST",
        100: "INVALID_IE_CONTENTS",
        101: "WRONG_CALL_STATE",
        102: "RECOVERY_ON_TIMER_EXPIRE",
        103: "MANDATORY_IE_LENGTH_ERROR",
        111: "PROTOCOL_ERROR",
        127: "INTERWORKING",
    }
)

# CDR Disposition -> the cause to report when a Cdr arrives but the calling leg's Hangup never does.
DISPOSITION_CAUSES: Mapping[str, int] = MappingProxyType(
    {"ANSWERED": 16, "BUSY": 17, "NO ANSWER": 19, "CONGESTION": 34, "FAILED": 41}
)

_NOT_WORD = re.compile(r"[^A-Z0-9]+")


def cause_name(cause: int, cause_txt: str = "") -> str:
    """Canonical name for a Q.850 cause; unknown codes fall back to ``Cause-txt`` in UPPER_SNAKE."""
    name = CAUSE_NAMES.get(cause)
    if name is not None:
        return name
    fallback = _NOT_WORD.sub("_", cause_txt.upper()).strip("_")
    return fallback or "UNKNOWN"
