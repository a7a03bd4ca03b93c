"""Both languages cover every string the screens use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dashboards import HEAD, LOCALES, PAGES, STATIC

CJK = re.compile(r"[\u4e00-\u9fff]")


def catalogue(locale: str) -> dict[str, str]:
    data = json.loads((STATIC / "i18n" / f"{locale}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def used_keys() -> set[str]:
    keys: set[str] = set()
    for html in PAGES.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        keys |= set(re.findall(r'data-i18n(?:-placeholder|-title)?="([a-z_.]+)"', text))
    for js in (STATIC / "js").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        keys |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"', text))
    # t("gov.state." + state): a family built at run time, checked value by value below.
    return {k for k in keys if not k.endswith(".")}


def dynamic_prefixes() -> set[str]:
    """The key families the scripts build at run time (``t("prefix." + value)``)."""
    found: set[str] = set()
    for js in (STATIC / "js").glob("*.js"):
        found |= set(re.findall(r'\b(?:t|tOr)\("([a-z_.]+\.)" \+', js.read_text(encoding="utf-8")))
    return found


def test_every_language_has_the_same_keys() -> None:
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert set(en) == set(zh), set(en) ^ set(zh)
    assert all(isinstance(v, str) and v.strip() for c in (en, zh) for v in c.values())


def test_every_used_key_is_translated() -> None:
    keys = used_keys()
    assert len(keys) > 50  # the scan found the strings (it would find none if broken)
    for locale in LOCALES:
        missing = sorted(keys - set(catalogue(locale)))
        assert not missing, f"{locale} lacks {missing}"


def test_dynamic_key_families_are_complete() -> None:
    """Keys built at run time ("severity." + s, "role." + r…) exist for every value."""
    from cloud.alerts.states import Severity, Status
    from cloud.auth.models import Role
    from protocols.messages import AccessDecision, AccessKind

    families: dict[str, list[str]] = {
        "severity": list(Severity),
        "status": list(Status),
        "role": list(Role),
        "decision": list(AccessDecision),
        "access": [k for k in AccessKind if k is not AccessKind.DECISION],
        "state": ["online", "offline", "ok", "alarm", "stale", "pending"],
        "action": ["acknowledge", "start", "resolve", "close", "escalate", "assign", "comment"],
    }
    families |= governance_families()
    for locale in LOCALES:
        cat = catalogue(locale)
        for prefix, values in families.items():
            for value in values:
                assert f"{prefix}.{value}" in cat, f"{locale}: {prefix}.{value}"
    # Every family a script builds is listed here (else its values would go unchecked).
    listed = {p + "." for p in families} | {"metric.", "kind.", "reason.", "notes.reason."}
    listed |= {"gov.category.", "risk.scenario.", "timeline."}  # tOr: the raw value is the fallback
    assert dynamic_prefixes() <= listed, dynamic_prefixes() - listed


DONE = ["dispatch", "accept", "arrive", "resolve", "confirm", "reopen", "close", "whistle",
        "comment"]  # fmt: skip


def governance_families() -> dict[str, list[str]]:
    """The governance pages' key families, from the backend's own types."""
    from typing import get_args

    from cloud.governance.models import Department, OrgKind, Phase, Source, Stage
    from cloud.governance.states import Action, State
    from cloud.risk.drills import DrillStatus
    from cloud.risk.levels import Level
    from cloud.risk.register import RiskStatus

    timeline = [a.value for a in Action] + [f"whistle_{s}" for s in get_args(Stage)]
    timeline += ["opened", "deadline_missed", "whistle_reminder", "whistle_escalated"]
    return {
        "gov.state": list(State),
        "gov.action": [*timeline, "alerts_linked"],
        "gov.done": [*DONE],
        "gov.stage": list(get_args(Stage)),
        "gov.kind": list(get_args(OrgKind)),
        "gov.department": list(get_args(Department)),
        "gov.source": list(get_args(Source)),
        "gov.phase": list(get_args(Phase)),
        "incidents.group": ["new", "dispatched", "in_progress", "resolved", "done"],
        "responder.report": list(get_args(Stage)),
        "responder.do": ["accept", "arrive", "resolve"],
        "risk.level": list(get_args(Level)),
        "risk.status": list(get_args(RiskStatus)),
        "risk.drill": list(get_args(DrillStatus)),
    }


@pytest.mark.parametrize("key", ["app.console", "app.gate", "gate.open", "action.acknowledge"])
def test_chinese_catalogue_is_chinese(key: str) -> None:
    assert CJK.search(catalogue("zh-CN")[key])
    assert not CJK.search(catalogue("en")[key])


def test_no_page_hard_codes_visible_text() -> None:
    """Visible text comes from the catalogues: elements carrying text must use data-i18n."""
    for html in PAGES.glob("*.html"):
        if html.name == HEAD:
            continue
        body = html.read_text(encoding="utf-8").split("<body", 1)[1]
        body = re.sub(r"<script.*?</script>", "", body, flags=re.S)
        texts = [
            m.strip()
            for m in re.findall(r">([^<>]+)<", body)
            if m.strip() and not m.strip().startswith("&")
        ]
        # Only the brand placeholder before the catalogue loads, and language names (written
        # in their own language, as language pickers do), are allowed.
        assert set(texts) <= {"Linli", "中文", "English"}, (html.name, texts)


def test_pages_exist_for_every_screen() -> None:
    from dashboards import SCREENS

    for name in SCREENS.values():
        assert (PAGES / name).is_file()
    assert Path(STATIC / "css" / "linli.css").is_file()


def test_every_gate_reason_is_translated() -> None:
    """The gate terminal shows why a door opened or not, in words, for every policy reason."""
    from edge.gate.alarms import Alarm
    from edge.gate.policy import Reason

    for locale in LOCALES:
        cat = catalogue(locale)
        missing = [r.value for r in [*Reason, *Alarm] if f"reason.{r.value}" not in cat]
        assert not missing, f"{locale} lacks reasons {missing}"


def test_every_device_kind_and_metric_has_a_name() -> None:
    from protocols.kinds import METRICS, DeviceKind

    metrics = {m.name for ms in METRICS.values() for m in ms}
    for locale in LOCALES:
        cat = catalogue(locale)
        assert not [k.value for k in DeviceKind if f"kind.{k.value}" not in cat], locale
        assert not sorted(m for m in metrics if f"metric.{m}" not in cat), locale
