"""Operator read models: answers assembled from several tables for the CLI and the console; they own no table."""
