"""Every topic string in the product comes from protocols/: nobody formats one by hand."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ["edge", "cloud", "simulators", "dashboards", "linli", "deploy", "bench"]
TOPICISH = re.compile(r"(^|[^\w])(linli/v\d|\$share/)")


def topic_literals(path: Path) -> list[str]:
    """String literals and f-strings in ``path`` that spell a Linli topic."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    inside_fstrings = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in inside_fstrings:
                continue
            text = node.value
            if re.search(r"\s", text.strip()):
                continue  # prose (a docstring) mentioning the grammar, not a topic
        else:
            continue
        if TOPICISH.search(text):
            found.append(f"{path.name}:{node.lineno}: {text!r}")
    return found


def test_no_topic_is_built_outside_protocols() -> None:
    offenders = [
        hit
        for folder in PRODUCT
        for path in sorted((REPO / folder).rglob("*.py"))
        for hit in topic_literals(path)
    ]
    assert offenders == []


def test_the_check_sees_a_hand_built_topic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        'site = "s"\nt = f"linli/v1/{site}/gw/telemetry"\nu = "linli/v1/s/g/cmd"\n'
        '"""A docstring may say linli/v1/{site}/... in prose."""\n'
    )
    assert len(topic_literals(bad)) == 2
