"""Optional copies of stored data to outside systems (time-series databases)."""

from cloud.sinks.influx import InfluxSink, InfluxSinkConfig, SinkStats

__all__ = ["InfluxSink", "InfluxSinkConfig", "SinkStats"]
