"""A minimal third-party nextbest plugin: the ``attribute_between`` rule type and the
``percent_of(a, b)`` formula function. The hook implementations live in :mod:`.plugin`."""

__version__ = "0.1.0"
