"""The rules this cloud runs (default pack + files from settings) and what edges get."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict

from cloud.api.services import Svc
from cloud.auth.deps import Principal, require_roles

router = APIRouter(prefix="/api/rules", tags=["rules"])
Reader = Annotated[Principal, Depends(require_roles())]


class RuleOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title_en: str
    title_zh: str
    severity: str
    subject: str
    runs_on: str
    enabled: bool
    condition: str
    definition: dict[str, Any]


class RulesOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    sources: list[str]
    count: int
    rules: list[RuleOut]


@router.get("", summary="Every loaded rule with its source packs")
def list_rules(who: Reader, svc: Svc) -> RulesOut:
    rules = [
        RuleOut(
            id=r.id,
            title_en=r.title.en,
            title_zh=r.title.zh,
            severity=r.severity.value,
            subject=r.subject.value,
            runs_on=r.runs_on.value,
            enabled=r.enabled,
            condition=r.when.type,
            definition=r.to_dict(),
        )
        for r in svc.ruleset.rules
    ]
    return RulesOut(sources=list(svc.rule_sources), count=len(rules), rules=rules)


@router.get("/{rule_id}", summary="One rule")
def get_rule(rule_id: str, who: Reader, svc: Svc) -> RuleOut:
    for rule in list_rules(who, svc).rules:
        if rule.id == rule_id:
            return rule
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rule {rule_id!r}")
