"""Back-testing a transaction model: fit on a calibration period, predict the holdout, compare.

- :mod:`~nextbest_clv.backtest.evaluate`: the evaluation, pure (a transaction log in, a
  report out; imports only the numeric core);
- :mod:`~nextbest_clv.backtest.plot`: the report as a picture (matplotlib, an optional extra,
  imported only by this module, and only when a plot is asked for);
- :mod:`~nextbest_clv.backtest.runs`: a tenant's back-tests read from the store, stored with
  their time, listed, and the model comparison (uses the service layer).

This package imports no submodule, so the pure evaluation loads neither the service nor
matplotlib.
"""
