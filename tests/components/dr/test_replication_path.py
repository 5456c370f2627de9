"""The path the DR replica streams over: prod's DNS record for the replication host, the Lambda
firewall opened to the DR NAT addresses only, and the bring-up order (prod -> dr -> prod -> dr)
made explicit by a stop that names the key to set."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pulumi.runtime import mocks

from components.dr.region import admitted_host
from components.dr.replication_dns import record_for
from tests.helpers import stack_config
from tools.harness import EchoMocks, StackRun, run_stack

NAT_ADDRESSES = ["198.51.100.10", "198.51.100.11", "198.51.100.12"]  # the harness's prod fixture admits these


@pytest.fixture(scope="module")
def prod() -> StackRun:
    return run_stack("prod")


def test_prod_points_the_replication_host_at_the_load_balancer(prod: StackRun) -> None:
    (record,) = prod.by_type("aws:route53/record:Record")
    assert (record.inputs["name"], record.inputs["zoneId"]) == ("pg-replication.sophia.ai", "Z0SOPHIAEXAMPLE")
    service = prod.named("postgres-replication")
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert service.urn in record.property_dependencies["records"]
    assert record.inputs["ttl"] == 60.0


def test_record_is_the_load_balancers_addresses_or_its_name() -> None:
    assert record_for([{"ip": "192.0.2.7"}, {"ip": "192.0.2.5"}]) == ("A", ["192.0.2.5", "192.0.2.7"])
    assert record_for([{"hostname": "lb-1.elb.example"}]) == ("CNAME", ["lb-1.elb.example"])
    with pytest.raises(ValueError, match="no address"):
        record_for([])


def test_every_pool_opens_postgres_only_to_the_dr_nat_addresses(prod: StackRun) -> None:
    rulesets = prod.by_type("pulumi-python:dynamic/lambda:FirewallRuleset")
    assert len(rulesets) == 4 * 3  # four pools, three candidate regions
    for ruleset in rulesets:
        postgres = [r for r in ruleset.inputs["rules"] if r["port_range"] == [5432.0, 5432.0]]
        assert sorted(r["source_network"] for r in postgres) == [f"{ip}/32" for ip in NAT_ADDRESSES], ruleset.name


def test_until_the_dr_addresses_are_known_the_endpoint_stays_closed() -> None:
    layer = json.loads(stack_config("prod")["sophia:dataLayer"])
    layer["postgres"]["drReplication"].pop("allowedCidrs")
    run = run_stack("prod", config_overrides={"sophia:dataLayer": json.dumps(layer)})
    assert [r for r in run.resources if r.name == "postgres-replication"] == []
    assert run.by_type("aws:route53/record:Record") == []
    for ruleset in run.by_type("pulumi-python:dynamic/lambda:FirewallRuleset"):
        assert all(r["port_range"] != [5432.0, 5432.0] for r in ruleset.inputs["rules"])
    assert any("drReplication.allowedCidrs is empty" in line for line in run.logs)
    assert run.outputs["postgresReplicationAllowedCidrs"] == []


class NatMocks(EchoMocks):
    """`pulumi up` of the dr stack: the NAT gateways' Elastic IPs have their addresses."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = list(addresses)

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == "aws:ec2/eip:Eip":
            outputs["publicIp"] = self.addresses.pop(0)
        if args.typ == "aws:eks/cluster:Cluster":
            outputs |= {"endpoint": "https://eks.example", "certificateAuthority": {"data": "Q0E="}}
        return resource_id, outputs


def test_dr_stops_naming_prods_key_until_prod_admits_its_nat_addresses() -> None:
    with pytest.raises(Exception, match=re.escape("sophia:dataLayer.postgres.drReplication.allowedCidrs")) as caught:
        run_stack("dr", preview=False, mock_impl=NatMocks(["192.0.2.1", *NAT_ADDRESSES[1:]]))
    assert "192.0.2.1/32" in str(caught.value)
    assert "198.51.100.11/32" not in str(caught.value)


def test_admitted_host() -> None:
    allowed = ["198.51.100.0/28"]
    assert admitted_host("pg.example", allowed, NAT_ADDRESSES) == "pg.example"
    assert admitted_host("pg.example", allowed, [None]) == "pg.example"  # not known yet (preview)
    with pytest.raises(ValueError, match=r"\['203.0.113.9/32'\]"):
        admitted_host("pg.example", allowed, [*NAT_ADDRESSES, "203.0.113.9"])


def test_dr_streams_once_prod_admits_every_nat_address() -> None:
    run = run_stack("dr", preview=False, mock_impl=NatMocks(NAT_ADDRESSES))
    (cluster,) = run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    (source,) = [c for c in cluster.inputs["spec"]["externalClusters"] if c["name"] == "primary"]
    assert source["connectionParameters"]["host"] == "pg-replication.sophia.ai"
