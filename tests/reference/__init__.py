"""An independent reference computation of the stream semantics, used to check the consumers."""
