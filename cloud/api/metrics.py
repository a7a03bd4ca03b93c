"""Prometheus metrics, read from the components' own counters at scrape time.

A per-app :class:`CollectorRegistry` (no global state), so several apps in one process (tests)
never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloud.alerts.states import Status
from cloud.alerts.tables import Alert
from cloud.api.services import Services


class LinliCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.s = services

    def collect(self) -> Iterator[Metric]:
        s = self.s
        if s.ingest is not None:
            st = s.ingest.stats
            for name in ("received", "stored", "duplicates", "readings", "acked", "batches"):
                yield CounterMetricFamily(
                    f"linli_ingest_{name}", f"Ingest {name} since start", value=getattr(st, name)
                )
            rejects = CounterMetricFamily(
                "linli_ingest_rejects", "Rejected messages by reason", labels=["reason"]
            )
            for reason, n in st.rejects.items():
                rejects.add_metric([reason], n)
            yield rejects
            yield GaugeMetricFamily(
                "linli_ingest_queue_depth", "Received, not yet stored", value=s.ingest.queue_depth
            )
            yield from _receiver(s)
        if s.runner is not None:
            runner = CounterMetricFamily(
                "linli_rules_events", "Rules runner counters", labels=["what"]
            )
            for what, n in s.runner.counts.items():
                runner.add_metric([what], n)
            yield runner
            yield GaugeMetricFamily(
                "linli_rules_backlog",
                "Stored batches waiting for the rules",
                value=s.runner.backlog,
            )
        effects = CounterMetricFamily("linli_rule_effects", "Rule action outcomes", labels=["what"])
        for what, n in s.effects.counts.items():
            effects.add_metric([what], n)
        yield effects
        yield GaugeMetricFamily(
            "linli_rule_effects_backlog", "Rule actions waiting", value=s.effects.backlog
        )
        yield CounterMetricFamily(
            "linli_rule_effects_seconds",
            "Time spent applying rule actions (database transaction included)",
            value=s.effects.apply_seconds,
        )
        yield GaugeMetricFamily(
            "linli_rule_effects_max_seconds",
            "Longest single application of rule actions",
            value=s.effects.apply_max_s,
        )
        sent = CounterMetricFamily(
            "linli_notifications",
            "Notifications by channel and result",
            labels=["channel", "result"],
        )
        for ch, n in s.notifier.sent.items():
            sent.add_metric([ch, "sent"], n)
        for ch, n in s.notifier.failed.items():
            sent.add_metric([ch, "failed"], n)
        yield sent
        yield CounterMetricFamily(
            "linli_escalations", "Alerts escalated", value=s.escalator.escalated
        )
        yield CounterMetricFamily("linli_whistles", "Whistle calls", value=s.escalator.whistles)
        yield GaugeMetricFamily(
            "linli_stream_subscribers", "Live stream clients", value=s.hub.subscribers
        )
        if s.publisher is not None:
            yield CounterMetricFamily(
                "linli_mqtt_published", "Downlink messages published", value=s.publisher.published
            )
        crashes = CounterMetricFamily(
            "linli_task_restarts", "Background task restarts", labels=["task"]
        )
        for task, n in s.task_failures.items():
            crashes.add_metric([task], n)
        yield crashes
        active = GaugeMetricFamily(
            "linli_alerts_active", "Unresolved alerts by severity", labels=["severity"]
        )
        with s.sessions() as db:
            rows = db.execute(
                select(Alert.severity, func.count())
                .where(Alert.status.in_([st.value for st in Status if st.unresolved]))
                .group_by(Alert.severity)
            ).all()
        for severity, n in rows:
            active.add_metric([severity], n)
        yield active


def make_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LinliCollector(services))
    return registry


def _receiver(s: Services) -> Iterator[Metric]:
    """Split ingest: the receiver process's own counters (they restart with the process;
    ``linli_ingest_receiver_starts`` says when)."""
    status = None if s.ingest is None else s.ingest.receiver_status
    source = None if s.ingest is None else s.ingest.log_source
    if status is None or source is None:
        return
    counts = CounterMetricFamily(
        "linli_ingest_receiver",
        "Receiver process counters since it last started (split ingest)",
        labels=["what"],
    )
    for what in ("received", "appended", "acked", "batches", "paused", "connects"):
        counts.add_metric([what], getattr(status, what))
    yield counts
    yield CounterMetricFamily(
        "linli_ingest_receiver_starts", "Receiver processes started", value=source.process_starts
    )
    yield GaugeMetricFamily(
        "linli_ingest_receiver_subscribed",
        "1 while the receiver process is subscribed",
        value=int(status.subscribed),
    )
