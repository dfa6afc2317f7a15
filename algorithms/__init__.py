"""Processing algorithms: thin wrappers that read parameters, call `core`, return layers."""
