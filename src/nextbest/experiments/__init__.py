"""Decision experiments and constraints over a store: contact policies (``policies``)."""
