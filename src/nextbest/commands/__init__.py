"""The `nextbest` command line beyond the root group in ``nextbest.cli``: the server and
management commands (``server``) and the store commands (``store``)."""
