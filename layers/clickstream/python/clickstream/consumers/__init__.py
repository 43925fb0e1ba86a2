"""The application drivers: each consumer applies the core's rules through ONE ports object."""
