"""The broker map (shared/topology.CHANNELS) stays true: every queue and fanout exchange is on it, every
message contract is carried or answered somewhere, and the README's copy is the current one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import shared.contracts
from shared.contracts.base import Contract
from shared.topology import CHANNELS, SERVICES, Topology, channel_table

ROOT = Path(__file__).resolve().parents[3]


def test_every_queue_and_fanout_exchange_has_a_row() -> None:
    topology = Topology("p")
    mapped = set()
    for channel in CHANNELS:
        if channel.name == "control":
            mapped |= {topology.control(service) for service in SERVICES}
        else:
            mapped.add(getattr(topology, channel.name))
    fanouts = {topology.cancellations, topology.key_revocations}
    assert mapped == set(topology.all_queues()) | fanouts


def test_every_message_contract_is_on_the_map() -> None:
    on_map = {model for channel in CHANNELS for model in (*channel.carries, *channel.replies)}
    contracts = set()
    for module_info in pkgutil.iter_modules(shared.contracts.__path__):
        module = importlib.import_module(f"shared.contracts.{module_info.name}")
        contracts |= {
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Contract) and cls is not Contract and cls.__module__ == module.__name__
        }
    # What is not a message of its own: the cache worker's notes to the LLM worker inside a request.
    embedded = {"CacheControls", "LookupContext", "EmbeddingsLookup"}
    missing = {cls.__name__ for cls in contracts - on_map} - embedded
    assert not missing, f"messages no channel carries or answers: {sorted(missing)}"


def test_every_message_names_itself_by_type() -> None:
    for channel in CHANNELS:
        for model in (*channel.carries, *channel.replies):
            assert "type" in model.model_fields and model.model_fields["type"].default, model.__name__
            assert "kind" not in model.model_fields, model.__name__


def test_the_readme_carries_the_current_map() -> None:
    assert channel_table() in (ROOT / "README.md").read_text(), (
        "README's broker map is stale: paste `python -m shared.topology` into it"
    )
