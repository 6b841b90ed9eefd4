/* ---
description: The training set before its last month (what delay_model learns from).
owner: analytics@example.com
zone: features
--- */
SELECT * FROM delay_features
WHERE month < (SELECT max(month) FROM delay_features)
