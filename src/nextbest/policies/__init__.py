"""Contact policies and offer constraints over a store: the tenants' policy documents and the
counts they read (``documents``), the offers whose budget or stock is used up
(``constraints``). The engine applies both (``nextbest.engine.policies``)."""
