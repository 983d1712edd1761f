"""Event rules: from tracks to events. Each rule type is one module, registered here."""

from __future__ import annotations

from engine.config import Config
from engine.rules.zone_presence import ZonePresenceRule

__all__ = ["RULES", "ZonePresenceRule", "build_rules"]

RULES: dict[str, type[ZonePresenceRule]] = {"zone_presence": ZonePresenceRule}


def build_rules(cfg: Config, class_names: tuple[str, ...]) -> dict[str, list[ZonePresenceRule]]:
    """Every configured rule, grouped by the source it watches.

    Raises:
        ConfigError: a rule names classes the detector does not know.
    """
    zones = {z.id: z for z in cfg.zones}
    by_source: dict[str, list[ZonePresenceRule]] = {s.id: [] for s in cfg.sources}
    for rc in cfg.rules:
        rule = RULES[rc.type](rc, zones[rc.zone], class_names)
        by_source[rule.source_id].append(rule)
    return by_source
