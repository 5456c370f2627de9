"""Providers of outside APIs the program drives: each is a client plus its Pulumi dynamic providers."""
