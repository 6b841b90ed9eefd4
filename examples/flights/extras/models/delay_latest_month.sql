/* ---
description: >
  The last month of the training set: the flights delay_scored scores in batch, later
  than anything delay_model learnt from (summer weather after a winter and spring).
owner: analytics@example.com
zone: features
--- */
SELECT * FROM delay_features
WHERE month = (SELECT max(month) FROM delay_features)
