"""``linli faces``: enrol, verify, identify, consent, erase, publish, list, purge-thumbnails.

The gallery is a JSON file (``--gallery PATH``, default ``$LINLI_FACES_GALLERY`` or
``faces-gallery.json``) or the cloud database (``--db URL``). Results go to stdout as JSON;
progress and per-file errors to stderr.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.faces.store import FacesError, FileGallery, GalleryStore
from edge.gate.errors import GateError, ImageError
from edge.gate.faces import FaceEngine, Vec, load_rgb
from edge.gate.matching import DEFAULT_THRESHOLD, Gallery, distance

PROG = "linli faces"


def _store(args: argparse.Namespace) -> GalleryStore:
    if args.db:
        from cloud.db import create_schema, make_engine
        from cloud.faces.dbstore import DbGallery

        engine = make_engine(args.db)
        create_schema(engine)
        return DbGallery(engine, actor=f"cli:{getpass.getuser()}")
    return FileGallery(Path(args.gallery))


def _now() -> datetime:
    return datetime.now(UTC)


def _print(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _largest_face_encoding(engine: FaceEngine, path: Path) -> Vec:
    from edge.gate.enrol import faces_in

    rgb = load_rgb(path)
    found = faces_in(engine, rgb)
    if not found:
        raise ImageError(str(path), "no_face", "no usable face")
    face = max(found, key=lambda f: f.box.area)
    return engine.encode(rgb, face)


def cmd_enroll(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge.gate.enrol import enrol, image_files

    files = image_files(Path(p) for p in args.paths)
    if not files:
        print(f"{PROG} enroll: no image files in {args.paths}", file=sys.stderr)
        return 2
    store = _store(args)
    engine = FaceEngine()
    consent_by = (args.consent_by or "operator") if args.consent else None
    failed = 0
    bar = tqdm(files, desc="enrolling", unit="photo", file=sys.stderr, disable=args.no_progress)
    results = enrol(
        engine,
        store,
        bar,
        at=_now(),
        consent_by=consent_by,
        consent_basis=args.basis,
        person_id=args.person,
        name=args.name,
        allow_similar=args.allow_similar,
        thumbnail_retention=timedelta(days=args.thumbnail_days) if args.thumbnail_days else None,
    )
    for result in results:
        if not result.ok:
            failed += 1
            bar.write(f"{result.path}: {result.reason}: {result.detail}", file=sys.stderr)
        _print(
            {
                "file": str(result.path),
                "person_id": result.person_id,
                "ok": result.ok,
                "reason": result.reason,
                **({"error": result.detail} if not result.ok else {}),
            }
        )
    if args.publish:
        info = store.publish(_now())
        _print({"published": info.version, "sha256": info.sha256, "size": info.size})
    return 1 if failed else 0


def cmd_verify(args: argparse.Namespace) -> int:
    engine = FaceEngine()
    cache: dict[Path, Vec | ImageError] = {}

    def encoding(path: Path) -> Vec | ImageError:
        if path not in cache:
            try:
                cache[path] = _largest_face_encoding(engine, path)
            except ImageError as exc:
                cache[path] = exc
        return cache[path]

    def compare(a: Path, b: Path) -> dict[str, Any]:
        ea, eb = encoding(a), encoding(b)
        errors = [e.detail + f" in {e.path}" for e in (ea, eb) if isinstance(e, ImageError)]
        if isinstance(ea, ImageError) or isinstance(eb, ImageError):
            return {"distance": None, "match": False, "error": "; ".join(errors)}
        d = distance(ea, eb)
        return {"distance": round(d, 6), "match": d <= args.threshold}

    if args.pairs:
        root = Path(args.root or ".")
        with open(args.pairs, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"file_x", "file_y"} - set(reader.fieldnames or ())
            if missing:
                print(
                    f"{PROG} verify: {args.pairs} lacks columns {sorted(missing)}", file=sys.stderr
                )
                return 2
            for row in reader:
                x, y = row["file_x"], row["file_y"]
                _print({"file_x": x, "file_y": y, **compare(root / x, root / y)})
        return 0
    if len(args.images) != 2:
        print(f"{PROG} verify: give two images, or --pairs FILE.csv", file=sys.stderr)
        return 2
    result = compare(Path(args.images[0]), Path(args.images[1]))
    _print(result)
    return 1 if "error" in result else 0


def cmd_identify(args: argparse.Namespace) -> int:
    from edge.gate.bundle import build
    from edge.gate.enrol import faces_in

    store = _store(args)
    grouped: dict[str, tuple[str | None, list[Vec]]] = {}
    for enc in store.encodings():
        grouped.setdefault(enc.person_id, (None, []))[1].append(enc.vector)
    gallery: Gallery = build(1, _now(), grouped).gallery()
    engine = FaceEngine()
    for name in args.images:
        try:
            rgb = load_rgb(name)
        except ImageError as exc:
            _print({"file": name, "error": exc.detail, "faces": []})
            continue
        faces = []
        for face in faces_in(engine, rgb):
            match = gallery.match(engine.encode(rgb, face), args.threshold)
            box = face.box
            faces.append(
                {
                    "person_id": match.person_id,
                    "distance": round(match.distance, 6) if len(gallery) else None,
                    "box": [box.left, box.top, box.right, box.bottom],
                }
            )
        _print({"file": name, "faces": faces})
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Run the gate on a source and print every access event as JSON (no door, no broker)."""
    from edge.gate.bundle import build
    from edge.gate.capture import LatestFrameGrabber, open_source, read_all
    from edge.gate.gate import Gate
    from edge.gate.pipeline import Pipeline, PipelineConfig
    from edge.gate.policy import DoorConfig, PersonConfig, PolicyConfig
    from edge.gate.quality import QualityConfig

    store = _store(args)
    grouped: dict[str, tuple[str | None, list[Vec]]] = {}
    names = store.people()
    for enc in store.encodings():
        grouped.setdefault(enc.person_id, (names.get(enc.person_id), []))[1].append(enc.vector)
    bundle = build(1, _now(), grouped)
    policy = PolicyConfig(
        doors={
            args.door: DoorConfig(
                door=args.door, liveness=not args.no_liveness, default_threshold=args.threshold
            )
        },
        people={pid: PersonConfig(person_id=pid) for pid in grouped},
    )
    config = PipelineConfig(
        upsample=args.upsample, quality=QualityConfig(min_face_px=args.min_face)
    )
    gate = Gate(
        door=args.door,
        camera=args.camera,
        pipeline=Pipeline(FaceEngine(), bundle.gallery(), config),
        policy=policy,
        sink=lambda e: _print(
            e.model_dump(mode="json", exclude_none=True, exclude={"thumbnail_jpeg_b64"})
        ),
        names=bundle.names(),
    )
    source = open_source(args.source)
    if source.live:
        with LatestFrameGrabber(lambda: source) as grabber:
            while (frame := grabber.get(timeout=10)) is not None:
                gate.frame(frame.rgb, _now())
        return 0
    start = _now()
    for frame in read_all(source):
        if frame.index % args.stride == 0:
            offset = frame.position_s if frame.position_s is not None else frame.index / 10
            gate.frame(frame.rgb, start + timedelta(seconds=offset))
    return 0


def cmd_consent(args: argparse.Namespace) -> int:
    from cloud.faces.store import Consent

    _store(args).record_consent(Consent(args.person, args.by, args.basis, _now()))
    _print({"person_id": args.person, "consent": True, "given_by": args.by})
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    store = _store(args)
    removed = store.erase(args.person, by=args.by, at=_now())
    out: dict[str, Any] = {"person_id": args.person, "encodings_removed": removed}
    if args.publish:
        info = store.publish(_now())
        out.update(published=info.version, sha256=info.sha256)
    _print(out)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    info = _store(args).publish(_now())
    _print({"version": info.version, "sha256": info.sha256, "size": info.size})
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    counts: dict[str, int] = {}
    for enc in store.encodings():
        counts[enc.person_id] = counts.get(enc.person_id, 0) + 1
    for pid, name in sorted(store.people().items()):
        consent = store.consent(pid)
        _print(
            {
                "person_id": pid,
                "name": name,
                "encodings": counts.get(pid, 0),
                "consent": consent is not None,
            }
        )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    _print({"thumbnails_purged": _store(args).purge_thumbnails(_now())})
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Enrol and verify faces for the gate.")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--gallery",
        default=os.environ.get("LINLI_FACES_GALLERY", "faces-gallery.json"),
        help="gallery JSON file (default $LINLI_FACES_GALLERY or faces-gallery.json)",
    )
    store.add_argument("--db", help="use the cloud database at this SQLAlchemy URL instead")
    thr = argparse.ArgumentParser(add_help=False)
    thr.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"match distance (default {DEFAULT_THRESHOLD}, the gate's own)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("enroll", parents=[store], help="enrol photos (one face each)")
    e.add_argument("paths", nargs="+", help="image files or directories")
    e.add_argument("--consent", action="store_true", help="the people gave consent (recorded)")
    e.add_argument("--consent-by", help="who collected the consent (default: operator)")
    e.add_argument("--basis", default="written consent", help="consent basis, recorded")
    e.add_argument("--person", help="person id for every file (default: from the file name)")
    e.add_argument("--name", help="display name")
    e.add_argument(
        "--allow-similar",
        action="store_true",
        help="enrol even if the face matches another enrolled person",
    )
    e.add_argument(
        "--thumbnail-days",
        type=float,
        default=30.0,
        help="keep a thumbnail this many days (0: none)",
    )
    e.add_argument("--publish", action="store_true", help="publish a new gallery version after")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_enroll)

    v = sub.add_parser("verify", parents=[thr], help="distance between two photos, as JSON")
    v.add_argument("images", nargs="*", help="two images")
    v.add_argument("--pairs", help="CSV with columns file_x,file_y")
    v.add_argument("--root", help="directory the CSV paths are relative to")
    v.add_argument("--json", action="store_true", help="JSON lines output (the default)")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("identify", parents=[store, thr], help="who is in these photos")
    i.add_argument("images", nargs="+")
    i.set_defaults(func=cmd_identify)

    w = sub.add_parser(
        "watch", parents=[store, thr], help="run the gate on a camera/file, print access events"
    )
    w.add_argument("source", help="rtsp://… http://… URL, USB index (0), video file or folder")
    w.add_argument("--door", default="door1")
    w.add_argument("--camera", default="cam1")
    w.add_argument("--no-liveness", action="store_true", help="accept faces without liveness")
    w.add_argument("--upsample", type=int, default=0, choices=(0, 1, 2))
    w.add_argument("--min-face", type=int, default=60, help="smallest face side in pixels")
    w.add_argument("--stride", type=int, default=1, help="files: process every Nth frame")
    w.set_defaults(func=cmd_watch)

    c = sub.add_parser("consent", parents=[store], help="record a person's consent")
    c.add_argument("person")
    c.add_argument("--by", required=True, help="who collected it")
    c.add_argument("--basis", default="written consent")
    c.set_defaults(func=cmd_consent)

    r = sub.add_parser("erase", parents=[store], help="erase a person (reaches edges on sync)")
    r.add_argument("person")
    r.add_argument("--by", default="operator")
    r.add_argument("--publish", action="store_true", help="publish a new gallery version after")
    r.set_defaults(func=cmd_erase)

    sub.add_parser("publish", parents=[store], help="publish a gallery version").set_defaults(
        func=cmd_publish
    )
    sub.add_parser("list", parents=[store], help="enrolled people").set_defaults(func=cmd_list)
    sub.add_parser(
        "purge-thumbnails", parents=[store], help="drop thumbnails past retention"
    ).set_defaults(func=cmd_purge)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except (GateError, FacesError, OSError) as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
