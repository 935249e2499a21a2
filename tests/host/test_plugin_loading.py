"""Plugin loading: allow and block lists, hook checks, registration errors, listing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hostkit import CountingConfig, CountingPlugin, flow, inventory, qualify, rank, rule, score

from nextbest import FlowValidationError, Host, PluginError, RuleType, hookimpl
from nextbest.plugins import list_plugins, make_plugin_manager


def plugin_names(h: Host) -> list[str]:
    return [p.name for p in list_plugins(h.pm)]


def test_allow_list_loads_only_named_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")
    h = Host()
    assert plugin_names(h) == ["builtin", "report", "triggers"]
    assert {"segment_required", "expression"} <= set(h.registry.rule_types)


def test_allow_list_unset_loads_the_builtin_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEXTBEST_PLUGINS")
    assert "builtin" in plugin_names(Host())


def test_empty_allow_list_loads_no_external_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "")
    h = Host()
    assert plugin_names(h) == [
        "builtin",
        "report",
        "triggers",
    ]  # the host's own plugin is not external
    assert "segment_required" in h.registry.rule_types


def test_allow_list_does_not_need_to_name_the_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "some-other-plugin")
    assert plugin_names(Host()) == ["builtin", "report", "triggers"]


def test_without_the_builtin_no_rule_types_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "")
    monkeypatch.setenv("NEXTBEST_DISABLE_PLUGINS", "builtin")
    h = Host()
    assert plugin_names(h) == ["report", "triggers"]  # the host's other built-in plugins
    assert h.registry.rule_types == {}
    with pytest.raises(FlowValidationError) as info:  # no rule types: every rule is unknown
        h.load_flow(flow(inventory(), qualify(rule("r", "segment_required", {})), score(), rank()))
    (issue,) = info.value.issues
    assert issue.path == "nodes[1].config.rules[0].ruleType"
    assert "no rule types are registered" in issue.message


def test_explicit_plugins_load_with_an_empty_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "")
    monkeypatch.setenv("NEXTBEST_DISABLE_PLUGINS", "builtin")
    h = Host(plugins=[CountingPlugin()])
    assert plugin_names(h) == ["CountingPlugin", "report", "triggers"]
    assert set(h.registry.rule_types) == {"counting"}


def test_block_list_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")
    monkeypatch.setenv("NEXTBEST_DISABLE_PLUGINS", "other, builtin")
    assert plugin_names(Host()) == ["report", "triggers"]
    monkeypatch.delenv("NEXTBEST_PLUGINS")
    assert "builtin" not in plugin_names(Host())


def test_load_entry_points_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEXTBEST_PLUGINS")
    assert plugin_names(Host(load_entry_points=False)) == []


class Typo:
    @hookimpl
    def register_rule_typez(self, register: Any) -> None:
        """Misspelled: pluggy cannot match it to a spec."""


def test_typod_hook_fails_at_start_naming_the_plugin() -> None:
    with pytest.raises(PluginError) as info:
        Host(plugins=[Typo()])
    message = str(info.value)
    assert "'Typo'" in message
    assert "register_rule_typez" in message
    assert "register_rule_types" in message  # the known hooks are listed


class WrongArgument:
    @hookimpl
    def pre_score(self, decision: Any, candidatez: Any) -> None:
        """An argument the hook spec does not have."""


def test_unknown_hook_argument_fails_naming_the_plugin() -> None:
    with pytest.raises(PluginError) as info:
        Host(plugins=[WrongArgument()])
    assert "plugin 'WrongArgument'" in str(info.value) and "candidatez" in str(info.value)


def test_registering_a_class_gives_a_helpful_error() -> None:
    with pytest.raises(PluginError) as info:
        Host(plugins=[CountingPlugin])
    assert "is a class; register an instance instead: CountingPlugin()" in str(info.value)


class Second:
    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        register(RuleType("counting", CountingConfig, lambda cfg, ctx: True))


def test_duplicate_rule_type_names_both_plugins() -> None:
    with pytest.raises(PluginError) as info:
        Host(plugins=[CountingPlugin(), Second()])
    message = str(info.value)
    assert "'Second'" in message and "'CountingPlugin'" in message and "'counting'" in message


def test_builtin_names_cannot_be_taken_over() -> None:
    class Shadow:
        @hookimpl
        def register_functions(self, register: Any) -> None:
            register("clamp", lambda *a: 0)

    with pytest.raises(PluginError, match=r"'Shadow'.*'clamp'.*'builtin'"):
        Host(plugins=[Shadow()])


def test_invalid_registrations_name_the_plugin() -> None:
    class BadName:
        @hookimpl
        def register_rule_types(self, register: Any) -> None:
            register(RuleType("not valid!", CountingConfig, lambda cfg, ctx: True))

    class NotAType:
        @hookimpl
        def register_rule_types(self, register: Any) -> None:
            register("counting")

    with pytest.raises(PluginError, match=r"'BadName'.*invalid rule type name"):
        Host(plugins=[BadName()])
    with pytest.raises(PluginError, match=r"'NotAType'.*expects a RuleType"):
        Host(plugins=[NotAType()])


def test_same_plugin_twice_is_an_error() -> None:
    plugin = CountingPlugin()
    with pytest.raises(PluginError, match="already registered"):
        Host(plugins=[plugin, plugin])


def test_list_plugins_reports_name_version_hooks() -> None:
    pm = make_plugin_manager(plugins=[CountingPlugin()])
    infos = {p.name: p for p in list_plugins(pm)}
    assert set(infos) == {"builtin", "report", "triggers", "CountingPlugin"}
    assert infos["builtin"].version  # the distribution's version
    assert infos["builtin"].hooks == (
        "register_context",
        "register_functions",
        "register_rule_types",
    )
    assert infos["CountingPlugin"].hooks == ("register_rule_types",)
    assert infos["CountingPlugin"].version is None


def test_startup_receives_the_host_and_outcomes_are_isolated() -> None:
    seen: list[Any] = []

    class Lifecycle:
        @hookimpl
        def startup(self, host: Any) -> None:
            seen.append(host)

        @hookimpl
        def outcome_recorded(self, tenant_id: str, interaction: Any) -> None:
            seen.append((tenant_id, interaction))

    class Broken:
        @hookimpl
        def outcome_recorded(self, tenant_id: str) -> None:
            raise RuntimeError("down")

    h = Host(plugins=[Broken(), Lifecycle()])
    assert seen == [h]
    failures = h.notify_outcome("t1", {"id": 1})
    assert failures == [("Broken", "RuntimeError: down")]
    assert seen[1] == ("t1", {"id": 1})  # the later plugin still ran


def test_plugin_state_is_one_object_per_host_and_key() -> None:
    made: list[int] = []

    def factory() -> dict[str, int]:
        made.append(1)
        time.sleep(0.01)  # widen the window for a second creation
        return {}

    host, other = Host(), Host()
    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(lambda _: host.plugin_state("p.cache", factory), range(16)))
    assert all(state is states[0] for state in states) and len(made) == 1
    assert other.plugin_state("p.cache", factory) is not states[0]  # per host, never global
    assert host.plugin_state("p.other", list) == []
