"""The UK Telephone Preference Service (TPS/CTPS) file: one number a record, CRLF line ends.

A record is either the fixed layout of a 5-character dialling code and 7 characters of local
number (12 characters, space-padded: ``01632960123 `` or ``020  7946000``... ), or the national
number in up to 12 characters. Either way the digits, spaces removed, are a UK national number:
a leading 0 and 9 or 10 more digits. Numbers come out in ``+44`` form.
"""

from __future__ import annotations

from collections.abc import Iterator

from dncgate.lists.formats import Entry, LineError

RECORD = 12


def tps_entries(lines: Iterator[str]) -> Iterator[Entry | LineError]:
    for line_no, line in enumerate(lines, start=1):
        record = line.removesuffix("\n").removesuffix("\r").lstrip("\ufeff")
        if not record.strip():
            continue
        if len(record) > RECORD:
            yield LineError(line_no, record[:80], f"{len(record)} characters: a TPS record has at most {RECORD}")
            continue
        if len(record) == RECORD and record[:5].strip().isdigit():
            digits = record[:5].strip() + record[5:].strip()  # dialling code + local number
        else:
            digits = record.strip()
        digits = digits.replace(" ", "")
        if not digits.isdigit():
            yield LineError(line_no, record, "not digits")
        elif not digits.startswith("0") or digits.startswith("00"):
            yield LineError(line_no, record, "a UK national number starts with a single 0")
        elif not 10 <= len(digits) <= 11:
            yield LineError(line_no, record, f"{len(digits)} digits: a UK national number has 10 or 11")
        else:
            yield Entry(line_no, "+44" + digits[1:])
