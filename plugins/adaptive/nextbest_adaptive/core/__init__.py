"""The numeric core: arrays in, arrays out; numpy, scipy and pydantic only, no I/O."""
