"""``dncgate config check``: validate the configuration and print what it says."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from dncgate.cli import codes
from dncgate.cli.base import command, group, with_store
from dncgate.settings import EslSettings, Listener, Settings
from dncgate.store.protocol import ListStore


def add_commands(sub: Any) -> None:
    command(sub, "init", _init, "create the configured store and its schema (the SQLite file), print where it is")
    config = group(sub, "config", "configuration")
    command(config, "check", _config_check, "validate the configuration and print it")
    command(config, "sample", _config_sample, "print a dncgate.toml with every key at its default, commented")
    command(config, "reference", _config_reference, "print the settings reference: every key (Markdown)")


async def _init(args: argparse.Namespace, config: Settings) -> int:
    store = config.store
    existed = store.backend == "sqlite" and store.path.is_file()

    async def run(opened: ListStore) -> int:
        await opened.ping()  # the first connection creates the file and its schema
        return codes.OK

    await with_store(config, run, create=True)
    if store.backend == "redis":
        print(f"redis store {store.url}: reachable (Redis keeps no schema to create)")
    else:
        print(f"sqlite store {store.path.absolute()}: {'already there, schema checked' if existed else 'created'}")
    return codes.OK


async def _config_check(args: argparse.Namespace, config: Settings) -> int:
    print(f"configuration file: {config.path or 'none (built-in defaults)'}")
    print(f"configuration OK ({config.source})")
    print(f"  store: {config.store.backend} "
          f"{config.store.path if config.store.backend == 'sqlite' else config.store.url} "
          f"timeout {config.store.timeout_ms} ms")
    for door in ("agi", "esl", "http"):
        listen = getattr(config, door)
        print(f"  {door}: {'on' if listen.enabled else 'off'} {listen.host}:{listen.port}")
    from dncgate.feeds import asterisk_feed_of, freeswitch_feed_of

    ami, esl_feed = asterisk_feed_of(config.ami), freeswitch_feed_of(config.esl_feed)
    print(f"  ami feed: {f'on {ami.manager.host}:{ami.manager.port} as {ami.manager.username}' if ami else 'off'}")
    print(f"  esl feed: {f'on {esl_feed.host}:{esl_feed.port}' if esl_feed else 'off'}")
    if changed := _changed(config.esl):
        print("  esl handler: " + ", ".join(f"{key} {value!r}" for key, value in changed.items()))
    for name, t in sorted(config.tenants.items()):
        print(f"  tenant {name}: region {t.dial_plan.region}, {t.mode.value}, {t.list_policy.value}, "
              f"default {t.default_purpose.value}, reject {t.reject_sip_code}, "
              f"check failed {t.check_failed_sip_code} (marketing {t.marketing_on_failure.value}, "
              f"service {t.service_on_failure.value})")
    _print_early_warning(config)
    return codes.OK


def _print_early_warning(config: Settings) -> None:
    from dncgate.settings.early_warning import watches

    early = config.early_warning
    print(f"  early warning: {f'on {early.path}' if early.enabled else 'off'}")
    if early.enabled and early.transport == "redis":
        print(f"    shared over the store's Redis: {early.stream.partitions} partitions, "
              f"lease {early.stream.lease:g} s")
    if early.enabled:
        for name, watch in sorted(watches(early, config.tenants).items()):
            acting = sum(1 for rule in watch.rules if not rule.report_only)
            print(f"    tenant {name}: originator {watch.key.value}, zone {watch.zone}, {len(watch.rules)} rules "
                  f"({acting} acting, {len(watch.rules) - acting} report only)")


async def _config_sample(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.settings.reference import sample

    sys.stdout.write(sample())
    return codes.OK


async def _config_reference(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.settings.reference import reference

    sys.stdout.write(reference())
    return codes.OK


def _changed(table: EslSettings) -> dict[str, object]:
    """The handler keys of ``[esl]`` that differ from their defaults."""
    default = EslSettings()
    return {f.encode_name: getattr(table, f.name) for f in msgspec.structs.fields(table)
            if f.name not in Listener.__struct_fields__ and getattr(table, f.name) != getattr(default, f.name)}
