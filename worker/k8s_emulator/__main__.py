"""`python -m worker.k8s_emulator [--port 6443] [--demo]`: run the emulator by hand."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

from worker.k8s_emulator.server import K8sEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.k8s_emulator",
        description="Serve the fireline Kubernetes API emulator on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--demo", action="store_true", help="seed the demo sandbox state")
    parser.add_argument("--namespace", default="shop", help="namespace of the demo objects")
    parser.add_argument("--rollout-delay", type=float, default=0.2, help="seconds to pod Ready")
    parser.add_argument(
        "--bad-image", action="append", default=[], help="image whose pods crash-loop"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for the emulator here")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start, optionally seed, announce, and serve until interrupted."""
    emulator = K8sEmulator(
        rollout_delay=args.rollout_delay, bad_images=args.bad_image, seed=args.seed
    )
    await emulator.start(args.host, args.port)
    if args.demo:
        emulator.seed_demo(args.namespace)
    if args.kubeconfig is not None:
        args.kubeconfig.write_text(json.dumps(emulator.kubeconfig(args.namespace), indent=2))
    print(f"Kubernetes API emulator serving on {emulator.url}", flush=True)
    await emulator.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
