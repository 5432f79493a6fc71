"""The course runtime: settings, stack control, embedded servers and the `course` CLI."""
