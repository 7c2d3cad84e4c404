"""Helpers shared by the test modules, one module per concern (servers, payloads, processes, ledger...)."""
