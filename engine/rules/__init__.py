"""Event rules: from tracks to events. Each rule type is one module, registered here."""

from __future__ import annotations

from typing import Any

from engine.config import Config
from engine.rules.abandoned import AbandonedObjectRule
from engine.rules.base import Rule, View
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
    "View",
    "ZonePresenceRule",
    "build_rules",
]

# config `type` -> rule class; every class but LineCrossingRule watches a zone
RULES: dict[str, Any] = {
    "zone_presence": ZonePresenceRule,
    "intrusion": ZonePresenceRule,
    "line_crossing": LineCrossingRule,
    "loitering": LoiteringRule,
    "crowd": CrowdRule,
    "dumping": DumpingRule,
    "abandoned_object": AbandonedObjectRule,
}


def build_rules(cfg: Config, class_names: tuple[str, ...]) -> dict[str, list[Rule]]:
    """Every configured rule, grouped by the source it watches.

    Raises:
        ConfigError: a rule names classes the detector does not know.
    """
    zones = {z.id: z for z in cfg.zones}
    by_source: dict[str, list[Rule]] = {s.id: [] for s in cfg.sources}
    for rc in cfg.rules:
        cls = RULES[rc.type]
        zone = getattr(rc, "zone", None)
        rule = cls(rc, zones[zone], class_names) if zone is not None else cls(rc, class_names)
        by_source[rule.source_id].append(rule)
    return by_source
