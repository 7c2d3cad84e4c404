"""Configuration: settings from the environment, the engine they describe, the README settings table."""
