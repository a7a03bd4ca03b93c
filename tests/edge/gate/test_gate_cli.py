"""``linli faces``: enrol the sample photos, identify every probe, verify pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.gate.cli import main
from linli.cli import main as linli_main

pytestmark = pytest.mark.faces


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_enroll_then_identify_every_probe(
    faces_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gallery = tmp_path / "g.json"
    code = linli_main(
        ["faces", "enroll", str(faces_data / "enroll"), "--gallery", str(gallery), "--consent"]
    )
    enrolled = lines(capsys.readouterr().out)
    assert code == 0
    assert len(enrolled) == 10 and all(r["ok"] for r in enrolled)
    assert {r["person_id"] for r in enrolled} == {
        "alex_lacamoire",
        "biden",
        "kit_harington",
        "lin_manuel_miranda",
        "obama",
        "rose_leslie",
    }

    probes = sorted((faces_data / "probe").iterdir())
    assert main(["identify", "--gallery", str(gallery), *map(str, probes)]) == 0
    results = lines(capsys.readouterr().out)
    assert len(results) == len(probes)
    for result in results:
        expected = set(Path(result["file"]).stem.replace("_small", "").split("+"))
        found = [f["person_id"] for f in result["faces"] if f["person_id"] is not None]
        assert sorted(found) == sorted(expected), result
        for f in result["faces"]:  # anyone else in the picture is rejected, not guessed
            if f["person_id"] is None:
                assert f["distance"] > 0.5

    # Erase one person: her face in a probe is now rejected, the other is still known.
    assert main(["erase", "rose_leslie", "--gallery", str(gallery)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "identify",
                "--gallery",
                str(gallery),
                str(faces_data / "probe" / "kit_harington+rose_leslie.jpg"),
            ]
        )
        == 0
    )
    (after,) = lines(capsys.readouterr().out)
    assert sorted(str(f["person_id"]) for f in after["faces"]) == ["None", "kit_harington"]


def test_verify_single_pair(faces_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = [str(faces_data / "probe" / "obama.jpg"), str(faces_data / "enroll" / "obama_1.jpg")]
    assert main(["verify", *same]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"distance", "match"}
    assert out["match"] is True and 0 < out["distance"] <= 0.5

    other = [str(faces_data / "probe" / "obama.jpg"), str(faces_data / "enroll" / "biden_1.jpg")]
    assert main(["verify", *other]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["match"] is False and out["distance"] > 0.5


def test_verify_reports_an_image_without_a_face(
    faces_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    assert main(["verify", str(blank), str(faces_data / "probe" / "obama.jpg")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["distance"] is None and out["match"] is False and "no usable face" in out["error"]


def test_verify_pairs_csv(
    faces_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((120, 120, 3), 30, np.uint8))
    pairs = tmp_path / "pairs.csv"
    rows = [
        ("probe/obama.jpg", "enroll/obama_2.jpg", "same"),
        ("probe/kit_harington.jpg", "enroll/rose_leslie_1.jpg", "different"),
        ("probe/alex_lacamoire.jpg", "../wall.png", "noface"),
        ("probe/missing.jpg", "probe/obama.jpg", "missing"),
    ]
    with pairs.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "file_x", "file_y", "label"])
        for i, (x, y, label) in enumerate(rows):
            writer.writerow([i, x, y, label])
    root = tmp_path / "root"
    root.mkdir()
    (root / "probe").symlink_to(faces_data / "probe")
    (root / "enroll").symlink_to(faces_data / "enroll")
    code = main(["verify", "--pairs", str(pairs), "--root", str(root), "--json"])
    assert code == 0
    out = lines(capsys.readouterr().out)
    assert [(o["file_x"], o["file_y"]) for o in out] == [(x, y) for x, y, _ in rows]
    assert out[0]["match"] is True and out[0]["distance"] <= 0.5 and "error" not in out[0]
    assert out[1]["match"] is False and out[1]["distance"] > 0.5
    assert out[2]["distance"] is None and out[2]["match"] is False and out[2]["error"]
    assert out[3]["distance"] is None and "missing.jpg" in out[3]["error"]


def test_verify_pairs_csv_without_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["verify", "--pairs", str(bad), "--root", str(tmp_path)]) == 2
    assert "file_x" in capsys.readouterr().err


def test_cli_on_the_cloud_database(
    faces_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'cloud.db'}"]
    photo = str(faces_data / "enroll" / "kit_harington_2.jpg")
    assert main(["enroll", photo, *db, "--no-progress"]) == 1  # no consent yet
    refused = lines(capsys.readouterr().out)
    assert refused[0]["reason"] == "no_consent"
    assert main(["consent", "kit_harington", "--by", "desk", *db]) == 0
    assert main(["enroll", photo, *db, "--no-progress", "--publish"]) == 0
    out = lines(capsys.readouterr().out)
    assert out[-2]["ok"] is True and out[-1]["published"] == 1
    assert main(["list", *db]) == 0
    (person,) = lines(capsys.readouterr().out)
    assert person == {"person_id": "kit_harington", "name": None, "encodings": 1, "consent": True}
