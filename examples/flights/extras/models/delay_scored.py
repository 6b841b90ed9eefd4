"""The last month's flights scored in batch by the published delay_model."""

import pyarrow as pa

import andon.models


@andon.models.scoring(owner="analytics@example.com")
def delay_scored(delay_model: andon.models.LoadedModel, delay_latest_month: pa.Table
                 ) -> pa.Table:
    """Each flight of the month with the predicted delay, its probability and the model
    version that scored it."""
    return delay_model.score(delay_latest_month)
