"""One module per ``mobile-nas`` subcommand, each with ``register(subparsers)``."""
