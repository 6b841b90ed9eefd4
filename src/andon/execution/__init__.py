"""How a run does its work, one module per job: ``cancel`` (the token that stops it),
``lease`` (the environment's lease, heartbeat and cancel requests), ``executor`` (the step
walk), ``checking`` (the check stage, shared with promotion and ``andon test``),
``recording`` (batched writes and the publish stage) and ``artifacts``. ``andon.runner``
puts them together."""
