"""Event rules: from tracks to events. Each rule type is one module, registered here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from engine.config import (
    AbandonedObjectRuleConfig,
    Config,
    CrowdRuleConfig,
    DumpingRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    ZoneConfig,
    ZonePresenceRuleConfig,
)
from engine.rules.abandoned import AbandonedObjectRule
from engine.rules.base import Rule, View, ZoneRuleConfig
from engine.rules.crowd import CrowdRule
from engine.rules.dumping import DumpingRule
from engine.rules.line_crossing import LineCrossingRule
from engine.rules.loitering import LoiteringRule
from engine.rules.zone_presence import ZonePresenceRule

__all__ = [
    "RULES",
    "AbandonedObjectRule",
    "CrowdRule",
    "DumpingRule",
    "LineCrossingRule",
    "LoiteringRule",
    "Rule",
    "RuleType",
    "View",
    "ZonePresenceRule",
    "build_rules",
]

C = TypeVar("C")
Z = TypeVar("Z", bound=ZoneRuleConfig)
Build = Callable[[C, Mapping[str, ZoneConfig], tuple[str, ...]], Rule]


class RuleMaker(Protocol):
    """A registry entry as `build_rules` uses it."""

    def make(
        self, rc: object, zones: Mapping[str, ZoneConfig], class_names: tuple[str, ...]
    ) -> Rule:
        """The rule configured by `rc`."""
        ...


@dataclass(frozen=True, slots=True)
class RuleType(Generic[C]):
    """One rule type: its configuration model and how a rule is made from one (mypy checks
    that the rule's constructor takes that model).

    Attributes:
        config: the pydantic model of its config (`type` in the YAML picks it).
        build: (config, zones by id, the detector's class names) -> the rule.
    """

    config: type[C]
    build: Build[C]

    def make(
        self, rc: object, zones: Mapping[str, ZoneConfig], class_names: tuple[str, ...]
    ) -> Rule:
        """The rule configured by `rc`.

        Raises:
            TypeError: `rc` is not this type's config model (a registry entry under the
                wrong `type`).
            ConfigError: the rule names classes the detector does not know.
        """
        if not isinstance(rc, self.config):
            raise TypeError(f"{type(rc).__name__} is not a {self.config.__name__}")
        return self.build(rc, zones, class_names)


def _in_zone(rule: Callable[[Z, ZoneConfig, tuple[str, ...]], Rule]) -> Build[Z]:
    """The build of a rule that watches one zone: it gets that zone's config."""

    def build(rc: Z, zones: Mapping[str, ZoneConfig], class_names: tuple[str, ...]) -> Rule:
        return rule(rc, zones[rc.zone], class_names)

    return build


def _line_crossing(
    rc: LineCrossingRuleConfig, zones: Mapping[str, ZoneConfig], class_names: tuple[str, ...]
) -> Rule:
    return LineCrossingRule(rc, class_names)  # a line in the image, no zone


# config `type` -> its rule type
RULES: dict[str, RuleMaker] = {
    "zone_presence": RuleType(ZonePresenceRuleConfig, _in_zone(ZonePresenceRule)),
    "intrusion": RuleType(IntrusionRuleConfig, _in_zone(ZonePresenceRule)),
    "line_crossing": RuleType(LineCrossingRuleConfig, _line_crossing),
    "loitering": RuleType(LoiteringRuleConfig, _in_zone(LoiteringRule)),
    "crowd": RuleType(CrowdRuleConfig, _in_zone(CrowdRule)),
    "dumping": RuleType(DumpingRuleConfig, _in_zone(DumpingRule)),
    "abandoned_object": RuleType(AbandonedObjectRuleConfig, _in_zone(AbandonedObjectRule)),
}


def build_rules(cfg: Config, class_names: tuple[str, ...]) -> dict[str, list[Rule]]:
    """Every configured rule, grouped by the source it watches.

    Raises:
        ConfigError: a rule names classes the detector does not know.
    """
    zones = {z.id: z for z in cfg.zones}
    by_source: dict[str, list[Rule]] = {s.id: [] for s in cfg.sources}
    for rc in cfg.rules:
        rule = RULES[rc.type].make(rc, zones, class_names)
        by_source[rule.source_id].append(rule)
    return by_source
