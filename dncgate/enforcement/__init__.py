"""Enforcement: cases opened from early-warning alerts, notices, restrictions, suspensions, appeals,
complaints, and the record of every step (hash-chained, exportable for a regulator).

The regulator's rule (../shared/reference/regulation/): carriers and resellers may restrict a
violator's new communication resources or suspend its service; they must keep records, notify the
party before suspending, and provide an appeal path. The stores own the persistence
(``store/sqlite/cases.py``, ``store/redis/cases.py``) behind ``enforcement.protocol.CaseStore``;
the gate reads each originator's standing in its one store round trip (``Facts``).
"""
