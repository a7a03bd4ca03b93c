"""The service catalogue (服务清单): categories, who handles them, deadlines, whom to whistle.

:func:`seed` adds the default catalogue's missing categories (idempotent: an edited category
keeps its edits, a deleted one comes back).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.governance.errors import Invalid, NotFound
from cloud.governance.models import CatalogueIn, CatalogueOut, CataloguePatch
from cloud.governance.orgs import get_org
from cloud.governance.tables import CatalogueItem

H = 3600
DEFAULT: tuple[CatalogueIn, ...] = tuple(
    CatalogueIn.model_validate(item)
    for item in (
        {"category": "repair_water", "name_zh": "水管维修", "name_en": "Water repair",
         "org_kind": "property", "deadline_s": 24 * H, "whistle_departments": ["utilities"]},
        {"category": "repair_electric", "name_zh": "电路维修", "name_en": "Electrical repair",
         "org_kind": "property", "deadline_s": 24 * H,
         "whistle_departments": ["utilities", "fire"]},
        {"category": "lift_fault", "name_zh": "电梯故障", "name_en": "Lift fault",
         "org_kind": "property", "deadline_s": 4 * H, "whistle_departments": ["other"]},
        {"category": "noise", "name_zh": "噪音扰民", "name_en": "Noise",
         "org_kind": "committee", "deadline_s": 48 * H, "whistle_departments": ["police"]},
        {"category": "sanitation", "name_zh": "环境卫生", "name_en": "Sanitation",
         "org_kind": "property", "deadline_s": 48 * H, "whistle_departments": ["sanitation"]},
        {"category": "fire_hazard", "name_zh": "消防隐患", "name_en": "Fire hazard",
         "org_kind": "property", "deadline_s": 12 * H, "whistle_departments": ["fire"],
         "phase": "prevention"},
        {"category": "ebike_corridor", "name_zh": "楼道电动车充电", "name_en": "E-bike in corridor",
         "org_kind": "grid", "deadline_s": 24 * H, "whistle_departments": ["fire"],
         "phase": "prevention"},
        {"category": "elderly_care", "name_zh": "老人关爱", "name_en": "Elderly care",
         "org_kind": "volunteer", "deadline_s": 24 * H, "whistle_departments": ["health"]},
        {"category": "welfare_check", "name_zh": "独居探访", "name_en": "Welfare check",
         "org_kind": "grid", "deadline_s": 4 * H, "whistle_departments": ["health", "police"]},
        {"category": "safety_alert", "name_zh": "安全告警", "name_en": "Safety alert",
         "org_kind": "property", "deadline_s": 1 * H, "whistle_departments": ["fire"]},
    )
)  # fmt: skip


def seed(db: Session) -> int:
    """Add the default categories that are missing; returns how many were added."""
    have = set(db.scalars(select(CatalogueItem.category)))
    added = 0
    for item in DEFAULT:
        if item.category in have:
            continue
        try:
            with db.begin_nested():
                db.add(CatalogueItem(**item.model_dump()))
        except IntegrityError:
            continue  # another process seeded it meanwhile
        added += 1
    return added


def _ensure(db: Session) -> None:
    if not db.scalar(select(func.count()).select_from(CatalogueItem)):
        seed(db)


def list_items(db: Session) -> list[CatalogueOut]:
    _ensure(db)
    rows = db.scalars(select(CatalogueItem).order_by(CatalogueItem.id))
    return [CatalogueOut.model_validate(r) for r in rows]


def item_for(db: Session, category: str, *, field: str = "category") -> CatalogueItem:
    """The catalogue entry of ``category``, else :class:`Invalid` naming ``field``."""
    _ensure(db)
    row = db.scalar(select(CatalogueItem).where(CatalogueItem.category == category))
    if row is None:
        known = sorted(db.scalars(select(CatalogueItem.category)))
        raise Invalid(field, f"unknown category {category!r} (known: {', '.join(known)})")
    return row


def create(db: Session, body: CatalogueIn) -> CatalogueItem:
    _ensure(db)
    if body.org_id is not None:
        get_org(db, body.org_id, field="org_id")
    if db.scalar(select(CatalogueItem.id).where(CatalogueItem.category == body.category)):
        raise Invalid("category", f"category {body.category!r} exists (PATCH it)")
    row = CatalogueItem(**body.model_dump())
    db.add(row)
    db.flush()
    return row


def patch(db: Session, item_id: int, body: CataloguePatch) -> CatalogueItem:
    row = db.get(CatalogueItem, item_id)
    if row is None:
        raise NotFound("catalogue item", item_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("org_id") is not None:
        get_org(db, changes["org_id"], field="org_id")
    for name, value in changes.items():
        setattr(row, name, value)
    db.flush()
    return row
