"""Test doubles for ReasonKit (no real network, no real providers)."""
