"""Things the package once defined two or three times are defined once: the decline-all category,
the ISO timestamp, the backoff; and the two manifests have names that say which is which."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import dncgate

PACKAGE = Path(dncgate.__file__).parent


def _top_level_definitions() -> dict[str, list[str]]:
    """Module-level function, class and assigned names -> the modules defining them."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [target.id for target in targets if isinstance(target, ast.Name)]
            else:
                names = []
            for name in names:
                where[name].append(module)
    return where


def _classes_with_a_delay_method() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(item, ast.FunctionDef) and item.name == "delay" for item in node.body
            ):
                found.append(f"{path.relative_to(PACKAGE).as_posix()}:{node.name}")
    return found


def test_decline_all_and_now_iso_are_defined_once() -> None:
    where = _top_level_definitions()
    assert where["DECLINE_ALL"] == ["dncgate.model"]
    assert where["now_iso"] == ["dncgate.clock"]


def test_one_backoff_and_no_class_named_like_redis_py_s() -> None:
    # The protocol callers type against, and the one implementation.
    assert _classes_with_a_delay_method() == ["backoff.py:BackoffPolicy", "backoff.py:Backoff"]
    where = _top_level_definitions()
    assert where["ExponentialBackoff"] == []
    assert where["RetryPolicy"] == []


def test_the_two_manifests_are_named_for_what_they_describe() -> None:
    where = _top_level_definitions()
    assert where["Manifest"] == []
    assert where["ListManifest"] == ["dncgate.lists.manifest"]
    assert where["ExportManifest"] == ["dncgate.consent.export"]
