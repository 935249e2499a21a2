"""Node executors, one module per node type; :mod:`nextbest.engine.node_types` lists them."""
