"""``python -m mlray.cluster up|down|status``: the local development cluster."""

from __future__ import annotations

import argparse
import os
import subprocess

from mlray.cluster.local import LocalClusterPorts, client_env, ray_executable, start_head, stop_head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlray.cluster")
    parser.add_argument("action", choices=["up", "down", "status"])
    # Logical CPUs: at least 4, so that a Serve app, a job's driver and its Ray Data or
    # Train workers fit together on a 2-core laptop (Ray does not pin processes to cores).
    parser.add_argument("--num-cpus", type=int, default=max(4, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    ports = LocalClusterPorts()
    if args.action == "up":
        try:
            start_head(ports, num_cpus=args.num_cpus)
        except subprocess.CalledProcessError as exc:
            print(exc.stdout)
            print("ray start failed; is a cluster already running? try: make cluster-down")
            return 1
        print(f"Ray head up. Dashboard: {ports.dashboard_url}   Ray client: {ports.client_address}")
        print("Token authentication is on; clients need: export RAY_AUTH_MODE=token")
        print(
            f"  ray job submit --address {ports.dashboard_url} --working-dir . "
            "-- python -m jobs.train --config configs/training.yaml"
        )
        return 0
    if args.action == "down":
        left = stop_head()
        print(f"Ray processes still running: {left}" if left else "Ray stopped.")
        return 1 if left else 0
    return subprocess.run([ray_executable(), "status", f"--address={ports.gcs_address}"], env=client_env()).returncode


if __name__ == "__main__":
    raise SystemExit(main())
