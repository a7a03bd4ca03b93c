"""One door's controller: sightings and credentials → policy → door command + access events.

Inputs are method calls with their event time (frames, card/PIN/QR reads, door contact, people
counted through); outputs go to two small callables: ``sink`` gets every
:class:`protocols.messages.AccessEvent` (the edge agent's outbox), ``open_door`` gets each grant
(the lock driver or the agent's ``door.open`` action). The policy and the alarm state machine
stay pure; this class only wires them to the outside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from edge.gate.alarms import Alarm, AlarmEvent, DoorAlarms
from edge.gate.events import EventFactory, EventSink, RateLimiter, thumbnail_jpeg
from edge.gate.faces import RGB
from edge.gate.matching import Gallery
from edge.gate.pipeline import Pipeline, Sighting
from edge.gate.policy import (
    AccessRequest,
    Credential,
    Decision,
    PolicyConfig,
    PolicyState,
    Reason,
    VisitorPass,
    decide,
)
from protocols.messages import AccessDecision, AccessEvent, AccessKind, AccessMethod

if TYPE_CHECKING:
    from edge.gate.passes import PassLedger

log = logging.getLogger(__name__)

DoorOpener = Callable[[Decision], None]
ALARM_KINDS = {
    Alarm.FORCED_OPEN: AccessKind.FORCED_OPEN,
    Alarm.HELD_OPEN: AccessKind.HELD_OPEN,
    Alarm.TAILGATING: AccessKind.TAILGATING,
}
SECOND_FACTOR_WINDOW_S = 15.0
QR_PASS_PREFIX = "LINLI-PASS:"
"""What a visitor pass's QR code says before its code (dashboards.api.QR_PREFIX)."""


class Gate:
    def __init__(
        self,
        *,
        door: str,
        camera: str,
        pipeline: Pipeline,
        policy: PolicyConfig,
        sink: EventSink,
        open_door: DoorOpener | None = None,
        names: Mapping[str, str] | None = None,
        factory: EventFactory | None = None,
        unknown_interval_s: float = 30.0,
        held_open_s: float = 30.0,
        repeat_s: float = 10.0,
        count_passages: bool = False,
    ) -> None:
        if door not in policy.doors:
            raise ValueError(f"door {door!r} is not in the policy")
        self.door = door
        self.camera = camera
        self.pipeline = pipeline
        self.policy = policy
        self._static_passes = policy.passes
        self._static_revoked = policy.revoked
        self.state = PolicyState()
        self.sink = sink
        self.open_door = open_door
        self.names = dict(names or {})
        self.factory = factory or EventFactory()
        self.unknown_limiter = RateLimiter(unknown_interval_s)
        self.alarms = DoorAlarms(door, held_open_s=held_open_s)
        self._pending_face: tuple[Sighting, datetime] | None = None
        self.repeat_s = repeat_s
        self.count_passages = count_passages
        self._recent: dict[tuple[str | None, str], datetime] = {}
        self.repeats_suppressed = 0
        self.ledger: PassLedger | None = None
        """Use counts of the synced visitor passes, shared with the gateway's other gates."""
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------
    def set_policy(self, policy: PolicyConfig) -> None:
        with self._lock:
            self.policy = policy
            self._static_passes = policy.passes
            self._static_revoked = policy.revoked

    def set_passes(
        self,
        passes: Sequence[VisitorPass],
        uses: Mapping[str, int],
        revoked: Mapping[str, str] | None = None,
    ) -> None:
        """Replace the synced visitor passes and revoked codes (those of the configuration
        stay); keep the larger of the known use counts."""
        with self._lock:
            static = tuple(p for p in self._static_passes if p.pass_id not in uses)
            update = {
                "passes": static + tuple(passes),
                "revoked": {**self._static_revoked, **(revoked or {})},
            }
            self.policy = self.policy.model_copy(update=update)
            counted = dict(self.state.pass_uses)
            for pass_id, n in uses.items():
                counted[pass_id] = max(counted.get(pass_id, 0), n)
            self.state = self.state.model_copy(update={"pass_uses": counted})

    def set_gallery(self, gallery: Gallery, names: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self.pipeline.set_gallery(gallery)
            if names is not None:
                self.names = dict(names)

    # -- inputs ----------------------------------------------------------------------------
    def frame(self, rgb: RGB, at: datetime) -> list[AccessEvent]:
        """Process one camera frame; returns the events emitted for it."""
        with self._lock:
            threshold = self.policy.doors[self.door].threshold(self.camera)
            events: list[AccessEvent] = []
            for sighting in self.pipeline.process(rgb, at, threshold):
                events += self._on_sighting(sighting, at)
            opened_at = self.alarms.opened_at
            if self.count_passages and self.alarms.is_open and opened_at is not None:
                # A camera facing the doorway: a face seen while the door was open and then
                # gone has passed through (a heuristic; a beam sensor calls passed() instead).
                gone = sum(1 for t in self.pipeline.departed if t.last_seen >= opened_at)
                if gone:
                    events += self._alarm_events(self.alarms.passed(gone, at))
            events += self._alarm_events(self.alarms.tick(at))
            return self._emit(events)

    def credential(self, credential: Credential, at: datetime) -> list[AccessEvent]:
        """A card, PIN or QR code was presented at this door's reader (a visitor pass's QR
        text ``LINLI-PASS:<code>`` is read as its code)."""
        if credential.kind == "qr" and credential.value.startswith(QR_PASS_PREFIX):
            credential = Credential(kind="qr", value=credential.value[len(QR_PASS_PREFIX) :])
        with self._lock:
            pending = self._pending_face
            if pending is not None and (at - pending[1]).total_seconds() <= SECOND_FACTOR_WINDOW_S:
                sighting = pending[0]
                self._pending_face = None
                return self._emit(self._face_decision(sighting, at, credential))
            request = AccessRequest(
                door=self.door, at=at, method=AccessMethod(credential.kind), credential=credential
            )
            decision = self._decide(request)
            return self._emit(self._decided(decision, at, None))

    def contact(self, is_open: bool, at: datetime) -> list[AccessEvent]:
        with self._lock:
            return self._emit(self._alarm_events(self.alarms.contact(is_open, at)))

    def passed(self, people: int, at: datetime) -> list[AccessEvent]:
        with self._lock:
            return self._emit(self._alarm_events(self.alarms.passed(people, at)))

    # -- internals -----------------------------------------------------------------------
    def _emit(self, events: list[AccessEvent]) -> list[AccessEvent]:
        for event in events:
            self.sink(event)
        return events

    def _on_sighting(self, sighting: Sighting, at: datetime) -> list[AccessEvent]:
        if sighting.person_id is None:
            if not self.unknown_limiter.allow(self.camera, at):
                return []
            return [
                self.factory.access(
                    door=self.door,
                    kind=AccessKind.UNKNOWN_FACE,
                    at=at,
                    reason=Reason.UNKNOWN_FACE.value,
                    decision=AccessDecision.DENIED,
                    method=AccessMethod.FACE,
                    camera=self.camera,
                    distance=sighting.distance,
                    thumbnail=thumbnail_jpeg(sighting.frame, sighting.box),
                    attrs={"track": float(sighting.track_id), "votes": float(sighting.votes)},
                )
            ]
        return self._face_decision(sighting, at, None)

    def _decide(self, request: AccessRequest) -> Decision:
        """The policy's decision; synced visitor passes are counted gateway-wide (the ledger is
        shared by every gate of the gateway, so the last use cannot be granted at two doors)."""
        ledger = self.ledger
        if ledger is None:
            decision, self.state = decide(self.policy, self.state, request)
            return decision
        with ledger.lock:
            counts = {**self.state.pass_uses, **ledger.counts()}
            state = self.state.model_copy(update={"pass_uses": counts})
            decision, self.state = decide(self.policy, state, request)
            if decision.opens and decision.pass_id is not None:
                ledger.used(decision.pass_id)
        return decision

    def _repeat(self, person: str | None, reason: str, at: datetime) -> bool:
        """The same face outcome at this door less than ``repeat_s`` ago (a re-acquired track)."""
        last = self._recent.get((person, reason))
        if last is not None and (at - last).total_seconds() < self.repeat_s:
            self.repeats_suppressed += 1
            return True
        self._recent = {
            k: t for k, t in self._recent.items() if (at - t).total_seconds() < self.repeat_s
        }
        return False

    def _face_decision(
        self, sighting: Sighting, at: datetime, credential: Credential | None
    ) -> list[AccessEvent]:
        granted_key = (sighting.person_id, Reason.ALLOW_LIST.value)
        last_grant = self._recent.get(granted_key) or self._recent.get(
            (sighting.person_id, Reason.VISITOR_PASS.value)
        )
        if (
            credential is None
            and last_grant is not None
            and (at - last_grant).total_seconds() < self.repeat_s
        ):
            self.repeats_suppressed += 1  # just let in: a re-acquired track is not a new request
            return []
        request = AccessRequest(
            door=self.door,
            at=at,
            method=AccessMethod.FACE,
            person_id=sighting.person_id,
            credential=credential,
            camera=self.camera,
            distance=sighting.distance,
            liveness=sighting.liveness,
            frames=sighting.votes,
        )
        decision = self._decide(request)
        if decision.reason is Reason.SECOND_FACTOR_REQUIRED:
            self._pending_face = (sighting, at)
        if credential is None and self._repeat(decision.person_id, decision.reason.value, at):
            return []
        self._recent[(decision.person_id, decision.reason.value)] = at
        return self._decided(decision, at, sighting)

    def _decided(
        self, decision: Decision, at: datetime, sighting: Sighting | None
    ) -> list[AccessEvent]:
        if decision.opens:
            if self.open_door is not None:
                self.open_door(decision)
            self.alarms.grant(at)
        elif decision.alert:
            log.warning(
                "door %s: block-listed %s — guard must confirm", self.door, decision.person_id
            )
        person = decision.person_id
        extra: dict[str, object] = {}
        attrs: dict[str, str | float] = {}
        thumbnail: bytes | None = None
        if decision.pass_id is not None:
            attrs["pass_id"] = decision.pass_id
        if sighting is not None:
            thumbnail = thumbnail_jpeg(sighting.frame, sighting.box)
            extra = {
                "camera": self.camera,
                "distance": sighting.distance,
                "liveness": sighting.liveness,
            }
            attrs.update(track=float(sighting.track_id), votes=float(sighting.votes))
        extra["attrs"] = attrs
        event = self.factory.access(
            door=self.door,
            kind=AccessKind.DECISION,
            at=at,
            reason=decision.reason.value,
            decision=decision.decision,
            method=decision.method,
            thumbnail=thumbnail,
            person_id=person,
            person_name=self.names.get(person) if person else None,
            **extra,
        )
        return [event]

    def _alarm_events(self, alarms: list[AlarmEvent]) -> list[AccessEvent]:
        return [
            self.factory.access(
                door=a.door,
                kind=ALARM_KINDS[a.alarm],
                at=a.at,
                reason=a.alarm.value,
                decision=AccessDecision.ALARM,
                attrs={k: v for k, v in a.detail.items()},
            )
            for a in alarms
        ]
