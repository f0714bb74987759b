"""The ``probes`` command: its subcommands, flags, listings and what a run prints at its end."""
