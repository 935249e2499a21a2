"""The numeric core of nextbest-clv: arrays in, arrays out, no I/O.

- :mod:`~nextbest_clv.core.rfm` (with :mod:`~nextbest_clv.core.rfm_settings`): the spec's RFM
  record, batch and single-customer scoring against a distribution snapshot;
- :mod:`~nextbest_clv.core.models`: the buy-till-you-die models (summary, BG/NBD, Pareto/NBD,
  Gamma-Gamma, sBG, discounted CLV, the MLE driver) and the CDNOW loader;
- :mod:`~nextbest_clv.core.estimators`: tenant-level fits with their checks and spend model;
- :mod:`~nextbest_clv.core.probabilistic`: the per-customer fields of a probabilistic record;
- :mod:`~nextbest_clv.core.subscriptions`: subscriptions as arrays, sBG records from them;
- :mod:`~nextbest_clv.core.errors`: the errors the core raises beyond the models' own.

The core imports nothing of the host (``nextbest``) and nothing of the plugin outside
``nextbest_clv.core`` (tests/test_layers.py checks it); this package imports no submodule.
"""
