"""`redis_start.sh` on nodes.conf files as Redis 7.4 writes them, and its bounded wait for peers.

The script runs as the pod runs it (`sh`), with stand-ins first on PATH: `getent` answers from a
table (what the cluster DNS says, and from which second on), `redis-server` records its arguments
and the second it was started, and `date +%s` / `sleep` read and advance a clock of the test's
own. Waits are therefore counted in the script's own seconds, exactly, however fast the machine
runs; one test keeps the real clock and bounds only from below (a wall-clock limit is a failure
timeout, never an assertion).

The nodes.conf lines follow `clusterGenNodeDescription` in redis/redis 7.4.1
src/cluster_legacy.c: `<id> <ip>:<port>@<cport>,<hostname>,<aux>=<value>...`, the hostname
field left empty (`,,`) when the node announces none, aux fields (`shard-id`, `nodename`,
`tcp-port`/`tls-port`) after it; the real-server tests cover 7.0's shorter form.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from components.data.redis_cluster import RESOLVE_SECONDS, START_SCRIPT

SHARD = "4bc2f9e2e5d1d8a0a4b54d3c8c2a1e9f0b7c6d5e"
REDIS_1 = "redis-1.redis-headless.sophia-data.svc"
REDIS_2 = "redis-2.redis-headless.sophia-data.svc"
NODES_74 = (
    "8f4e1c0b2a3d4e5f60718293a4b5c6d7e8f90a1b 10.0.0.5:6379@16379,redis-0.redis-headless.sophia-data.svc,"
    f"tls-port=6379,shard-id={SHARD} myself,master - 0 0 1 connected 0-5460\n"
    f"1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d 10.0.0.6:6379@16379,{REDIS_1},"
    f"nodename=redis-1,tls-port=6379,shard-id={SHARD} master - 1718000000000 1718000000000 2 connected 5461-10922\n"
    f"2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e 10.0.0.7:6379@16379,{REDIS_2},"
    f"tls-port=6379,shard-id={SHARD} slave 8f4e1c0b2a3d4e5f60718293a4b5c6d7e8f90a1b 0 1718000000000 1 connected\n"
    f"3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f 10.0.0.8:6379@16379,,tls-port=6379,shard-id={SHARD} "
    "master,fail - 1718000000000 1718000000000 3 connected 10923-16383\n"
    "vars currentEpoch 3 lastVoteEpoch 0\n"
)
EPOCH = 1_700_000_000
"""The stand-in clock's second when the script starts."""
REDIS_ARGUMENTS = [
    "/etc/redis/redis.conf",
    "--cluster-announce-ip",
    "10.1.0.5",
    "--cluster-announce-hostname",
    "redis-0.redis-headless.sophia-data.svc",
    "--cluster-preferred-endpoint-type",
    "hostname",
]
FAILURE_TIMEOUT = 120
"""Seconds of wall clock after which a run counts as hung (a failure, not a measure)."""


@dataclass
class Run:
    nodes: list[str]
    """nodes.conf after the script, line by line."""
    arguments: list[str]
    """What redis-server was started with."""
    started_after: int | None
    """Seconds of the stand-in clock from the script's start to redis-server's (None: the real clock ran)."""
    lookups: list[tuple[int, str]]
    """Every `getent` call: (second of the stand-in clock since the start, name)."""
    stderr: str
    wall_seconds: float


def stand_ins(tmp_path: Path, answers: dict[str, tuple[str, int]], *, clock: bool) -> str:
    """A PATH whose `getent` answers name -> (address, from this second of the clock on), whose
    `redis-server` records how it was started, and (with `clock`) whose `date +%s` and `sleep`
    read and advance a clock file instead of waiting."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "dns"
    table.write_text("".join(f"{name} {ip} {EPOCH + since}\n" for name, (ip, since) in answers.items()))
    now = tmp_path / "clock"
    now.write_text(f"{EPOCH}\n")
    # Without the stand-in clock every name answers at once: only "never" (absent) is meaningful.
    read_now = f"$(cat {now})" if clock else str(EPOCH)
    scripts = {
        "getent": f"""#!/bin/sh
[ "$1" = ahostsv4 ] && [ $# -eq 2 ] || exit 2
t={read_now}
echo "$((t - {EPOCH})) $2" >> {tmp_path / "lookups"}
awk -v n="$2" -v t="$t" '$1 == n && $3 <= t {{ print $2 "       STREAM " n; f = 1 }} END {{ exit !f }}' {table}
""",
        "redis-server": f"""#!/bin/sh
printf '%s\\n' "$@" > {tmp_path / "arguments"}
echo {read_now} > {tmp_path / "started"}
""",
    }
    if clock:
        scripts["date"] = f'#!/bin/sh\n[ "$*" = +%s ] || exit 2\ncat {now}\n'
        scripts["sleep"] = (
            f'#!/bin/sh\ncase "$1" in *[!0-9]* | "") exit 2 ;; esac\necho $(($(cat {now}) + $1)) > {now}\n'
        )
    for tool, text in scripts.items():
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def run_start(
    tmp_path: Path,
    nodes: str | None,
    answers: dict[str, tuple[str, int]],
    resolve_seconds: int | None,
    *,
    clock: bool = True,
) -> Run:
    """Run the start-up script as the pod does; `resolve_seconds` None leaves the script's default."""
    data = tmp_path / "data"
    data.mkdir()
    if nodes is not None:
        (data / "nodes.conf").write_text(nodes)
    env = {
        "PATH": stand_ins(tmp_path, answers, clock=clock),
        "POD_IP": "10.1.0.5",
        "ANNOUNCE_HOSTNAME": "redis-0.redis-headless.sophia-data.svc",
        "REDIS_CONF": "/etc/redis/redis.conf",
        "DATA_DIR": str(data),
    }
    if resolve_seconds is not None:
        env["RESOLVE_SECONDS"] = str(resolve_seconds)
    began = time.monotonic()
    done = subprocess.run(
        ["sh", str(START_SCRIPT)], env=env, check=True, timeout=FAILURE_TIMEOUT, capture_output=True, text=True
    )
    wall = time.monotonic() - began
    lookups = []
    if (tmp_path / "lookups").exists():
        for line in (tmp_path / "lookups").read_text().splitlines():
            second, name = line.split()
            lookups.append((int(second), name))
    return Run(
        nodes=(data / "nodes.conf").read_text().splitlines() if (data / "nodes.conf").exists() else [],
        arguments=(tmp_path / "arguments").read_text().split(),
        started_after=int((tmp_path / "started").read_text()) - EPOCH if clock else None,
        lookups=lookups,
        stderr=done.stderr,
        wall_seconds=wall,
    )


def address(line: str) -> str:
    """The `<ip>` of a nodes.conf line."""
    return line.split()[1].split(":", maxsplit=1)[0]


def test_addresses_are_rewritten_and_the_74_aux_fields_kept(tmp_path: Path) -> None:
    run = run_start(tmp_path, NODES_74, {REDIS_1: ("10.1.0.6", 0), REDIS_2: ("10.1.0.7", 0)}, resolve_seconds=5)
    before = NODES_74.splitlines()
    # This node takes its pod's address; each peer what its name resolves to; everything else stays.
    assert run.nodes == [
        before[0].replace("10.0.0.5:", "10.1.0.5:"),
        before[1].replace("10.0.0.6:", "10.1.0.6:"),
        before[2].replace("10.0.0.7:", "10.1.0.7:"),
        before[3],  # no hostname: nothing to resolve, the address it had
        before[4],
    ]
    assert all(f"shard-id={SHARD}" in line for line in run.nodes[:4])
    assert run.arguments == REDIS_ARGUMENTS
    # Every name answered: redis-server starts at once, each peer looked up once, never this node.
    assert run.started_after == 0
    assert sorted(run.lookups) == [(0, REDIS_1), (0, REDIS_2)]
    assert run.stderr == ""


def test_a_peer_that_never_resolves_holds_the_start_for_the_bounded_wait_only(tmp_path: Path) -> None:
    """redis-2 is gone for good: the script looks for it every second, then starts redis-server
    RESOLVE_SECONDS after it began (the script's default, the one the pods are given), with
    redis-1's new address and redis-2's old one."""
    run = run_start(tmp_path, NODES_74, {REDIS_1: ("10.1.0.6", 0)}, resolve_seconds=None)
    assert run.started_after == RESOLVE_SECONDS
    assert [second for second, name in run.lookups if name == REDIS_2] == list(range(RESOLVE_SECONDS + 1))
    assert address(run.nodes[1]) == "10.1.0.6"
    assert address(run.nodes[2]) == "10.0.0.7"  # kept; the cluster learns the new one later
    assert run.nodes[2].split()[1:] == NODES_74.splitlines()[2].split()[1:]
    assert run.arguments == REDIS_ARGUMENTS
    assert "1 peer names did not resolve" in run.stderr


def test_the_wait_is_what_the_pod_is_given(tmp_path: Path) -> None:
    run = run_start(tmp_path, NODES_74, {REDIS_1: ("10.1.0.6", 0)}, resolve_seconds=4)
    assert run.started_after == 4
    assert address(run.nodes[2]) == "10.0.0.7"


def test_a_peer_that_comes_back_during_the_wait_ends_it_with_its_new_address(tmp_path: Path) -> None:
    """Pods of a full restart come up in parallel: redis-2's name resolves 6 s after this pod's start."""
    run = run_start(tmp_path, NODES_74, {REDIS_1: ("10.1.0.6", 0), REDIS_2: ("10.1.0.7", 6)}, resolve_seconds=15)
    assert run.started_after == 6
    assert address(run.nodes[1]) == "10.1.0.6"
    assert address(run.nodes[2]) == "10.1.0.7"
    assert run.stderr == ""


def test_a_first_start_looks_nothing_up(tmp_path: Path) -> None:
    """No nodes.conf yet (an empty volume): redis-server starts at once and writes its own."""
    run = run_start(tmp_path, None, {}, resolve_seconds=15)
    assert run.started_after == 0
    assert run.lookups == []
    assert run.nodes == []
    assert run.arguments == REDIS_ARGUMENTS


def test_on_the_real_clock_the_wait_is_real_and_ends(tmp_path: Path) -> None:
    """The real `date` and `sleep`: a peer that never resolves is waited for (whole seconds, so
    at least RESOLVE_SECONDS - 1), and the script ends by starting redis-server (FAILURE_TIMEOUT
    only guards against a hang)."""
    run = run_start(tmp_path, NODES_74, {REDIS_1: ("10.1.0.6", 0)}, resolve_seconds=2, clock=False)
    assert run.wall_seconds >= 2 - 1
    assert run.arguments == REDIS_ARGUMENTS
    assert address(run.nodes[1]) == "10.1.0.6"
    assert address(run.nodes[2]) == "10.0.0.7"
    assert sum(1 for _, name in run.lookups if name == REDIS_2) >= 2  # looked for again after a second


def test_the_scripts_default_wait_is_the_one_the_pods_are_given() -> None:
    match = re.search(r'RESOLVE_SECONDS="\$\{RESOLVE_SECONDS:-(\d+)\}"', START_SCRIPT.read_text())
    assert match is not None
    assert int(match.group(1)) == RESOLVE_SECONDS
