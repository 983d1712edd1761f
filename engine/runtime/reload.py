"""Zones and rules reloaded from the config file while the streams run.

The watcher polls the file (size, mtime and content hash: an editor's save, a `cp`, or a
config-management tool's atomic rename all count) or is asked directly (SIGHUP). A new config
that does not load is refused with its precise error and the running one stays. Of a valid one,
zones and rules are applied between frames; rules whose configuration (and zone) did not change
keep their state, so an open incident is not cut short by an unrelated edit. Changes elsewhere
(sources, detector, outputs, ...) need a restart: the reload says which.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import Config, LineCrossingRuleConfig, load_config
from engine.rules import Rule
from engine.yamlconf import LIMITS

__all__ = ["ConfigWatcher", "RulePlan", "plan_rules", "rule_signatures"]

APPLIED = ("zones", "rules")


class ConfigWatcher:
    """Tells when a config file changed.

    Args:
        path: the config file the engine was started from.
        load: reads it (the command line's overrides applied, as at the start).
    """

    def __init__(self, path: Path, load: Callable[[Path], Config] = load_config) -> None:
        self.path = path
        self._load = load
        self._mark = self._fingerprint()

    def changed(self) -> bool:
        """True once per change of the file's content since the last call."""
        mark = self._fingerprint()
        if mark == self._mark:
            return False
        self._mark = mark
        return True

    def load(self) -> Config:
        """The file's config (ConfigError as `load_config` raises it).

        The runner calls this on its main loop thread, not in a worker, so a slow parse never
        holds up a frame directly; but parsing and validating hold the GIL, so what keeps the
        workers running is that loading is bounded (`engine.yamlconf.YamlLimits`: file size,
        values after alias expansion, depth): a hostile file is refused in milliseconds
        instead of being expanded.
        """
        return self._load(self.path)

    def _fingerprint(self) -> str | None:
        try:
            st = self.path.stat()
            if st.st_size > LIMITS.max_bytes:  # refused by size on load: not worth reading
                return f"oversized:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
            with self.path.open("rb") as f:
                return hashlib.sha256(f.read(LIMITS.max_bytes + 1)).hexdigest()
        except OSError:
            return None  # being replaced; the next poll sees the new one


def rule_signatures(cfg: Config) -> dict[str, str]:
    """Per rule id, its configuration and its zone's, as one comparable string."""
    zones = {z.id: z.model_dump_json() for z in cfg.zones}
    out: dict[str, str] = {}
    for r in cfg.rules:
        zone = "" if isinstance(r, LineCrossingRuleConfig) else zones.get(r.zone, "")
        out[r.id] = r.model_dump_json() + "|" + zone
    return out


@dataclass
class RulePlan:
    """What a reload does: the new rules per source, and what it changed."""

    rules: dict[str, list[Rule]]
    kept: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the log and the health event."""
        parts = [
            f"{name}: {', '.join(ids)}"
            for name, ids in (
                ("added", self.added),
                ("replaced", self.replaced),
                ("removed", self.removed),
            )
            if ids
        ]
        text = "; ".join(parts) or "no rule changed"
        if self.needs_restart:
            text += f" (not applied, need a restart: {', '.join(self.needs_restart)})"
        return text


def plan_rules(
    old_cfg: Config,
    old_rules: dict[str, list[Rule]],
    new_cfg: Config,
    new_rules: dict[str, list[Rule]],
) -> RulePlan:
    """Merge freshly built rules with the running ones: unchanged rules keep their instance."""
    old_sig, new_sig = rule_signatures(old_cfg), rule_signatures(new_cfg)
    running = {r.id: r for rules in old_rules.values() for r in rules}
    plan = RulePlan({})
    for source, rules in new_rules.items():
        merged: list[Rule] = []
        for rule in rules:
            if rule.id in running and old_sig.get(rule.id) == new_sig[rule.id]:
                merged.append(running[rule.id])
                plan.kept.append(rule.id)
            else:
                merged.append(rule)
                (plan.replaced if rule.id in running else plan.added).append(rule.id)
        plan.rules[source] = merged
    plan.removed = sorted(set(running) - set(new_sig))
    old_rest = old_cfg.model_dump(exclude=set(APPLIED))
    new_rest = new_cfg.model_dump(exclude=set(APPLIED))
    plan.needs_restart = sorted(k for k in new_rest if new_rest[k] != old_rest.get(k))
    return plan
