"""Affinity by session on Kubernetes: the Ingress asks its controller (the HAProxy
Kubernetes Ingress Controller) for the same balancing as deploy/haproxy/filerestore.cfg,
which tests/scale runs for real; the annotation's value is checked by ``haproxy -c`` as the
``balance`` line the controller writes from it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def _balance_of_haproxy_cfg() -> str:
    found = re.findall(
        r"^\s*balance\s+(.+?)\s*$", (DEPLOY / "haproxy" / "filerestore.cfg").read_text(), re.M
    )
    assert len(found) == 1, found
    return str(found[0])


def _ingress() -> dict[str, object]:
    doc = yaml.safe_load((DEPLOY / "k8s" / "ingress.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def test_the_ingress_balances_by_session_as_the_haproxy_configuration_does() -> None:
    ingress = _ingress()
    assert ingress["spec"]["ingressClassName"] == "haproxy"  # type: ignore[index]
    annotations = ingress["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["haproxy.org/load-balance"] == _balance_of_haproxy_cfg() == "uri depth 4"
    # no cookie: API clients (and the page, which sends a token, not a cookie) keep affinity
    assert not any("affinity" in key or "cookie" in key for key in annotations)


def test_the_annotation_is_a_balance_line_haproxy_accepts(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if haproxy is None:
        pytest.fail("haproxy is missing: run scripts/install")
    annotations = _ingress()["metadata"]["annotations"]  # type: ignore[index]

    def check(balance: str) -> subprocess.CompletedProcess[str]:
        cfg = tmp_path / "check.cfg"
        cfg.write_text(
            "defaults\n    mode http\n    timeout connect 5s\n    timeout client 15m\n"
            f"    timeout server {annotations['haproxy.org/timeout-server']}\n"
            "frontend in\n    bind 127.0.0.1:18080\n    default_backend filerestore\n"
            "backend filerestore\n"
            f"    balance {balance}\n"
            "    server pod1 127.0.0.1:18081\n"
        )
        return subprocess.run(
            [haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60
        )

    good = check(annotations["haproxy.org/load-balance"])
    assert good.returncode == 0, good.stdout + good.stderr
    bad = check("uri depth four")  # the check does refuse a malformed value
    assert bad.returncode != 0 and "balance" in bad.stdout + bad.stderr
