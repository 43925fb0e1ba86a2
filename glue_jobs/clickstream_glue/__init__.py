"""Shared code of the Glue jobs: arguments, runtime, records, the ledger and the lake writer."""
