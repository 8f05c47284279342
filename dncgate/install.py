"""What an operator installs from the package: the dialplans, prompts and service files, copied where
a switch or systemd looks for them (``dncgate dialplan install``, ``dncgate service install``).

The files ship inside the package under ``dncgate/share/``: ``dialplan/`` and ``prompts/`` there
are links to the repository's top-level directories (the source of truth), so a wheel carries
them as package data and a checkout reads them in place. A copy never overwrites a file whose
content differs from the shipped one unless forced: the operator may have edited it.
"""

from __future__ import annotations

import os
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from dncgate.errors import DncgateError

# dialplan/asterisk/: the files Asterisk reads (``#include`` d from extensions.conf); the rest are samples
ASTERISK_LIVE = ("extensions_dncgate.conf", "extensions_dncgate_ivr.conf", "extensions_dncgate_messages.conf")
# dialplan/freeswitch/: the contexts that go to conf/dialplan/ (the stock freeswitch.xml includes
# dialplan/*.xml); the profile, gateway and ACL are samples with placeholder addresses and credentials
FREESWITCH_LIVE = ("dncgate.xml", "dncgate_allowed.xml", "dncgate_ivr.xml")
SAMPLES_DIR = "dncgate-samples"  # under the switch's configuration directory: read by nothing
UNIT_EXEC = "/usr/local/bin/dncgate"  # ExecStart's program in the shipped unit; replaced on install
UNIT_CONFIG = "/etc/dncgate/dncgate.toml"  # the configuration file the shipped unit names
SAMPLE_CONFIG = "dncgate.toml"  # under share/: every key at its default, commented (``dncgate config sample``)


class InstallError(DncgateError, ValueError):
    """The shipped files are missing, or an installation cannot be planned."""


def shared(*parts: str) -> Traversable:
    """A file or directory under the package's ``share/`` (the shipped operator files)."""
    return resources.files("dncgate").joinpath("share", *parts)


@dataclass(frozen=True, slots=True)
class Copy:
    source: Traversable
    target: Path
    mode: int = 0o644
    content: bytes | None = None  # the shipped file rewritten for this host (the unit's ExecStart)
    keep: bool = False  # the operator's file once written (the configuration): never replaced, not even forced

    def read(self) -> bytes:
        return self.source.read_bytes() if self.content is None else self.content


class Action(Enum):
    INSTALL = "install"  # the target does not exist
    SAME = "unchanged"  # the target holds the shipped content already
    OVERWRITE = "overwrite"  # differs, replaced because forced
    REFUSE = "refused"  # differs, kept: the operator may have changed it
    KEEP = "kept"  # differs and is the operator's own (``Copy.keep``): kept, whatever --force says


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    copy: Copy

    def line(self, *, dry_run: bool) -> str:
        verb = self.action.value
        if dry_run and self.action in (Action.INSTALL, Action.OVERWRITE):
            verb = f"would {verb}"
        suffix = {Action.REFUSE: " (it differs from the shipped file; --force replaces it)",
                  Action.KEEP: " (yours: never replaced)"}.get(self.action, "")
        return f"{verb:<17} {self.copy.target}{suffix}"


def _files(root: Traversable, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    """Every file under ``root`` with its relative path parts, sorted, bounded in depth."""
    if len(prefix) > 8:
        raise InstallError(f"{'/'.join(prefix)}: directories nested too deep")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _files(entry, (*prefix, entry.name))
        elif entry.is_file():
            yield (*prefix, entry.name), entry


def _tree(source: Traversable, target: Path, *, skip: tuple[str, ...] = ()) -> list[Copy]:
    if not source.is_dir():
        raise InstallError(f"{source}: not shipped with this installation of dncgate")
    return [Copy(entry, target.joinpath(*parts)) for parts, entry in _files(source) if parts[0] not in skip]


def _named(source: Traversable, names: tuple[str, ...], target: Path) -> list[Copy]:
    missing = [name for name in names if not source.joinpath(name).is_file()]
    if missing:
        raise InstallError(f"{source}: {', '.join(missing)} not shipped with this installation of dncgate")
    return [Copy(source.joinpath(name), target / name) for name in names]


def switch_plan(switch: str, etc: Path | None, sounds: Path | None) -> list[Copy]:
    """The copies for ``switch`` (asterisk or freeswitch): dialplan into ``etc``, prompts into
    ``sounds``/dncgate/ (either may be None: that part is not installed)."""
    if switch not in ("asterisk", "freeswitch"):
        raise InstallError(f"{switch!r}: not a switch dncgate ships a dialplan for (asterisk, freeswitch)")
    if etc is None and sounds is None:
        raise InstallError("nothing to install: give the configuration directory, --sounds, or both")
    dialplan = shared("dialplan", switch)
    copies: list[Copy] = []
    if etc is not None:
        live = ASTERISK_LIVE if switch == "asterisk" else FREESWITCH_LIVE
        copies += _named(dialplan, live, etc if switch == "asterisk" else etc / "dialplan")
        samples = tuple(parts[0] for parts, _ in _files(dialplan) if parts[0] not in live)
        copies += _named(dialplan, samples, etc / SAMPLES_DIR)
    if sounds is not None:
        copies += _tree(shared("prompts", switch), sounds / "dncgate")
    return copies


def plan(copies: list[Copy], *, force: bool) -> list[Step]:
    """What each copy would do, reading (never writing) the targets."""
    steps = []
    for copy in copies:
        try:
            current = copy.target.read_bytes()
        except FileNotFoundError:
            steps.append(Step(Action.INSTALL, copy))
            continue
        except IsADirectoryError:
            raise InstallError(f"{copy.target}: is a directory") from None
        if current == copy.read():
            steps.append(Step(Action.SAME, copy))
        elif copy.keep:
            steps.append(Step(Action.KEEP, copy))
        else:
            steps.append(Step(Action.OVERWRITE if force else Action.REFUSE, copy))
    return steps


def apply(steps: list[Step]) -> int:
    """Write every INSTALL and OVERWRITE step (each file replaced whole, never half-written); how many."""
    written = 0
    for step in steps:
        if step.action not in (Action.INSTALL, Action.OVERWRITE):
            continue
        target = step.copy.target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(step.copy.read())
            os.chmod(tmp, step.copy.mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written += 1
    return written


def installed_command() -> Path:
    """The ``dncgate`` script of this installation (a venv's bin/, or pip's scripts directory)."""
    return Path(sysconfig.get_path("scripts")) / "dncgate"


def service_plan(prefix: Path, command: Path) -> list[Copy]:
    """The systemd unit (its ExecStart running ``command``), the sysusers.d entry and, when there is none
    yet, the configuration the unit names (the sample: every key at its default, commented), under ``prefix``."""
    if not command.is_absolute():
        raise InstallError(f"{command}: ExecStart needs an absolute path")
    if any(c.isspace() or c in "\\\"'%$;" for c in str(command)):
        raise InstallError(f"{command}: a path with spaces, quotes, % or $ would need escaping in a unit file")
    unit = shared("systemd", "dncgate.service")
    users = shared("systemd", "dncgate.sysusers")
    sample = shared(SAMPLE_CONFIG)
    if not unit.is_file() or not users.is_file() or not sample.is_file():
        raise InstallError("the systemd unit is not shipped with this installation of dncgate")
    text = unit.read_text(encoding="utf-8")
    shipped = f"ExecStart={UNIT_EXEC} "
    if shipped not in text:
        raise InstallError(f"{unit}: no {shipped!r} line to point at {command}")
    if f"--config {UNIT_CONFIG} " not in text:
        raise InstallError(f"{unit}: ExecStart does not name {UNIT_CONFIG}")
    rendered = text.replace(shipped, f"ExecStart={command} ").encode()
    return [
        Copy(unit, prefix / "etc/systemd/system/dncgate.service", content=rendered),
        Copy(users, prefix / "etc/sysusers.d/dncgate.conf"),
        Copy(sample, prefix / UNIT_CONFIG.lstrip("/"), keep=True),
    ]
