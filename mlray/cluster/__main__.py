"""``python -m mlray.cluster up|down|status``: the local development cluster and its MLflow server."""

from __future__ import annotations

import argparse
import os
import subprocess

from mlray.cluster.local import LocalCluster, client_env, ray_executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlray.cluster")
    parser.add_argument("action", choices=["up", "down", "status"])
    # Logical CPUs: at least 4, so that a Serve app, a job's driver and its Ray Data or
    # Train workers fit together on a 2-core laptop (Ray does not pin processes to cores).
    parser.add_argument("--num-cpus", type=int, default=max(4, os.cpu_count() or 1))
    parser.add_argument(
        "--storage-uri",
        default=None,
        help="storage.uri for every job on the cluster (default: runs/storage under this folder, made "
        "absolute); a gs:// URI also holds the MLflow server's artifacts",
    )
    args = parser.parse_args(argv)
    cluster = LocalCluster(storage_uri=args.storage_uri, num_cpus=args.num_cpus)
    ports = cluster.ports
    if args.action == "up":
        try:
            cluster.up()
        except subprocess.CalledProcessError as exc:
            print(exc.stdout)
            print("ray start failed; is a cluster already running? try: make cluster-down")
            return 1
        except (RuntimeError, TimeoutError) as exc:
            print(f"mlflow server failed: {exc}\nis a cluster already running? try: make cluster-down")
            return 1
        print(f"MLflow server: {ports.mlflow_url}   (runs/mlflow.db, artifacts {cluster.mlflow_artifacts})")
        print(f"Ray head up. Dashboard: {ports.dashboard_url}   Ray client: {ports.client_address}")
        print(f"Every job sees: {' '.join(f'{k}={v}' for k, v in cluster.job_env().items())}")
        print("Token authentication is on; clients need: export RAY_AUTH_MODE=token")
        print(
            f"  ray job submit --address {ports.dashboard_url} --working-dir . "
            "-- python -m jobs.optimize --config configs/optimize.yaml --set problem.path=jsp/ft06"
        )
        return 0
    if args.action == "down":
        left = cluster.down()
        print(f"Ray processes still running: {left}" if left else "Ray and the MLflow server stopped.")
        return 1 if left else 0
    status = subprocess.run([ray_executable(), "status", f"--address={ports.gcs_address}"], env=client_env())
    return status.returncode


if __name__ == "__main__":
    raise SystemExit(main())
