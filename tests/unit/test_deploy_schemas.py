"""The rendered objects are valid: the API and operator schemas, the restricted Pod Security
profile, a best-practice linter, versioned images, defined claims, one namespace."""

from __future__ import annotations

import os
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy_manifests import (
    CHECKOV,
    KUBERNETES,
    KUBERNETES_VERSIONS,
    ROOT,
    TARGETS,
    VERSION,
    WORKLOADS,
    containers,
    custom_resource_errors,
    is_custom,
    named,
    of_kind,
    pod_spec,
    rendered,
)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_the_kubernetes_schema(target, version):
    for document in rendered(target):
        if not is_custom(document):
            kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_every_custom_resource_validates_against_its_operators_schema(target):
    custom = [d for d in rendered(target) if is_custom(d)]
    errors = custom_resource_errors(custom)
    assert {d["metadata"]["name"]: e for d, e in zip(custom, errors, strict=True)} == {
        d["metadata"]["name"]: None for d in custom
    }


def test_a_custom_resource_schema_violation_is_caught():
    (certificate, *_) = [d for d in rendered("gpu-tls") if d["kind"] == "Certificate"]
    broken = {**certificate, "spec": {**certificate["spec"], "secretName": 7}}
    (error,) = custom_resource_errors([broken])
    assert error and "secretName" in error


def test_a_schema_violation_is_caught():
    broken = named("gpu", "Deployment", "tagllm-gateway")
    broken = {**broken, "spec": {**broken["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


# -- Pod Security Standards, "restricted" (kubernetes.io/docs/concepts/security/pod-security-standards)

RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip


def restricted_violations(workload: dict) -> list[str]:
    """What the Pod Security "restricted" profile refuses in this workload's pods."""
    spec = pod_spec(workload)
    pod = spec.get("securityContext", {})
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(field)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    if pod.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    for sysctl in pod.get("sysctls", []):
        problems.append(f"sysctl {sysctl['name']}")
    for container in containers(workload):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot must be true")
        if context.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as root")
        seccomp = context.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities must drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"{name}: hostPort")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount")
    return problems


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_passes_the_restricted_pod_security_profile(target):
    workloads = of_kind(target, *WORKLOADS)
    assert workloads
    assert {w["metadata"]["name"]: restricted_violations(w) for w in workloads} == {
        w["metadata"]["name"]: [] for w in workloads
    }


def test_the_profile_check_catches_a_root_container():
    workload = named("gpu", "Deployment", "tagllm-model-server")
    spec = pod_spec(workload)
    root = {**spec["containers"][0], "securityContext": {"runAsUser": 0, "privileged": True}}
    changed = {"spec": {"template": {"spec": {**spec, "containers": [root], "hostNetwork": True}}}}
    assert len(restricted_violations(changed)) >= 4


def test_the_namespace_enforces_the_restricted_profile():
    (namespace,) = of_kind("gpu", "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- a best-practice linter


# What checkov asks for that we decline, and why.
CHECKOV_DECLINED = {
    # Image versions are set in one place (components/images); a release pins digests there
    # (`kustomize edit set image NAME=NAME@sha256:...`).
    "CKV_K8S_43": "image digests",
    # Tags are immutable version numbers: IfNotPresent is the right pull policy for them.
    "CKV_K8S_15": "imagePullPolicy Always",
    # CPU limits throttle latency-sensitive servers; requests already guarantee each its share.
    "CKV_K8S_11": "CPU limits",
}


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_checkov_finds_nothing_beyond_what_is_declined_on_purpose(target, tmp_path):
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run scripts/setup"
    manifest = tmp_path / f"{target}.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered(target)))
    result = subprocess.run(
        [str(CHECKOV), "-f", str(manifest), "--framework", "kubernetes", "--quiet", "--compact",
         "--skip-download", "--skip-check", ",".join(CHECKOV_DECLINED)],
        capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# -- what docs/kubernetes.md promises


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_versioned_in_one_place(target):
    images = {c["image"] for w in of_kind(target, *WORKLOADS) for c in containers(w)}
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name.startswith("registry.example.com/tagllm/"), image
        assert tag.startswith(VERSION) and tag != "latest", image
    text = "".join(p.read_text() for p in KUBERNETES.rglob("*.yaml"))
    assert text.count(f'newTag: "{VERSION}"') == 1  # the one place (overlays add a suffix)


@pytest.mark.parametrize("target", TARGETS)
def test_every_claim_a_pod_mounts_is_defined(target):
    claims = {c["metadata"]["name"] for c in of_kind(target, "PersistentVolumeClaim")}
    for workload in of_kind(target, *WORKLOADS):
        for volume in pod_spec(workload).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


@pytest.mark.parametrize("target", TARGETS)
def test_everything_lands_in_the_namespace(target):
    # Objects that an overlay's components add are namespaced only where the overlay says so.
    for document in rendered(target):
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == "tagllm", (
                document["kind"],
                document["metadata"]["name"],
            )


def test_the_images_name_no_package_index_and_build_for_cuda_12_and_13():
    dockerfile = (ROOT / "deploy" / "docker" / "model-server.Dockerfile").read_text()
    assert "ARG TORCH_BUILD=cu130" in dockerfile and "TORCH_BUILD=cu128" in dockerfile
    for path in [*(ROOT / "deploy" / "docker").glob("*Dockerfile"), ROOT / "scripts" / "setup"]:
        urls = re.findall(r"\b[a-z]+://[^\s\"'}]+", path.read_text())
        assert [u for u in urls if not u.startswith("file://")] == [], path.name
