"""The promoter's Lambda entry point, end to end on 127.0.0.1: the lease in DynamoDB (moto), the
primary's Route 53 health as GetHealthCheckStatus reports it, and the EKS API as an HTTPS server
that checks what CloudNativePG would receive: a merge patch naming DR the primary, sent with an
EKS bearer token over TLS verified against the cluster's CA."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.dr import postgres_replica
from failover import handler
from failover.lease import DR, PRIMARY, DynamoLeaseStore, Lease
from tests.moto_server import moto_endpoint
from tests.realservers.certs import make_certs
from tests.realservers.ports import free_port

TABLE, REGION, CHECK = "sophia-postgres-lease", "us-east-1", "0f8c3a7e-primary"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class KubeApi:
    url: str
    ca_pem: bytes
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApi]:
    certs = make_certs(tmp_path)
    api = KubeApi("", certs.ca.read_bytes())

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            api.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with moto_endpoint() as url:
        client = boto3.client("dynamodb", endpoint_url=url, region_name=REGION, **KEYS)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


class Route53:
    """GetHealthCheckStatus as Route 53 answers it: one latest observation per checker region."""

    def __init__(self, healthy_checkers: int, checkers: int = 8) -> None:
        self.healthy_checkers, self.checkers = healthy_checkers, checkers
        self.updates: list[dict[str, Any]] = []

    def get_health_check_status(self, HealthCheckId: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        assert HealthCheckId == CHECK
        status = ["Success: HTTP Status Code 200, OK"] * self.healthy_checkers
        status += ["Failure: Connection timed out."] * (self.checkers - self.healthy_checkers)
        return {"HealthCheckObservations": [{"Region": "us-east-1", "StatusReport": {"Status": s}} for s in status]}

    def update_health_check(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        return {}


class Eks:
    def __init__(self, api: KubeApi) -> None:
        self.api = api

    def describe_cluster(self, name: str) -> dict[str, Any]:
        ca = base64.b64encode(self.api.ca_pem).decode()
        return {"cluster": {"endpoint": self.api.url, "certificateAuthority": {"data": ca}}}


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LEASE_TABLE": TABLE,
        "PRIMARY_HEALTH_CHECK_ID": CHECK,
        "EKS_CLUSTER": "sophia-dr-eks-eks",
        "CNPG_NAMESPACE": "sophia-data",
        "CNPG_CLUSTER": "postgres",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(handler, "RUN_SECONDS", 0.0)  # one step per invocation


def wire(monkeypatch: pytest.MonkeyPatch, dynamodb: Any, route53: Route53, api: KubeApi) -> None:
    sts = boto3.client("sts", region_name=REGION, **KEYS)  # presigning is local: no request is sent
    clients = {"dynamodb": dynamodb, "route53": route53, "eks": Eks(api), "sts": sts}
    monkeypatch.setattr(boto3, "client", lambda service, **_: clients[service])


def put_lease(dynamodb: Any, lease: Lease) -> None:
    DynamoLeaseStore(dynamodb, TABLE)._put(lease, "attribute_not_exists(id)", {})


@pytest.mark.usefixtures("lambda_env")
def test_a_dead_primary_with_an_expired_lease_is_replaced(
    monkeypatch: pytest.MonkeyPatch, dynamodb: Any, kube_api: KubeApi
) -> None:
    put_lease(dynamodb, Lease(PRIMARY, 1, time.time() - 60))
    route53 = Route53(healthy_checkers=1)  # 1 of 8 is under Route 53's 18 %: unhealthy
    wire(monkeypatch, dynamodb, route53, kube_api)

    assert handler.handler({}, None)["promoted"] is True

    (request,) = kube_api.requests
    assert request["path"] == "/apis/postgresql.cnpg.io/v1/namespaces/sophia-data/clusters/postgres"
    assert request["headers"]["Content-Type"] == "application/merge-patch+json"
    # DR becomes the distributed topology's primary, by the name the dr stack gives it.
    assert request["body"] == {"spec": {"replica": {"primary": postgres_replica.SELF}}}
    token = request["headers"]["Authorization"].removeprefix("Bearer k8s-aws-v1.")
    presigned = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    query = urllib.parse.parse_qs(urllib.parse.urlparse(presigned).query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]  # the token names its cluster
    assert route53.updates == [{"HealthCheckId": CHECK, "Disabled": True, "Inverted": True}]
    lease = DynamoLeaseStore(dynamodb, TABLE).read()
    assert lease is not None
    assert (lease.holder, lease.epoch) == (DR, 2)


@pytest.mark.usefixtures("lambda_env")
@pytest.mark.parametrize(
    ("healthy_checkers", "renewed_ago", "why"),
    [
        (8, 60.0, "the primary's health check passes"),
        (2, 60.0, "the primary's health check passes"),  # 2 of 8 is above 18 %: healthy
        (0, 10.0, "lease runs"),
    ],
)
def test_no_promotion_while_the_primary_is_healthy_or_its_lease_runs(
    *,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb: Any,
    kube_api: KubeApi,
    healthy_checkers: int,
    renewed_ago: float,
    why: str,
) -> None:
    put_lease(dynamodb, Lease(PRIMARY, 1, time.time() - renewed_ago))
    route53 = Route53(healthy_checkers)
    wire(monkeypatch, dynamodb, route53, kube_api)

    result = handler.handler({}, None)

    assert result["promoted"] is False
    assert why in result["reason"]
    assert kube_api.requests == []
    assert route53.updates == []
    lease = DynamoLeaseStore(dynamodb, TABLE).read()
    assert lease is not None
    assert (lease.holder, lease.epoch) == (PRIMARY, 1)  # untouched


@pytest.mark.usefixtures("lambda_env")
def test_without_a_lease_nothing_is_promoted(monkeypatch: pytest.MonkeyPatch, dynamodb: Any, kube_api: KubeApi) -> None:
    """No guard has ever run on the primary: it could not be fenced, so DR never takes over by itself."""
    wire(monkeypatch, dynamodb, Route53(healthy_checkers=0), kube_api)
    result = handler.handler({}, None)
    assert result["promoted"] is False
    assert kube_api.requests == []
