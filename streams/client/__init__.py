"""The Python client of streamlearn, for the two groups who meet it through topics.

* Outcome producers: :class:`OutcomeProducer` (blocking) and :class:`AsyncOutcomeProducer`.
* Trading systems: :class:`SignalClient` (blocking) and :class:`AsyncSignalClient`, which send
  a signal request and await its signal by ``request_id``.

Both use the workers' own settings (:meth:`Endpoint.load`: ``KAFKA_BOOTSTRAP_SERVERS``, TLS,
SASL, topic names, features) and contract: the record key is the model key, the partition is
Kafka's default (murmur2) one, and a message the workers would refuse raises
:class:`ContractError` here, before it is sent. See ``docs/clients.md``.
"""

from streams.client.endpoint import ClientError, Endpoint
from streams.client.producer import AsyncOutcomeProducer, OutcomeProducer
from streams.client.records import outcome
from streams.client.signals import AsyncSignalClient, Signal, SignalClient, SignalTimeoutError
from streams.contracts import ContractError

__all__ = [
    "AsyncOutcomeProducer",
    "AsyncSignalClient",
    "ClientError",
    "ContractError",
    "Endpoint",
    "OutcomeProducer",
    "Signal",
    "SignalClient",
    "SignalTimeoutError",
    "outcome",
]
