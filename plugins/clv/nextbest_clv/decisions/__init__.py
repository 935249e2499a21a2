"""What decision flows see of CLV, registered by :mod:`nextbest_clv.plugin`:

- :mod:`~nextbest_clv.decisions.context`: the context provider (``customer.clv_score``,
  ``customer.clv.*``);
- :mod:`~nextbest_clv.decisions.rules`: the ``propensity_threshold`` rule type;
- :mod:`~nextbest_clv.decisions.functions`: the formula functions;
- :mod:`~nextbest_clv.decisions.value`: the ``clv`` PRIE value provider (``clvWeight``).
"""
