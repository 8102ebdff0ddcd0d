"""The Kafka edge of streamlearn: topics, message contracts, processors and Faust agents.

Agents are thin: they turn Faust events into :class:`~streams.records.InputRecord` batches, hand
them to a processor (:mod:`streams.learning`, :mod:`streams.scoring`), send what it returns and
ack. The processors hold the logic and are tested without a broker.
"""
