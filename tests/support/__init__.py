"""Test support shared by the suites: in-memory fakes of the domain's ports."""
