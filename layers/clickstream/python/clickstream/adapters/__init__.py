"""Adapters: the Lambda Kinesis event in (``kinesis_event``), AWS services behind the ports."""
