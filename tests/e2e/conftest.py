"""The Prometheus/Alertmanager harness fixture, for every e2e module."""

from tests.e2e.harness import e2e_stacks as e2e_stacks
