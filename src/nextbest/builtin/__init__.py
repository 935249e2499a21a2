"""Built-in features, registered as a plugin through the same entry point path as any other."""
