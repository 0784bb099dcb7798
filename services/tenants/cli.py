"""Command line for operators: tenants and API keys, over the same RPC the admin API uses.

    python -m services.tenants.cli create-tenant acme
    python -m services.tenants.cli list-tenants
    python -m services.tenants.cli create-key --tenant acme --name ci [--rpm 60] [--tokens-per-day 100000]
                                              [--model gpt-4o-mini --model ...]
    python -m services.tenants.cli list-keys [--tenant acme]
    python -m services.tenants.cli revoke-key 3f0c...-...

Reads RABBITMQ_URL and BROKER_PREFIX like the services do, and needs the tenants service running.
`create-key` prints the key on a line "API key: <key>": it is shown this once. Add `--json` for
machine-readable output. Exit status: 0 done, 1 refused (unknown tenant, ...), 2 bad usage,
3 the broker or the tenants service did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import aio_pika
import pydantic

from services.tenants.settings import CliSettings
from shared.broker import connect
from shared.contracts.tenants import (
    CreateKey,
    CreateTenant,
    KeyCreated,
    KeyList,
    KeyRevocation,
    KeySummary,
    ListKeys,
    ListTenants,
    RevokeKey,
    TenantCreated,
    TenantList,
    TenantsRequest,
)
from shared.rpc import RemoteError, ReplyInbox, RpcClient, RpcTimeout
from shared.topology import Topology

CliReply = TenantCreated | TenantList | KeyCreated | KeyList | KeyRevocation

REPLY_TYPES: dict[type[pydantic.BaseModel], type[CliReply]] = {
    CreateTenant: TenantCreated,
    ListTenants: TenantList,
    CreateKey: KeyCreated,
    ListKeys: KeyList,
    RevokeKey: KeyRevocation,
}

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class Unavailable(Exception):
    """The broker or the tenants service could not be reached."""


def parser() -> argparse.ArgumentParser:
    """The CLI's arguments: one sub-command per verb."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the reply as JSON")
    root = argparse.ArgumentParser(
        prog="python -m services.tenants.cli", description="Manage the proxy's tenants and API keys."
    )
    verbs = root.add_subparsers(dest="command", required=True, metavar="command")

    create_tenant = verbs.add_parser("create-tenant", parents=[common], help="create a tenant")
    create_tenant.add_argument("name", help="the tenant's name (lowercase letters, digits, '-' and '_')")
    verbs.add_parser("list-tenants", parents=[common], help="list the tenants")

    create_key = verbs.add_parser("create-key", parents=[common], help="create an API key (shown once)")
    create_key.add_argument("--tenant", required=True)
    create_key.add_argument("--name", required=True, help="what the key is for, e.g. 'ci'")
    create_key.add_argument("--rpm", type=int, dest="rpm_limit", help="requests per minute (default: no limit)")
    create_key.add_argument("--tokens-per-day", type=int, help="upstream tokens per UTC day (default: no limit)")
    create_key.add_argument(
        "--model", action="append", dest="allowed_models", help="a model the key may use (repeat; default: any)"
    )

    list_keys = verbs.add_parser("list-keys", parents=[common], help="list API keys (never the keys themselves)")
    list_keys.add_argument("--tenant", help="only this tenant's keys")

    revoke_key = verbs.add_parser("revoke-key", parents=[common], help="revoke an API key")
    revoke_key.add_argument("key_id", help="the key's id (from list-keys)")
    return root


def build_request(args: argparse.Namespace) -> TenantsRequest:
    """The RPC request a parsed command line stands for (pydantic.ValidationError for bad values)."""
    match args.command:
        case "create-tenant":
            return CreateTenant(name=args.name)
        case "list-tenants":
            return ListTenants()
        case "create-key":
            return CreateKey(
                tenant=args.tenant,
                name=args.name,
                rpm_limit=args.rpm_limit,
                tokens_per_day=args.tokens_per_day,
                allowed_models=args.allowed_models,
            )
        case "list-keys":
            return ListKeys(tenant=args.tenant)
        case "revoke-key":
            return RevokeKey(key_id=args.key_id)
    raise AssertionError(f"unknown command {args.command}")


def render(answer: CliReply) -> str:
    """A reply as text for people."""
    match answer:
        case TenantCreated():
            return f"Created tenant {answer.tenant.name}"
        case TenantList():
            rows = [[t.name, _time(t.created_at)] for t in answer.items]
            return _table(["TENANT", "CREATED"], rows) if rows else "No tenants."
        case KeyCreated():
            key = answer.key
            return (
                f"Created key {key.id} for tenant {key.tenant} (name: {key.name}, prefix: {key.prefix})\n"
                f"API key: {answer.api_key}"
            )
        case KeyList():
            return _table(KEY_HEADER, [_key_row(key) for key in answer.items]) if answer.items else "No keys."
        case KeyRevocation():
            key = answer.key
            return f"Revoked key {key.id} ({key.prefix}) of tenant {key.tenant} at {_time(key.revoked_at)}"
    raise AssertionError(f"unknown reply {type(answer).__name__}")


KEY_HEADER = ["ID", "PREFIX", "TENANT", "NAME", "CREATED", "REVOKED", "LAST USED", "RPM", "TOKENS/DAY", "MODELS"]


def _key_row(key: KeySummary) -> list[str]:
    return [
        key.id,
        key.prefix,
        key.tenant,
        key.name,
        _time(key.created_at),
        _time(key.revoked_at),
        _time(key.last_used_at),
        str(key.rpm_limit or "-"),
        str(key.tokens_per_day or "-"),
        ",".join(key.allowed_models) if key.allowed_models else "any",
    ]


def _time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if epoch is not None else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


async def call(settings: CliSettings, request: TenantsRequest) -> CliReply:
    """Send one request to the tenants service and return its reply (RemoteError for an error reply)."""
    topology = Topology(settings.broker_prefix)
    try:
        connection = await connect(settings.rabbitmq_url.get_secret_value(), "tenants_cli", attempts=1)
    except (OSError, aio_pika.exceptions.AMQPError) as exc:
        raise Unavailable(f"RabbitMQ is not reachable ({type(exc).__name__}); check RABBITMQ_URL") from exc
    try:
        channel = await connection.channel(publisher_confirms=False)
        try:
            # Passive: the CLI never creates a deployment's objects, it only finds them.
            exchange = await channel.get_exchange(topology.exchange, ensure=True)
        except aio_pika.exceptions.AMQPError as exc:
            raise Unavailable(
                f"no deployment with BROKER_PREFIX={settings.broker_prefix!r} on this broker (is the system running?)"
            ) from exc
        inbox = ReplyInbox(topology.prefix, "tenants_cli")
        await inbox.start(channel)
        rpc = RpcClient(channel, exchange.name, inbox)
        try:
            return await rpc.call(
                topology.tenants_rpc, request, REPLY_TYPES[type(request)], settings.tenants_timeout_seconds
            )
        except RpcTimeout as exc:
            raise Unavailable(
                f"the tenants service did not answer within {settings.tenants_timeout_seconds:.0f}s (is it running?)"
            ) from exc
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        request = build_request(args)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "value"
        print(f"error: invalid {field}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    try:
        answer = asyncio.run(call(CliSettings(), request))
    except RemoteError as exc:
        code = f" ({exc.error.code})" if exc.error.code else ""
        print(f"error: {exc.error.message}{code}", file=sys.stderr)
        return EXIT_REFUSED
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.json:
        print(answer.model_dump_json(exclude={"v", "type"}, indent=2))
    else:
        print(render(answer))
    if isinstance(answer, KeyCreated):
        print("Store the key now: it is shown this once and only its hash is kept.", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
