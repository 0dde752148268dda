"""Knobs that shape how the emulated cluster behaves."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Settings:
    """Cluster behaviour shared by the controllers and the kubelet.

    Attributes:
        rollout_delay: seconds from a pod's scheduling until its containers run and are
            ready; 0 makes rollouts complete inside the request that triggered them.
        crash_interval: first back-off of a crash-looping container; later ones double,
            up to 30 times this (the kubelet's 10 s to 300 s).
        bad_images: images whose containers crash on start (the "bad deploy" lever).
        tick: seconds between background reconcile passes.
    """

    rollout_delay: float = 0.2
    crash_interval: float = 0.5
    bad_images: set[str] = field(default_factory=set)
    tick: float = 0.05
