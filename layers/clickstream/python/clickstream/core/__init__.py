"""The domain's pure rules: the standard library only, and only ``clickstream.core`` imports.

Events, windows, sessions and checkpoints (the stream semantics), the inbound record and its
rejection, the window counter's and the sessionizer's rules, retrying, search documents.
"""
