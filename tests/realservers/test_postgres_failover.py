"""Automated, fenced promotion on real servers: a primary and a streaming replica with the project's
settings, the lease in DynamoDB and the health check in Route 53 (moto on 127.0.0.1, through boto3
and the aws CLI as the Lambda and the guard use them). The promoter is `failover.promoter` itself;
its database action is `pg_promote`, as CloudNativePG's promotion is. The guard is `failover/guard.sh`
itself; its fence stops the old primary, as CloudNativePG's fencing does.

The failover and failback tests compress the lease to keep them short; the self-fencing test runs
with the production timings, as the question it answers is whether those timings fence in time."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.data.postgres_config import LAG_TARGET_S
from failover import cli
from failover.aws import pin_traffic_to_dr
from failover.lease import DR, PRIMARY, DynamoLeaseStore, Lease
from failover.promoter import RENEW_SECONDS, SELF_FENCE_SECONDS, Promoter, Timing
from tests.moto_server import moto_endpoint
from tests.realservers.pg_pair import (
    BIN,
    Instance,
    as_postgres,
    follow,
    kill,
    last_checkpoint,
    primary_and_replica,
    run,
    sql,
    standby_of,
    start,
    stop,
    wait_for,
)
from tests.realservers.ports import free_port
from tests.tools_on_path import require_tool
from tools.harness import PROJECT_ROOT

GUARD = PROJECT_ROOT / "failover" / "guard.sh"
TABLE = "sophia-failover"
REGION = "us-east-1"
TIMING = Timing(lease_seconds=6.0, margin_seconds=2.0)
POLL_S = 0.5
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@dataclass
class Aws:
    url: str
    health_check: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **_keys())

    def store(self) -> DynamoLeaseStore:
        return DynamoLeaseStore(self.client("dynamodb"), TABLE)

    def lease(self) -> Lease:
        lease = self.store().read()
        assert lease is not None, "no lease in the table"
        return lease

    def pinned_to_dr(self) -> bool:
        """Disabled and inverted: always unhealthy, so Route 53 answers with DR."""
        config = self.client("route53").get_health_check(HealthCheckId=self.health_check)["HealthCheck"]
        settings = config["HealthCheckConfig"]
        pinned = (settings.get("Disabled", False), settings.get("Inverted", False))
        assert pinned in ((True, True), (False, False)), f"half-pinned health check: {pinned}"
        return pinned == (True, True)


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def aws() -> Iterator[Aws]:
    with moto_endpoint() as url:
        dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name=REGION, **_keys())
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        check = boto3.client("route53", endpoint_url=url, region_name=REGION, **_keys()).create_health_check(
            CallerReference="primary",
            HealthCheckConfig={
                "Type": "HTTPS",
                "FullyQualifiedDomainName": "api-primary.sophia.ai",
                "Port": 443,
                "ResourcePath": "/healthz",
                "RequestInterval": 10,
                "FailureThreshold": 3,
            },
        )
        yield Aws(url, check["HealthCheck"]["Id"])


class Guard:
    """`failover/guard.sh`, one step at a time (ONCE=1), fencing `instance` by stopping it."""

    def __init__(self, aws: Aws, instance: Instance, state: Path, self_fence_s: float = SELF_FENCE_SECONDS) -> None:
        require_tool("aws")  # the guard's only tool besides sh
        self.env = {
            **os.environ,
            **AWS,
            "LEASE_TABLE": TABLE,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": aws.url,
            "RENEW_SECONDS": str(int(RENEW_SECONDS)),
            "SELF_FENCE_SECONDS": str(int(self_fence_s)),
            "CLUSTER_ROLE": "primary",
            "STATE_DIR": str(state),
            "ONCE": "1",
            "FENCE_COMMAND": " ".join(instance.ctl("-m", "fast", "-w", "stop")) + " || true",
            "UNFENCE_COMMAND": " ".join(instance.ctl("status"))
            + " >/dev/null || "
            + " ".join(instance.ctl("-l", str(instance.log), "-w", "start")),
        }

    def step(self) -> str:
        result = subprocess.run(["sh", str(GUARD)], env=self.env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stderr


class LocalPromotion:
    """The Lambda's two actions, here: `pg_promote` on the replica, and Route 53 (moto) pinned to DR."""

    def __init__(self, replica: Instance, aws: Aws) -> None:
        self.replica, self.aws = replica, aws
        self.promoted_at: float | None = None
        self.replayed_lsn: int | None = None

    def promote_database(self) -> None:
        if sql(self.replica, "SELECT pg_is_in_recovery()") == "t":
            # The replica's last replayed position: what it holds of the old primary's history.
            self.replayed_lsn = lsn(sql(self.replica, "SELECT pg_last_wal_replay_lsn()"))
            assert sql(self.replica, "SELECT pg_promote(wait => true)") == "t"
            # What CloudNativePG does for a primary left without standbys (dataDurability: preferred).
            sql(self.replica, "ALTER SYSTEM SET synchronous_standby_names = ''")
            sql(self.replica, "SELECT pg_reload_conf()")
            self.promoted_at = time.time()

    def pin_traffic_to_dr(self) -> None:
        pin_traffic_to_dr(self.aws.client("route53"), self.aws.health_check)


def lsn(text: str) -> int:
    """A pg_lsn ('16/B374D848') as a number, to compare positions."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def writes_refused(instance: Instance) -> bool:
    """A write is refused: the server is fenced (stopped). `txid_current()` needs a writable primary
    and writes nothing the ledgers would see."""
    probe = "SET statement_timeout = '10s'; SELECT txid_current()"
    command = [str(BIN / "psql"), "-h", str(instance.socket_dir), "-p", str(instance.port), "-d", "postgres"]
    result = subprocess.run(as_postgres(*command, "-c", probe), capture_output=True, check=False, timeout=60)
    return result.returncode != 0


def test_a_dead_primary_is_replaced_by_dr_within_the_window_and_fenced_when_it_returns(
    aws: Aws, tmp_path: Path
) -> None:
    # The DR replica streams asynchronously, as in production: what survives is what it replayed.
    with primary_and_replica(synchronous_replica=False) as (primary, replica, _root):
        guard = Guard(aws, primary, tmp_path / "guard")
        guard.step()  # the first lease: the primary's, epoch 1
        assert aws.store().read() is not None
        sql(primary, "CREATE TABLE ledger (id bigint PRIMARY KEY)")
        wait_for(lambda: sql(primary, "SELECT sync_state FROM pg_stat_replication") == "async", 30, "the DR standby")

        # Load, and a ledger of acknowledged commits with the WAL position each had reached.
        acknowledged: dict[int, int] = {}
        lags: list[float] = []
        stop_writing = threading.Event()

        def write() -> None:
            """One client session per commit: an id is acknowledged when psql prints it back; the
            WAL insert position read after the commit is at or past the commit's record."""
            conn = ["-h", str(primary.socket_dir), "-p", str(primary.port), "-d", "postgres", "-Atq"]
            number = 0
            while not stop_writing.is_set():
                number += 1
                insert = f"INSERT INTO ledger VALUES ({number}) RETURNING id"
                position = "SELECT pg_current_wal_insert_lsn()"
                command = as_postgres(str(BIN / "psql"), *conn, "-v", "ON_ERROR_STOP=1", "-c", insert, "-c", position)
                result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
                lines = result.stdout.split()
                if result.returncode != 0 or len(lines) != 2:
                    break  # the primary is gone before both answers: not counted
                acknowledged[int(lines[0])] = lsn(lines[1])

        def sample_lag() -> None:
            while not stop_writing.is_set():
                try:
                    value = sql(primary, "SELECT COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication")
                except BaseException:  # noqa: BLE001 - the primary is killed under us
                    return
                if value:
                    lags.append(float(value))
                time.sleep(0.25)

        writer, sampler = threading.Thread(target=write), threading.Thread(target=sample_lag)
        writer.start()
        sampler.start()
        bench = subprocess.Popen(
            as_postgres(
                str(BIN / "pgbench"),
                "-h",
                str(primary.socket_dir),
                "-p",
                str(primary.port),
                "-i",
                "-s",
                "3",
                "postgres",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bench.wait(120)
        run(
            str(BIN / "pgbench"),
            "-h",
            str(primary.socket_dir),
            "-p",
            str(primary.port),
            "-c",
            "4",
            "-j",
            "2",
            "-T",
            "8",
            "postgres",
        )
        assert len(acknowledged) > 20
        worst_lag = max(lags)
        assert worst_lag < LAG_TARGET_S

        # The primary dies mid-write; from now on its health check fails and nobody renews its lease.
        guard.step()  # the primary's last renewal
        last_renewal = aws.store().read()
        assert last_renewal is not None
        assert last_renewal.holder == PRIMARY
        killed_at = time.time()
        kill(primary)
        stop_writing.set()
        writer.join(30)
        sampler.join(30)
        promotion = LocalPromotion(replica, aws)
        promoter = Promoter(aws.store(), lambda: False, promotion, timing=TIMING)
        outcome = promoter.run(60, poll_seconds=POLL_S)
        assert outcome.promoted, outcome.reason
        assert promotion.promoted_at is not None
        # Never before the lease and its margin ran out (the guard fences at SELF_FENCE_SECONDS, earlier).
        earliest = last_renewal.renewed_at + TIMING.lease_seconds + TIMING.margin_seconds
        assert promotion.promoted_at >= earliest
        print(
            f"\nfailover: replay lag max {worst_lag:.3f}s; promoted {promotion.promoted_at - killed_at:.1f}s "
            f"after the kill, {promotion.promoted_at - earliest:.1f}s after the lease and margin ran out"
        )
        assert aws.lease().holder == DR
        assert aws.pinned_to_dr()  # Route 53 stays on DR when the primary comes back

        # Every commit at or before the replica's last replayed position is on the new primary.
        assert promotion.replayed_lsn is not None
        replayed = {i for i, position in acknowledged.items() if position <= promotion.replayed_lsn}
        ids = {int(x) for x in sql(replica, "SELECT id FROM ledger").split()}
        assert replayed <= ids
        assert int(sql(replica, f"SELECT count(*) FROM ledger WHERE id IN ({','.join(map(str, replayed))})")) == len(
            replayed
        )
        lost = set(acknowledged) - ids
        print(f"ledger: {len(acknowledged)} acknowledged, {len(replayed)} replayed and kept, {len(lost)} lost (lag)")
        sql(replica, "INSERT INTO ledger VALUES (0)")  # and it takes writes

        # The old primary comes back (a writable primary as far as it knows); its guard fences it.
        start(primary)
        assert "DR was promoted" in guard.step()
        assert writes_refused(primary)
        # A second promoter (another Lambda run) finds DR holding the lease and changes nothing.
        again = Promoter(aws.store(), lambda: False, promotion, timing=TIMING).step()
        assert again.promoted
        assert aws.lease().epoch == 2


def test_the_primary_fences_itself_before_dr_may_take_over(aws: Aws, tmp_path: Path) -> None:
    """With the production timings: cut off from the lease store, the guard fences its primary before
    the lease and its margin run out, i.e. before any promoter may take over."""
    with primary_and_replica() as (primary, replica, _root):
        guard = Guard(aws, primary, tmp_path / "guard")
        guard.step()
        guard.step()
        lease = aws.store().read()
        assert lease is not None
        assert lease.holder == PRIMARY
        guard.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # the lease store is out of reach
        promoter = Promoter(aws.store(), lambda: False, LocalPromotion(replica, aws), timing=Timing())
        assert not promoter.step().promoted  # unhealthy, but the lease still runs: DR waits
        wait_for(lambda: "fenced" in guard.step(), 60, "the guard to fence the primary")
        fenced_at = time.time()
        assert writes_refused(primary)
        dr_may_take_over_at = lease.renewed_at + Timing().lease_seconds + Timing().margin_seconds
        print(f"\nself-fence: fenced {dr_may_take_over_at - fenced_at:.1f}s before DR may take over")
        assert fenced_at < dr_may_take_over_at
        assert not promoter.step().promoted  # and DR still waits
        # Back in reach while the lease is still the primary's: the guard renews and unfences.
        guard.env["AWS_ENDPOINT_URL"] = aws.url
        guard.step()
        wait_for(lambda: not writes_refused(primary), 30, "the primary to take writes again")
        assert aws.lease().holder == PRIMARY


def test_failback_is_a_controlled_switchover(aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runbook's failback, step by step: the old primary rebuilt as a standby of DR (its guard in
    replica mode: it renews, never fences), DR demoted by a clean shutdown (CloudNativePG's demotion:
    its last checkpoint is the promotion token's position), the lease given back while the guard
    keeps it fresh, the primary promoted once it replayed that position, and DR following the new
    primary without a new copy."""
    with primary_and_replica(synchronous_replica=False) as (primary, replica, _root):
        guard = Guard(aws, primary, tmp_path / "guard")
        guard.step()
        sql(primary, "CREATE TABLE ledger (id bigint PRIMARY KEY)")
        sql(primary, "INSERT INTO ledger SELECT generate_series(1, 1000)")
        wait_for(lambda: sql(replica, "SELECT count(*) FROM ledger") == "1000", 30, "replication")
        kill(primary)
        promoter = Promoter(aws.store(), lambda: False, LocalPromotion(replica, aws), timing=TIMING)
        assert promoter.run(60, poll_seconds=POLL_S).promoted
        sql(replica, "INSERT INTO ledger SELECT generate_series(1001, 1500)")  # writes in DR

        # 1. The old primary is rebuilt from DR (it may hold commits DR never received) and follows it.
        #    Its guard runs in replica mode: DR holds the lease, yet it must not stop the replay.
        stop(primary)
        run("rm", "-rf", str(primary.data))
        standby_of(replica, primary, "primary")
        guard.env["CLUSTER_ROLE"] = "replica"
        assert "not fencing" in guard.step()
        wait_for(lambda: sql(primary, "SELECT count(*) FROM ledger") == "1500", 30, "the rebuilt primary to catch up")

        # 2. DR is demoted: a clean shutdown writes its last checkpoint, the position the primary
        #    must replay before it may be promoted (CloudNativePG's demotion token carries it).
        subprocess.run(replica.ctl("-m", "fast", "-w", "stop"), capture_output=True, check=True)
        token = lsn(last_checkpoint(replica))
        wait_for(lambda: lsn(sql(primary, "SELECT pg_last_wal_replay_lsn()")) >= token, 30, "the token's position")

        # 3. The lease goes back to the primary; its guard renews it at once, so the promoter, which
        #    still sees the primary's health check failing, finds a running lease and does nothing.
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
        for key, value in AWS.items():
            monkeypatch.setenv(key, value)
        assert cli.main(["failback", "--table", TABLE, "--region", REGION, "--health-check", aws.health_check]) == 2
        code = cli.main(
            ["failback", "--table", TABLE, "--region", REGION, "--health-check", aws.health_check, "--confirm"]
        )
        assert code == 0
        assert aws.lease().holder == PRIMARY
        assert not aws.pinned_to_dr()
        guard.step()
        assert not promoter.step().promoted

        # 4. The primary is promoted, and its guard goes back to enforcing: it holds the lease, no fence.
        assert sql(primary, "SELECT pg_promote(wait => true)") == "t"
        guard.env["CLUSTER_ROLE"] = "primary"
        guard.step()
        assert not writes_refused(primary)
        sql(primary, "INSERT INTO ledger SELECT generate_series(1501, 1600)")

        # 5. DR follows the new primary with no new copy: its history is the primary's up to the token.
        follow(primary, replica, "dr")
        wait_for(lambda: sql(replica, "SELECT count(*) FROM ledger") == "1600", 60, "DR to follow the new primary")
        assert sql(replica, "SELECT pg_is_in_recovery()") == "t"
        assert sql(primary, "SELECT count(*) FROM ledger") == "1600"  # every write of both regions
