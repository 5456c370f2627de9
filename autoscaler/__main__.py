"""Start the node-group service: `python -m autoscaler --pools-file pools.json [--address :8086] ...`.

The Lambda API key comes from `LAMBDA_API_KEY` (or `--api-key-file`), the URL from `--api-url` or
`LAMBDA_API_URL`; the pools from `--pools-file`, `AUTOSCALER_POOLS_FILE` or `AUTOSCALER_POOLS` (the JSON
the Pulumi program renders from `sophia:gpuPools`); the cluster join token from `CLUSTER_JOIN_TOKEN`
(or `--join-token-file`). TLS: `--tls-key`, `--tls-cert` and `--tls-ca` (clients must present a
certificate signed by that CA, as in upstream's example); `--insecure` serves plain gRPC, on loopback only.
In a pod, the service deletes the Nodes of its terminated instances through the Kubernetes API with its
service account (`KUBERNETES_SERVICE_HOST` and the mounted token); elsewhere it says it will not.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from autoscaler.config import ConfigError, ServiceConfig
from autoscaler.groups import NodeGroups
from autoscaler.kube import KubeApi
from autoscaler.server import TlsFiles, running
from providers.lambda_cloud.endpoint import ENV_API_KEY, ENV_API_URL, LambdaConfigError, resolve_endpoint

ENV_POOLS = "AUTOSCALER_POOLS"
ENV_POOLS_FILE = "AUTOSCALER_POOLS_FILE"
ENV_JOIN_TOKEN = "CLUSTER_JOIN_TOKEN"  # noqa: S105 - the variable's name, not its value
LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m autoscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="0.0.0.0:8086", help="host:port to serve on (default 0.0.0.0:8086)")
    parser.add_argument("--api-url", default=os.environ.get(ENV_API_URL), help=f"Lambda API base URL (${ENV_API_URL})")
    parser.add_argument("--api-key-file", type=Path, help=f"file holding the Lambda API key (else ${ENV_API_KEY})")
    parser.add_argument("--pools-file", type=Path, default=os.environ.get(ENV_POOLS_FILE), help="pools JSON")
    parser.add_argument(
        "--join-token-file", type=Path, help=f"file holding the k3s join token (else ${ENV_JOIN_TOKEN})"
    )
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-ca", type=Path, help="CA that signs the clients' certificates")
    parser.add_argument("--insecure", action="store_true", help="plain gRPC; allowed on a loopback address only")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> ServiceConfig:
    if args.pools_file is not None:
        return ServiceConfig.from_json(Path(args.pools_file).read_text(encoding="utf-8"))
    if os.environ.get(ENV_POOLS):
        return ServiceConfig.from_json(os.environ[ENV_POOLS])
    raise ConfigError(f"no pools: pass --pools-file, or set {ENV_POOLS_FILE} or {ENV_POOLS}")


def tls_files(args: argparse.Namespace) -> TlsFiles | None:
    given = [args.tls_key, args.tls_cert, args.tls_ca]
    if all(p is None for p in given):
        if not args.insecure or not args.address.startswith(LOOPBACK):
            raise ConfigError(
                "TLS is required (--tls-key, --tls-cert, --tls-ca); --insecure only on a loopback address"
            )
        return None
    if any(p is None for p in given):
        raise ConfigError("--tls-key, --tls-cert and --tls-ca go together")
    return TlsFiles(args.tls_key.read_bytes(), args.tls_cert.read_bytes(), args.tls_ca.read_bytes())


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        config = load_config(args)
        tls = tls_files(args)
        key = args.api_key_file.read_text(encoding="utf-8").strip() if args.api_key_file else None
        endpoint = resolve_endpoint(key, args.api_url)
    except (ConfigError, LambdaConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    token = (
        args.join_token_file.read_text(encoding="utf-8").strip()
        if args.join_token_file
        else os.environ.get(ENV_JOIN_TOKEN)
    )
    client = endpoint.client()
    kube = KubeApi.in_cluster()
    log = logging.getLogger("sophia.autoscaler")
    if kube is None:
        log.warning("not in a cluster (no service account token): Nodes of terminated instances are left in place")
    groups = NodeGroups(config, client, endpoint.watcher(client), join_token=token, kube=kube)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with running(groups, args.address, tls) as port:
        log.info("serving %d node groups on port %d (%s)", len(config.pools), port, "mTLS" if tls else "insecure")
        print(f"listening on port {port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
