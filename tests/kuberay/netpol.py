"""A NetworkPolicy evaluator for the tests: would Kubernetes let this connection through?

It follows the NetworkPolicy API's semantics for what the manifests use (matchLabels selectors,
namespace selectors on ``kubernetes.io/metadata.name``, ipBlocks, ports): a pod selected by any
policy of a direction is isolated in it and only the union of those policies' rules lets traffic
through; a connection needs both the source's egress and the destination's ingress to allow it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str | None  # None: outside the cluster (only an IP)
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None


def selects(selector: Manifest | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    assert not selector.get("matchExpressions"), "the evaluator only knows matchLabels"
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def peer_matches(peer: Manifest, endpoint: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if endpoint.ip is None:
            return False
        address = ipaddress.ip_address(endpoint.ip)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(c) for c in block.get("except", []))
    if endpoint.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_ok = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": endpoint.namespace})
    else:
        namespace_ok = endpoint.namespace == policy_namespace
    return namespace_ok and selects(peer.get("podSelector"), endpoint.labels)


def port_matches(ports: list[Manifest] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol
        and (p.get("port") is None or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in ports
    )


def _direction_allows(
    policies: list[Manifest], subject: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> bool:
    kind, peers_key = ("Egress", "to") if direction == "egress" else ("Ingress", "from")
    applying = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and kind in p["spec"].get("policyTypes", [])
        and selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not applying:
        return True  # not isolated in this direction
    for policy in applying:
        for rule in policy["spec"].get(direction) or []:
            peers = rule.get(peers_key)
            peer_ok = peers is None or any(
                peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers
            )
            if peer_ok and port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def allowed(
    policies: list[Manifest], source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    return _direction_allows(policies, source, target, port, protocol, "egress") and _direction_allows(
        policies, target, source, port, protocol, "ingress"
    )
