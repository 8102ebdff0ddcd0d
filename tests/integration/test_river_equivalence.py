"""River's Phishing dataset through Kafka gives exactly River's in-process result."""

from __future__ import annotations

import pytest
from river import datasets, evaluate, linear_model, metrics, preprocessing

from models.market import EPOCH_2026_MS
from tests.integration.infra import ENGINES

PHISHING_FEATURES = (
    "empty_server_form_handler",
    "popup_window",
    "https",
    "request_from_other_domain",
    "anchor_from_other_domain",
    "is_popular",
    "long_url",
    "age_of_domain",
    "ip_in_url",
)


@pytest.mark.parametrize("engine", ENGINES)
def test_phishing_through_the_topic_equals_progressive_val_score(deploy, tmp_path, engine):
    deployment = deploy(
        topics={"partitions": 1},
        model={"features": PHISHING_FEATURES},
        checkpoint={"every_outcomes": 100},
        processing={"engine": engine},
    )
    dataset = list(datasets.Phishing())
    producer = deployment.producer()
    producer.send_outcomes(
        {
            "outcome_id": f"phishing-{i}",
            "key": "global",
            "ts": EPOCH_2026_MS + i,
            "features": x,
            "label": int(y),
        }
        for i, (x, y) in enumerate(dataset)
    )
    producer.flush()
    deployment.worker(tmp_path).start()
    deployment.wait_for(
        lambda: deployment.applied_offsets()[0] == len(dataset) - 1, 60, "all outcomes applied"
    )

    reference = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    accuracy = evaluate.progressive_val_score(datasets.Phishing(), reference, metrics.Accuracy())
    assert f"{accuracy.get():.2%}" == "89.28%"

    streamed = deployment.key_models()["global"]
    assert streamed.updates == len(dataset)
    assert streamed.metrics.sources["online"].summary()["accuracy"] == accuracy.get()
    assert streamed.learner.weights == reference["LogisticRegression"].weights
    assert streamed.learner.intercept == reference["LogisticRegression"].intercept
