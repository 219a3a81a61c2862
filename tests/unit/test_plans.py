"""The plan catalog: every seed plan loads, durations and terms round-trip, the numbers of docs/plans.md hold."""

from __future__ import annotations

import copy
import json
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.billing import DOLIBARR_RULES, credit_charge
from domain.plans import Allowance, Bank, Duration, PlanTerms, Target, parse_catalog
from domain.sla.calendar import Calendar
from infra.process.catalog import DEFAULT_PLANS_DIR, load_catalog

PLAN_IDS = [
    "crm-experts/silver",
    "crm-experts/gold",
    "crm-experts/platinum",
    "bpm/basic",
    "bpm/business",
    "bpm/premium",
    "datacrm/standard",
    "datacrm/premium-support",
    "sf-partner/silver",
    "sf-partner/gold",
    "sf-partner/platinum",
    "dolibarr/credits",
]

CATALOG = load_catalog()


def documents() -> dict[str, dict[str, Any]]:
    return {p.name: tomllib.loads(p.read_text()) for p in DEFAULT_PLANS_DIR.glob("*.toml")}


def d(text: str) -> Duration:
    return Duration.parse(text)


# -- durations ----------------------------------------------------------------------------

business_days = st.one_of(
    st.integers(0, 400),
    st.fractions(min_value=0, max_value=400, max_denominator=1000),
)
durations = st.builds(Duration, minutes=st.integers(0, 10**6), business_days=business_days)


@given(durations)
def test_a_duration_prints_as_text_that_parses_back_to_it(duration: Duration) -> None:
    assert Duration.parse(str(duration)) == duration


@given(st.integers(0, 10**5), st.sampled_from(["m", "h", "bd"]))
def test_whole_amounts_parse_in_their_unit(amount: int, unit: str) -> None:
    parsed = Duration.parse(f"{amount}{unit}")
    expected = {"m": Duration(amount), "h": Duration(60 * amount), "bd": Duration(0, amount)}
    assert parsed == expected[unit]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", Duration(30)),
        ("2h", Duration(120)),
        ("1.5h", Duration(90)),
        ("0.5h", Duration(30)),
        ("2bd", Duration(0, 2)),
        ("1.5bd", Duration(0, Fraction(3, 2))),
        ("1bd 30m", Duration(30, 1)),
        ("0m", Duration()),
    ],
)
def test_durations_parse_minutes_hours_and_business_days(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2", "h", "-1h", "2 h", "1.01h", "1.5m", "1h 1h", "3d", "1/0bd"]
)
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Duration.parse(text)


# -- the catalog --------------------------------------------------------------------------


def test_the_catalog_holds_exactly_the_plan_ids_of_docs_plans() -> None:
    assert sorted(CATALOG) == sorted(PLAN_IDS)


@pytest.mark.parametrize("plan_id", PLAN_IDS)
def test_every_plan_round_trips_through_its_json_form(plan_id: str) -> None:
    terms = CATALOG[plan_id]
    as_json = json.loads(json.dumps(terms.to_dict()))
    assert as_json == terms.to_dict()
    assert PlanTerms.from_dict(as_json) == terms
    assert PlanTerms.from_dict(as_json).to_dict() == as_json


@pytest.mark.parametrize("plan_id", PLAN_IDS)
def test_every_plan_offers_the_portal_and_builds_every_calendar(plan_id: str) -> None:
    terms = CATALOG[plan_id]
    assert terms.plan_id == plan_id and terms.provider == plan_id.split("/")[0]
    assert terms.offers_channel("portal")
    for priority in ("P1", "P2", "P3", "P4"):
        for clock in (None, "response", "resolution"):
            Calendar.from_spec(terms.calendar_spec_for(priority, clock), terms.time_zone)


def test_portal_is_offered_even_when_a_document_leaves_it_out() -> None:
    docs = documents()
    docs["dolibarr.toml"]["channels"] = ["email"]
    terms = parse_catalog(docs)["dolibarr/credits"]
    assert terms.channels == ("portal", "email")


def test_crm_experts_gold_answers_p1_within_an_hour_from_a_40_hour_bank() -> None:
    gold = CATALOG["crm-experts/gold"]
    assert gold.time_zone == "America/New_York"
    assert gold.target_for("P1", None) == Target(response=d("1h"), resolution=None)
    assert gold.target_for("P4", None).response == Duration(business_days=10)
    assert gold.bank == Bank(minutes=2400, period_months=12, low_balance_minutes=240)
    assert gold.low_balance_threshold == 240
    assert gold.offers_channel("slack") and not gold.offers_channel("phone")
    spec = gold.calendar_spec_for("P1")
    assert spec["windows"]["mon"] == [["08:00", "20:00"]] and "holiday_country" not in spec


def test_crm_experts_platinum_keeps_the_pages_four_named_users() -> None:
    platinum = CATALOG["crm-experts/platinum"]
    assert platinum.named_users == 4
    assert platinum.target_for("P1", None).response == Duration(30)
    assert platinum.bank is not None and platinum.bank.minutes == 80 * 60


# The named-user limit each page states (docs/plans.md quotes the words); None is unlimited.
NAMED_USERS = {
    "crm-experts/silver": 1,  # "1 Compatible con el usuario"
    "crm-experts/gold": 6,  # "6 Usuarios soportados"
    "crm-experts/platinum": 4,  # "4 Usuarios soportados"
    "bpm/basic": 1,  # "одному ответственному контактному лицу"
    "bpm/business": 1,
    "bpm/premium": 1,
    "dolibarr/credits": 1,  # "siempre el mismo usuario"
    "datacrm/standard": None,
    "datacrm/premium-support": None,
    "sf-partner/silver": None,
    "sf-partner/gold": None,
    "sf-partner/platinum": None,
}


@pytest.mark.parametrize(("plan_id", "limit"), NAMED_USERS.items())
def test_each_plan_states_the_named_user_limit_of_its_page(plan_id: str, limit: int | None) -> None:
    assert CATALOG[plan_id].named_users == limit


def test_every_catalog_plan_has_its_named_user_limit_stated_in_the_tests() -> None:
    assert set(NAMED_USERS) == set(CATALOG)


@pytest.mark.parametrize("plan_id", [p for p, limit in NAMED_USERS.items() if limit is not None])
def test_a_named_user_limit_survives_the_terms_a_contract_copies_when_signed(plan_id: str) -> None:
    terms = CATALOG[plan_id].to_dict()
    assert terms["named_users"] == NAMED_USERS[plan_id]
    assert PlanTerms.from_dict(json.loads(json.dumps(terms))).named_users == NAMED_USERS[plan_id]


def test_a_bpm_file_without_the_shared_limit_leaves_every_bpm_plan_unlimited() -> None:
    docs = documents()
    del docs["bpm.toml"]["named_users"]
    catalog = parse_catalog(docs)
    assert [catalog[f"bpm/{p}"].named_users for p in ("basic", "business", "premium")] == [None] * 3


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1"])
def test_a_named_user_limit_must_be_a_whole_number_above_zero(bad: Any) -> None:
    docs = documents()
    docs["dolibarr.toml"]["plans"]["credits"]["named_users"] = bad
    with pytest.raises(ValueError) as refused:
        parse_catalog(docs)
    assert "dolibarr/credits" in str(refused.value) and "named_users" in str(refused.value)


def test_sf_partner_platinum_runs_p1_on_24x7_and_the_rest_on_business_hours() -> None:
    platinum = CATALOG["sf-partner/platinum"]
    assert platinum.calendar_spec_for("P1") == {"always_open": True}
    business = platinum.calendar_spec_for("P2")
    assert business["windows"]["fri"] == [["08:00", "20:00"]]
    assert business["holiday_country"] == "AR"
    assert platinum.time_zone == "America/Argentina/Buenos_Aires"
    assert platinum.offers_channel("on-call")
    assert CATALOG["sf-partner/silver"].target_for("P2", None).response == Duration(0, 1)


def test_datacrm_targets_by_category_and_defaults_to_incident() -> None:
    datacrm = CATALOG["datacrm/standard"]
    assert datacrm.targets_by == "category" and datacrm.default_category == "incident"
    incident = Target(response=d("4h"), resolution=d("1bd"))
    assert datacrm.target_for("P1", None) == incident
    assert datacrm.target_for("P2", "incident") == incident
    assert datacrm.target_for("P3", "system-down") == Target(d("0m"), d("1.5h"))
    assert datacrm.target_for("P3", "development") == Target(d("4h"), None)
    assert datacrm.target_for("P3", "improvement").resolution is None
    spec = datacrm.calendar_spec_for("P3")
    assert spec["windows"]["wed"] == [["08:00", "12:00"], ["14:00", "17:00"]]
    assert spec["holiday_country"] == "CO"


def test_datacrm_promises_99_96_availability_and_quarterly_guidance() -> None:
    for plan_id in ("datacrm/standard", "datacrm/premium-support"):
        terms = CATALOG[plan_id]
        assert terms.availability_target_pct == 99.96
        assert terms.allowances == (Allowance(kind="guidance", minutes=120, period="quarter"),)
    others = set(CATALOG) - {"datacrm/standard", "datacrm/premium-support"}
    assert all(CATALOG[p].availability_target_pct is None for p in others)
    assert "extra-guidance" in CATALOG["datacrm/premium-support"].features


def test_dolibarr_charges_queries_interventions_and_updates_as_the_page_says() -> None:
    credits = CATALOG["dolibarr/credits"].credits
    assert credits is not None and credits.low_balance == 45
    assert dict(credits.charges) == dict(DOLIBARR_RULES)
    charges = credits.charges
    assert credit_charge(charges["query"], 10) == 15
    assert credit_charge(charges["query"], 16) == 30
    assert credit_charge(charges["intervention"], 50) == 60
    assert credit_charge(charges["update"], 500) == 120
    assert CATALOG["dolibarr/credits"].target_for("P1", None) == Target(None, None)


def test_bpm_premium_resolves_p4_in_20_working_days_of_a_mon_fri_calendar() -> None:
    premium = CATALOG["bpm/premium"]
    assert premium.target_for("P4", None) == Target(response=d("6h"), resolution=d("20bd"))
    assert premium.target_for("P1", None) == Target(response=d("60m"), resolution=d("12h"))
    assert premium.p1_downgrade_meets_resolution
    assert premium.calendar_spec_for("P4", "response") == {"always_open": True}
    assert premium.calendar_spec_for("P1", "resolution") == {"always_open": True}
    working = premium.calendar_spec_for("P4", "resolution")
    assert set(working["windows"]) == {"mon", "tue", "wed", "thu", "fri"}
    assert working["holiday_country"] == "RU"
    assert not CATALOG["bpm/business"].p1_downgrade_meets_resolution
    assert CATALOG["bpm/business"].calendar_spec_for("P1")["windows"]["sat"] == [["09:00", "19:00"]]


def test_only_bank_and_credit_plans_have_a_low_balance_threshold() -> None:
    thresholds = {p: t.low_balance_threshold for p, t in CATALOG.items() if t.low_balance_threshold}
    assert thresholds == {
        "crm-experts/silver": 120,
        "crm-experts/gold": 240,
        "crm-experts/platinum": 480,
        "dolibarr/credits": 45,
    }


# -- refusals -----------------------------------------------------------------------------


def _broken(edit: Any) -> dict[str, dict[str, Any]]:
    docs = documents()
    edit(docs)
    return docs


def _gold(key: str, value: Any) -> Any:
    return lambda docs: docs["crm-experts.toml"]["plans"]["gold"].__setitem__(key, value)


def _gold_p1(response: str) -> Any:
    return _gold("targets", {"P1": {"response": response}})


def _shared_monday(windows: list[list[str]]) -> Any:
    return lambda docs: docs["crm-experts.toml"]["calendars"]["business"]["windows"].update(
        mon=windows
    )


@pytest.mark.parametrize(
    ("edit", "plan_id", "words"),
    [
        (_gold("targets", {"P5": {"response": "1h"}}), "crm-experts/gold", "P5"),
        (_gold_p1("1x"), "crm-experts/gold", "1x"),
        (_gold("colour", "gold"), "crm-experts/gold", "colour"),
        (_gold("time_zone", "Mars/Base"), "crm-experts/gold", "Mars/Base"),
        (_gold("coverage", {"default": "nights"}), "crm-experts/gold", "nights"),
        (_gold("channels", ["Slack"]), "crm-experts/gold", "Slack"),
        (_gold("bank", {"hours": 40}), "crm-experts/gold", "Bank"),
        (_gold("name", " "), "crm-experts/gold", "name"),
        (
            lambda docs: docs["crm-experts.toml"]["plans"]["gold"].pop("name"),
            "crm-experts/gold",
            "name",
        ),
        (_shared_monday([["20:00", "08:00"]]), "crm-experts/silver", "mon"),
        (_shared_monday([["08:00", "25:00"]]), "crm-experts/silver", "25:00"),
    ],
)
def test_an_invalid_plan_is_refused_naming_the_file_and_the_plan(
    edit: Any, plan_id: str, words: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_catalog(_broken(edit))
    message = str(refused.value)
    assert message.startswith(f"crm-experts.toml: plan {plan_id}: ")
    assert words in message


def test_invalid_terms_in_an_event_are_refused_naming_the_plan() -> None:
    data = CATALOG["dolibarr/credits"].to_dict()
    broken = copy.deepcopy(data)
    broken["credits"]["charges"]["query"]["block"] = 0
    with pytest.raises(ValueError, match="plan dolibarr/credits"):
        PlanTerms.from_dict(broken)
    with pytest.raises(ValueError, match=r"plan datacrm/standard: .*default_category"):
        PlanTerms.from_dict(CATALOG["datacrm/standard"].to_dict() | {"default_category": "nope"})
    with pytest.raises(ValueError, match=r"plan bpm/basic: .*targets_by"):
        PlanTerms.from_dict(CATALOG["bpm/basic"].to_dict() | {"targets_by": "mood"})


def test_a_provider_file_that_names_another_provider_is_refused() -> None:
    docs = _broken(lambda x: x["bpm.toml"].update(provider="crm-experts"))
    with pytest.raises(ValueError, match=r"bpm\.toml"):
        parse_catalog(docs)


def test_a_file_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("plans = [", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_catalog(tmp_path)
