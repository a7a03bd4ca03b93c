"""The wire contract shared by edge, cloud and simulators: topics, payloads, rule language.

Pure: no I/O, no MQTT client. Import what you need from the submodules::

    from protocols.topics import Channel, topic, parse_topic
    from protocols.messages import Telemetry, Reading
    from protocols.codec import encode, decode
"""
