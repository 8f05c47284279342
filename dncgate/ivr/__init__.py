"""Subscriber self-service IVR: the switch-neutral flow (flow.py), its driver (runner.py), adapters."""
