"""The Kubernetes manifests agree with themselves, with the services' settings and with Prometheus."""

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents() -> list[dict]:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / resource).read_text()) if d]
    return docs


def test_every_service_selects_a_deployment_and_its_ports():
    docs = documents()
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    for deployment in deployments:
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        )
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        matches = [d for d in deployments if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, service["metadata"]["name"]
        container_ports = {
            p["name"] for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports


def test_environment_ports_match_container_ports():
    for deployment in (d for d in documents() if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            declared = {p["containerPort"] for p in container["ports"]}
            for variable in container.get("env", []):
                if variable["name"].endswith("_PORT"):
                    assert int(variable["value"]) in declared, variable["name"]


def test_prometheus_finds_every_component_through_a_headless_service():
    services = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Service"}
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-kubernetes.yml").read_text())
    for job in config["scrape_configs"]:
        for sd in job["dns_sd_configs"]:
            name = sd["names"][0].split(".")[0]
            service = services[name]
            assert service["spec"]["clusterIP"] == "None"
            assert sd["port"] in {p["port"] for p in service["spec"]["ports"]}
