"""nextbest-adaptive: propensities learned from recorded outcomes (Beta-Bernoulli posteriors per
offer, channel and an optional context predictor), Thompson sampling, what each recommendation
used logged with it, and off-policy evaluation of another flow on those logs.

Layers, from the bottom: ``core`` (pure numpy/scipy: posteriors, draws, pick probabilities,
estimators) ◄─ ``service`` (counts in plugin documents, the decision-time model, logs) ◄─ the
edges (``plugin``, ``cli``). See docs/learning.md.
"""
