"""The plan catalog's terms as frozen, self-checking values, parsed from plain documents.

A `PlanTerms` is what a customer agrees to when signing: time zone, channels, named calendars
and which priority (or clock) runs on which, targets by priority or by category, hour bank,
credits, periodic allowances and availability target. `to_dict` is the JSON-able form copied
verbatim into `Contract.Signed`, `from_dict` reads it back, so a contract keeps its agreed
terms when the catalog changes. `parse_catalog` turns the parsed `plans/*.toml` documents
(this module does no I/O) into terms, a provider's top-level keys being defaults for its
plans; every refusal is a ValueError naming the file and the plan.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from domain.billing import ChargeRule
from domain.durations import NO_TARGET, Duration, Target
from domain.periods import PERIODS, zone
from domain.sla.calendar import Calendar
from domain.values import CLOCKS, DEFAULT_CHANNEL, EXPORT_FORMATS, PRIORITIES

__all__ = ["Allowance", "Bank", "ChargeRule", "Credits", "Duration", "PlanTerms", "Target"]
__all__ += ["parse_catalog"]

TERMS_FORMAT = 1  # bump, with an upcaster in from_dict, if the dict's shape ever changes
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_COVERAGE_KEYS = {"default", *PRIORITIES, *(f"{p}.{c}" for p in PRIORITIES for c in CLOCKS)}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _whole(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"bad {what} id {value!r}")
    return value


def _table(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a table, got {value!r}")
    return value


def _keys(value: Any, what: str, allowed: Any, required: Any = ()) -> Mapping[str, Any]:
    table = _table(value, what)
    unknown = sorted(set(table) - set(allowed))
    _check(not unknown, f"{what}: unknown keys {unknown} (allowed: {sorted(allowed)})")
    missing = [key for key in required if key not in table]
    _check(not missing, f"{what}: missing keys {missing}")
    return table


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(value)))


@dataclass(frozen=True)
class Bank:
    """An hour bank: minutes granted per period, reset (not carried over) at renewal."""

    minutes: int
    period_months: int
    low_balance_minutes: int

    def __post_init__(self) -> None:
        ok = _whole(self.minutes, 1) and _whole(self.period_months, 1)
        ok = ok and _whole(self.low_balance_minutes) and self.low_balance_minutes <= self.minutes
        _check(ok, f"bank needs minutes, period_months > 0 and 0 <= low_balance <= minutes: {self}")


@dataclass(frozen=True)
class Credits:
    """Prepaid credits (1 credit = 1 minute) that never expire, charged per entry kind."""

    low_balance: int
    charges: Mapping[str, ChargeRule]

    def __post_init__(self) -> None:
        _check(_whole(self.low_balance), f"credits low_balance must be >= 0: {self.low_balance!r}")
        charges = {_ident(k, "entry kind"): r for k, r in _table(self.charges, "charges").items()}
        _check(bool(charges), "credits need at least one charge rule")
        object.__setattr__(self, "charges", MappingProxyType(charges))


@dataclass(frozen=True)
class Allowance:
    """Free minutes of one entry kind per calendar period, not carried over."""

    kind: str
    minutes: int
    period: str

    def __post_init__(self) -> None:
        _ident(self.kind, "allowance kind")
        _check(_whole(self.minutes, 1), f"allowance minutes must be > 0: {self.minutes!r}")
        _check(self.period in PERIODS, f"allowance period must be one of {PERIODS}: {self}")


@dataclass(frozen=True)
class PlanTerms:
    """The agreed terms of one catalog plan, e.g. ``crm-experts/gold``."""

    plan_id: str
    provider: str
    name: str
    time_zone: str
    channels: tuple[str, ...]
    calendars: Mapping[str, Mapping[str, Any]]
    coverage: Mapping[str, str]
    targets_by: str
    targets: Mapping[str, Target]
    default_category: str | None = None
    bank: Bank | None = None
    credits: Credits | None = None
    allowances: tuple[Allowance, ...] = ()
    availability_target_pct: float | None = None
    p1_downgrade_meets_resolution: bool = False
    # The plan's named-user limit (None: unlimited). The access tokens enforce it: a contract's
    # active customer tokens count against it.
    named_users: int | None = None
    features: tuple[str, ...] = ()  # informational extras, e.g. "dedicated-specialist"
    # The export the provider hands the customer when the contract is cancelled (None: none
    # promised), offered in the cancellation's answer: datacrm's "a copy of its database (MySQL format)".
    exit_export: str | None = None

    def __post_init__(self) -> None:
        provider, _, plan = str(self.plan_id).partition("/")
        _check(
            provider == _ident(self.provider, "provider") and bool(_ID.fullmatch(plan)),
            f"plan_id {self.plan_id!r} must be '{self.provider}/<plan>'",
        )
        _check(isinstance(self.name, str) and bool(self.name.strip()), "name must not be empty")
        zone(self.time_zone)
        self._set("calendars", _calendars(self.calendars, self.time_zone))
        coverage = _keys(self.coverage, "coverage", _COVERAGE_KEYS, ["default"])
        self._set("coverage", _freeze(coverage))
        for key, name in self.coverage.items():
            _check(name in self.calendars, f"coverage {key!r} names unknown calendar {name!r}")
        self._set("targets", MappingProxyType(dict(_table(self.targets, "targets"))))
        self._check_targets()
        _check(self.bank is None or self.credits is None, "an hour bank or credits, not both")
        self._set("channels", _channels(self.channels))
        self._set("allowances", tuple(self.allowances))
        self._set("features", tuple(_ident(f, "feature") for f in self.features))
        self._set("availability_target_pct", _pct(self.availability_target_pct))
        _check(self.named_users is None or _whole(self.named_users, 1), "named_users must be > 0")
        _check(self.exit_export in (None, *EXPORT_FORMATS), f"exit_export is one of {EXPORT_FORMATS}")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_targets(self) -> None:
        by_priority, default = self.targets_by == "priority", self.default_category
        _check(by_priority or self.targets_by == "category", "targets_by: 'priority' or 'category'")
        for key, target in self.targets.items():
            ok = key in PRIORITIES if by_priority else bool(_ID.fullmatch(str(key)))
            _check(ok, f"targets by {self.targets_by}: {key!r} is no priority P1-P4 or category id")
            _check(isinstance(target, Target), f"target {key!r} is not a Target: {target!r}")
        ok = default is None if by_priority else default in self.targets
        _check(ok, f"default_category {default!r}: none by priority, else one of the targets")
        downgrade = self.p1_downgrade_meets_resolution
        _check(
            downgrade is False or (downgrade is True and by_priority),
            "p1_downgrade_meets_resolution is true or false, and needs targets by priority",
        )

    @property
    def low_balance_threshold(self) -> int | None:
        """Warn at or below this balance: minutes for a bank, credits for credits."""
        if self.bank is not None:
            return self.bank.low_balance_minutes
        return self.credits.low_balance if self.credits is not None else None

    def calendar_name_for(self, priority: str, clock: str | None = None) -> str:
        """The most specific coverage entry: "P2.resolution", then "P2", then "default"."""
        _check(priority in PRIORITIES, f"unknown priority {priority!r}")
        _check(clock is None or clock in CLOCKS, f"unknown clock {clock!r}")
        specific = self.coverage.get(f"{priority}.{clock}") or self.coverage.get(priority)
        return specific or self.coverage["default"]

    def calendar_spec_for(self, priority: str, clock: str | None = None) -> dict[str, Any]:
        """A fresh copy of the spec (for `Calendar.from_spec`) of the priority's calendar."""
        return copy.deepcopy(dict(self.calendars[self.calendar_name_for(priority, clock)]))

    def target_for(self, priority: str, category: str | None = None) -> Target:
        """By priority, or by category (unknown or missing: the default category)."""
        if self.targets_by == "priority":
            return self.targets.get(priority, NO_TARGET)
        key = category if category in self.targets else self.default_category
        return self.targets.get(key or "", NO_TARGET)

    def offers_channel(self, channel: str) -> bool:
        return channel in self.channels

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able terms, read back by `from_dict` into an equal value."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        credits = self.credits and {
            "low_balance": self.credits.low_balance,
            "charges": {k: vars(r).copy() for k, r in self.credits.charges.items()},
        }
        return data | {
            "terms_format": TERMS_FORMAT,
            "channels": list(self.channels),
            "features": list(self.features),
            "calendars": {n: copy.deepcopy(dict(s)) for n, s in self.calendars.items()},
            "coverage": dict(self.coverage),
            "targets": {k: t.to_dict() for k, t in self.targets.items()},
            "bank": self.bank and vars(self.bank).copy(),
            "credits": credits,
            "allowances": [vars(a).copy() for a in self.allowances],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanTerms:
        """The inverse of `to_dict`; a ValueError saying which plan and what is wrong."""
        plan_id = data.get("plan_id", "?") if isinstance(data, Mapping) else "?"
        try:
            return _terms(data)
        except (ValueError, TypeError) as error:
            raise ValueError(f"plan {plan_id}: {error}") from None


_TERMS_KEYS = {f.name for f in fields(PlanTerms)} | {"terms_format"}
# Channels may be left out: portal is always offered.
_REQUIRED = ("plan_id", "provider", "name", "time_zone", "calendars", "coverage", "targets_by", "targets")


def _terms(data: Mapping[str, Any]) -> PlanTerms:
    values = {"channels": (), **_keys(data, "terms", _TERMS_KEYS, _REQUIRED)}
    _check(values.pop("terms_format", TERMS_FORMAT) == TERMS_FORMAT, "unknown terms_format")
    targets = _table(data["targets"], "targets").items()
    values["targets"] = {k: Target.from_dict(v, f"target {k}") for k, v in targets}
    if data.get("bank") is not None:
        values["bank"] = Bank(**_table(data["bank"], "bank"))
    if data.get("credits") is not None:
        credits = _keys(data["credits"], "credits", *[("low_balance", "charges")] * 2)
        charges = _table(credits["charges"], "charges").items()
        rules = {k: ChargeRule(**_charge_rule(k, r)) for k, r in charges}
        values["credits"] = Credits(credits["low_balance"], rules)
    values["allowances"] = [Allowance(**_table(a, "allowance")) for a in data.get("allowances", [])]
    return PlanTerms(**values)


def _charge_rule(kind: str, rule: Any) -> Mapping[str, Any]:
    table = _keys(rule, f"charge rule {kind!r}", ("minimum", "block", "flat"))
    _check(all(n is None or _whole(n) for n in table.values()), f"charge rule {kind!r}: not whole numbers")
    return table


def _pct(value: Any) -> float | None:
    ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    _check(ok and (value is None or 0 < value <= 100), f"availability {value!r} not in (0, 100]")
    return None if value is None else float(value)


def _channels(value: Any) -> tuple[str, ...]:
    _check(isinstance(value, (list, tuple)), f"channels must be a list, got {value!r}")
    channels = [_ident(c, "channel") for c in value]
    _check(len(set(channels)) == len(channels), f"duplicate channels in {channels}")
    # Every plan takes tickets through the portal, the API's default channel.
    return tuple(channels if DEFAULT_CHANNEL in channels else [DEFAULT_CHANNEL, *channels])


def _calendars(specs: Any, time_zone: str) -> Mapping[str, Mapping[str, Any]]:
    items = _table(specs, "calendars").items()
    return MappingProxyType({name: _calendar(name, spec, time_zone) for name, spec in items})


def _calendar(name: str, spec: Any, time_zone: str) -> Mapping[str, Any]:
    """A frozen copy of one spec, with `Calendar.from_spec` as the judge of its validity."""
    what = f"calendar {name!r}"
    spec = dict(_table(spec, what))
    if isinstance(spec.get("holidays"), (list, tuple)):  # TOML may give bare dates
        spec["holidays"] = [d.isoformat() if isinstance(d, date) else d for d in spec["holidays"]]
    try:
        calendar = Calendar.from_spec(spec, time_zone)
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{what}: {error}") from None
    _check(calendar.always_open or any(calendar.windows), f"{what} never opens")
    return _freeze(spec)


# -- the catalog documents (plans/*.toml) ---------------------------------------------------

_SHARED_KEYS = _TERMS_KEYS - {"plan_id", "name", "terms_format"} | {"plans"}


def _document_bank(bank: Any) -> Any:
    """Catalog files may say `hours` and `low_balance_pct`; terms always hold minutes."""
    if not isinstance(bank, Mapping) or not {"hours", "low_balance_pct"} & set(bank):
        return bank
    out = {k: v for k, v in bank.items() if k not in ("hours", "low_balance_pct")}
    numbers = [bank.get(k, 0) for k in ("hours", "low_balance_pct")]
    _check(all(isinstance(n, int | float) for n in numbers), f"bank: numbers expected: {bank}")
    if "hours" in bank:
        minutes = Fraction(str(bank["hours"])) * 60
        _check(minutes.denominator == 1, f"bank hours {bank['hours']!r} is not whole minutes")
        out["minutes"] = int(minutes)
    if "low_balance_pct" in bank:
        # Rounded down: the warning never fires earlier than the stated share.
        share = Fraction(str(bank["low_balance_pct"])) * out.get("minutes", 0) / 100
        out["low_balance_minutes"] = int(share)
    return out


def _plans_of(file: str, document: Mapping[str, Any]) -> dict[str, PlanTerms]:
    provider = file.removesuffix(".toml")
    _keys(document, file, _SHARED_KEYS, ["plans"])
    _check(document.get("provider", provider) == provider, f"{file}: provider must be {provider!r}")
    shared = {k: v for k, v in document.items() if k != "plans"}
    catalog = {}
    for key, plan in _table(document["plans"], f"{file}: plans").items():
        plan_id = f"{provider}/{key}"
        try:
            merged = {**shared, **_table(plan, "plan"), "provider": provider, "plan_id": plan_id}
            merged["bank"] = _document_bank(merged.get("bank"))
            catalog[plan_id] = PlanTerms.from_dict(merged)
        except ValueError as error:
            message = str(error).removeprefix(f"plan {plan_id}: ")
            raise ValueError(f"{file}: plan {plan_id}: {message}") from None
    return catalog


def parse_catalog(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, PlanTerms]:
    """Plan id -> terms, from provider file name ("bpm.toml") -> its parsed TOML document."""
    catalog: dict[str, PlanTerms] = {}
    for file in sorted(documents):
        for plan_id, terms in _plans_of(file, documents[file]).items():
            _check(plan_id not in catalog, f"{file}: plan {plan_id} is defined twice")
            catalog[plan_id] = terms
    return catalog
