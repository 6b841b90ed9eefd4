"""A classifier of departure delays (more than 15 minutes), gated in checks/models.yaml."""

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

import andon.models

KEYS = ["flight_id", "origin", "carrier", "tailnum", "event_timestamp"]


def no_delay(row: dict) -> int:
    """The fallback rule: most flights leave on time."""
    return 0


@andon.models.model(label="delayed", exclude=KEYS, validation=0.2, seed=13,
                    online="departure_delay", fallback=no_delay,
                    owner="analytics@example.com")
def delay_model(delay_history: pd.DataFrame) -> HistGradientBoostingClassifier:
    """Small gradient-boosted trees (missing weather is handled natively), fitted on a sample
    of the training rows to keep the example quick; andon measures it on the held-out fifth.
    Served, it looks up the features of departure_delay by origin, carrier and tailnum."""
    sample = delay_history.sample(n=min(len(delay_history), 40_000), random_state=0)
    model = HistGradientBoostingClassifier(max_iter=20, learning_rate=0.3, max_leaf_nodes=15,
                                           early_stopping=False, random_state=0)
    return model.fit(sample.drop(columns=[*KEYS, "delayed"]), sample["delayed"])
