"""A classifier of departure delays (more than 15 minutes), gated in checks/models.yaml."""

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

import andon.models


@andon.models.model(label="delayed", exclude=["flight_id"], validation=0.2, seed=13,
                    owner="analytics@example.com")
def delay_model(delay_training: pd.DataFrame) -> HistGradientBoostingClassifier:
    """Small gradient-boosted trees (missing weather is handled natively), fitted on a sample
    of the training rows to keep the example quick; andon measures it on the held-out fifth."""
    sample = delay_training.sample(n=min(len(delay_training), 40_000), random_state=0)
    model = HistGradientBoostingClassifier(max_iter=20, learning_rate=0.3, max_leaf_nodes=15,
                                           early_stopping=False, random_state=0)
    return model.fit(sample.drop(columns=["flight_id", "delayed"]), sample["delayed"])
