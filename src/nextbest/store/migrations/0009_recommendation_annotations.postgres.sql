-- nextbest schema, version 9 (postgres): what plugins noted about each recommended offer during the
-- decision (a JSON object by plugin: the propensity used and its source, the probability that the
-- policy picked the offer in its slot), kept with the item so off-policy evaluation can read it.
ALTER TABLE recommendation_items ADD COLUMN annotations TEXT;
