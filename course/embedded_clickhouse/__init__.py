"""The embedded ClickHouse server: chDB behind the ClickHouse HTTP interface."""
