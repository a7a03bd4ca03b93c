"""After-action reports as HTML (jinja2) and PDF (reportlab), in Chinese or English
(organisations named in that language: :meth:`cloud.risk.report.AfterAction.in_language`).

The PDF needs a font with Chinese glyphs. reportlab embeds TrueType-outline fonts only, so a
``.ttf``/``.ttc`` with TrueType outlines found on disk is used (e.g. WenQuanYi, Droid Sans
Fallback); Debian's Noto CJK (``fonts-noto-cjk``) ships PostScript (CFF) outlines, which reportlab
cannot embed, so otherwise the report uses reportlab's built-in ``STSong-Light`` CID font
(Adobe-GB1; not embedded, every PDF reader has it or substitutes it). Nothing is downloaded.
"""

from __future__ import annotations

import functools
import io
import logging
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from jinja2 import Environment, FileSystemLoader, select_autoescape
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from cloud.risk.report import AfterAction, Lang

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CJK_FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
CID_FONT = "STSong-Light"

LABELS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "After-action report", "drill_banner": "DRILL — an exercise, not a real emergency",
        "kind": "Report of", "incident": "Incident", "drill": "Drill", "site": "Site",
        "scenario": "Scenario", "participants": "Participants", "started": "Started",
        "ended": "Ended", "generated": "Generated", "durations": "Response times",
        "tta": "Time to acknowledge", "tt_arrive": "Time to arrive", "ttr": "Time to resolve",
        "alerts": "Alerts", "rule": "Rule", "severity": "Severity", "raised": "Raised",
        "acked_by": "Acknowledged by", "ack_after": "Acknowledged after",
        "resolve_after": "Resolved after", "none": "None", "expected": "Expected alerts",
        "deadline": "Deadline", "outcome": "Outcome", "failures": "What failed",
        "no_failures": "Nothing failed.", "timeline": "Timeline", "time": "Time",
        "what": "What", "who": "Who", "action": "Action", "detail": "Detail",
        "f_expected_alert": "expected alert", "f_alert_unacknowledged": "not acknowledged",
        "f_escalated": "escalated", "f_notification": "notification", "f_command": "command",
        "f_deadline": "deadline missed", "f_whistle": "whistle stage",
    },
    "zh": {
        "title": "事后复盘报告", "drill_banner": "演练 DRILL — 这是演练，不是真实紧急情况",
        "kind": "对象", "incident": "事件", "drill": "演练", "site": "小区",
        "scenario": "演练场景", "participants": "参与人员", "started": "开始时间",
        "ended": "结束时间", "generated": "生成时间", "durations": "响应时间",
        "tta": "确认用时", "tt_arrive": "到场用时", "ttr": "处置用时",
        "alerts": "告警", "rule": "规则", "severity": "级别", "raised": "告警时间",
        "acked_by": "确认人", "ack_after": "确认用时", "resolve_after": "处置用时",
        "none": "无", "expected": "预期告警", "deadline": "时限", "outcome": "结果",
        "failures": "问题与失误", "no_failures": "未发现问题。", "timeline": "时间线",
        "time": "时间", "what": "对象", "who": "人员", "action": "动作", "detail": "详情",
        "f_expected_alert": "预期告警", "f_alert_unacknowledged": "未确认",
        "f_escalated": "已升级", "f_notification": "通知", "f_command": "指令",
        "f_deadline": "超时", "f_whistle": "吹哨报到",
    },
}  # fmt: skip


def format_duration(value: float | None) -> str:
    """``12.3 s``, ``4 min 05.0 s``, ``2 h 03 min``; ``—`` when unknown."""
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    minutes, secs = divmod(value, 60)
    if minutes < 120:
        return f"{int(minutes)} min {secs:04.1f} s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours} h {minutes:02d} min"


def format_time(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True
    )
    env.globals.update(dur=format_duration, when=format_time)
    return env


def render_html(report: AfterAction, lang: Lang) -> str:
    template = _environment().get_template("after_action.html")
    return template.render(r=report.in_language(lang), t=LABELS[lang], lang=lang)


@functools.cache
def pdf_font(candidates: tuple[Path, ...] = CJK_FONT_CANDIDATES) -> str:
    """The name of a registered font with Chinese glyphs (see the module docstring)."""
    for path in candidates:
        if not path.is_file():
            continue
        name = f"linli-{path.stem}"
        try:
            pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
        except TTFError as exc:  # e.g. Noto CJK: PostScript outlines
            log.info("font %s not usable for PDF: %s", path, exc)
            continue
        return name
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
    return CID_FONT


def _cell(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def render_pdf(report: AfterAction, lang: Lang) -> bytes:
    t = LABELS[lang]
    report = report.in_language(lang)
    font = pdf_font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    h1 = ParagraphStyle("h1", parent=body, fontSize=16, leading=20, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=body, fontSize=12, leading=15, spaceBefore=8, spaceAfter=4)
    grid = TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
    ])  # fmt: skip
    head = TableStyle([*grid.getCommands(), ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)])

    def pairs(rows: list[tuple[str, str]]) -> Table:
        table = Table([[_cell(a, body), _cell(b, body)] for a, b in rows],
                      colWidths=[45 * mm, 125 * mm])  # fmt: skip
        table.setStyle(grid)
        return table

    def listing(header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        data = [[_cell(h, small) for h in header]]
        data += [[_cell(c, small) for c in row] for row in rows] or [[_cell(t["none"], small)]]
        table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
        table.setStyle(head)
        return table

    story: list[object] = [Paragraph(escape(f"{t['title']}: {report.title}"), h1)]
    if report.drill:
        story.append(Paragraph(escape(t["drill_banner"]), h2))
    summary = [(t["kind"], f"{t[report.kind]} #{report.ident}"), (t["site"], report.site)]
    if report.scenario:
        summary.append((t["scenario"], report.scenario))
    if report.participants:
        summary.append((t["participants"], ", ".join(report.participants)))
    summary += [(t["started"], format_time(report.started_at)),
                (t["ended"], format_time(report.ended_at)),
                (t["generated"], format_time(report.generated_at))]  # fmt: skip
    story += [pairs(summary), Paragraph(escape(t["durations"]), h2)]
    d = report.durations
    story.append(pairs([(t["tta"], format_duration(d.time_to_acknowledge_s)),
                        (t["tt_arrive"], format_duration(d.time_to_arrive_s)),
                        (t["ttr"], format_duration(d.time_to_resolve_s))]))  # fmt: skip
    story.append(Paragraph(escape(t["alerts"]), h2))
    story.append(listing(
        ["#", t["rule"], t["severity"], t["raised"], t["acked_by"], t["ack_after"],
         t["resolve_after"]],
        [[str(a.id), f"{a.title_zh if lang == 'zh' else a.title_en} ({a.rule_id} / {a.subject})",
          a.severity, format_time(a.raised_at), a.acknowledged_by or "—",
          format_duration(a.ack_s), format_duration(a.resolve_s)] for a in report.alerts],
        [10, 52, 16, 30, 22, 20, 20],
    ))  # fmt: skip
    if report.expectations:
        story.append(Paragraph(escape(t["expected"]), h2))
        story.append(listing(
            [t["rule"], t["severity"], t["deadline"], t["outcome"]],
            [[f"{e.get('rule')} / {e.get('subject')}", str(e.get("severity")),
              format_duration(e.get("deadline")), str(e.get("outcome"))]
             for e in report.expectations],
            [80, 25, 30, 35],
        ))  # fmt: skip
    story.append(Paragraph(escape(t["failures"]), h2))
    if report.failures:
        for f in report.failures:
            story.append(Paragraph(escape(f"[{t['f_' + f.kind]}] {f.ref}: {f.detail}"), body))
    else:
        story.append(Paragraph(escape(t["no_failures"]), body))
    story.append(Paragraph(escape(t["timeline"]), h2))
    story.append(listing(
        [t["time"], t["what"], t["who"], t["action"], t["detail"]],
        [[format_time(e.ts), e.ref, e.actor, e.action, e.detail[:300]] for e in report.timeline],
        [30, 45, 25, 20, 50],
    ))  # fmt: skip
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=f"{t['title']}: {report.title}",
                            leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm)  # fmt: skip
    doc.build(story)
    return out.getvalue()
