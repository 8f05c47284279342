"""The US FTC National Do Not Call Registry download, as telemarketers receive it per area code.

Full list ("flat text file"): one number a line, ``AAA,NNNNNNN`` (area code, then the 7-digit
number) or the 10 digits run together. Change list: ``AAA,NNNNNNN,DATE,A|D`` with the change date
(``YYYY-MM-DD`` or ``MM/DD/YYYY``) and A for added, D for deleted. Fields may be double-quoted.
Numbers come out in ``+1`` form; every line that is not one of these is reported with its number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from dncgate.lists.formats import MAX_LINE_CHARS, Entry, LineError

_AREA = re.compile(r"[2-9][0-9]{2}")
_LOCAL = re.compile(r"[2-9][0-9]{6}")
_ACTIONS = {"A": "add", "D": "remove"}


def ftc_entries(lines: Iterator[str]) -> Iterator[Entry | LineError]:
    for line_no, line in enumerate(lines, start=1):
        text = line.strip().lstrip("\ufeff")
        if not text:
            continue
        if len(text) > MAX_LINE_CHARS:
            yield LineError(line_no, text[:80], f"line longer than {MAX_LINE_CHARS} characters")
            continue
        fields = [f.strip().strip('"').strip() for f in text.split(",")]
        if len(fields) == 1 and len(fields[0]) == 10:
            fields = [fields[0][:3], fields[0][3:]]
        if len(fields) not in (2, 4):
            yield LineError(line_no, text[:80], f"{len(fields)} fields: expected AAA,NNNNNNN or AAA,NNNNNNN,DATE,A|D")
            continue
        area, local = fields[0], fields[1]
        if not _AREA.fullmatch(area):
            yield LineError(line_no, text[:80], f"area code {area!r} is not three digits starting 2-9")
            continue
        if not _LOCAL.fullmatch(local):
            yield LineError(line_no, text[:80], f"number {local!r} is not seven digits starting 2-9")
            continue
        if len(fields) == 2:
            yield Entry(line_no, f"+1{area}{local}")
            continue
        action = _ACTIONS.get(fields[3].upper())
        if action is None:
            yield LineError(line_no, text[:80], f"change type {fields[3]!r} is not A (added) or D (deleted)")
            continue
        when = _date(fields[2])
        if when is None:
            yield LineError(line_no, text[:80], f"change date {fields[2]!r} is not YYYY-MM-DD or MM/DD/YYYY")
            continue
        yield Entry(line_no, f"+1{area}{local}", action=action, effective_at=when)


def _date(text: str) -> str | None:
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return None
