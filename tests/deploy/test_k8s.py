"""The Kubernetes manifests (k8s/): every overlay builds with `kubectl kustomize`, every object
validates offline against the Kubernetes and CRD schemas, and the deployment policy holds
(non-root, read-only root, probes, resources, spreading, PDBs, 3 NATS nodes, R3 provisioning).

Schemas: kubernetes-validate (dev dependency) ships the Kubernetes ones; the KEDA and
Prometheus-operator CRD schemas are vendored in tests/deploy/schemas/ (see its README.md).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.runtime.settings import Settings
from tests.servers import NATS_IMAGE

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.v1.json",
}
KUBERNETES_VERSIONS = ("1.30", "1.37")
"""The oldest version supported here and the newest kubernetes-validate ships."""
SERVICES = ("ticker", "runner", "recorder", "api")
NATS_USERS = {*SERVICES, "provision"}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
LONG_RUNNING = ("Deployment", "StatefulSet")
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
SECRET_WORDS = re.compile(r"URL|PASSWORD|TOKEN|KEY|SECRET|CREDS", re.IGNORECASE)

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl is not installed: the k8s/ overlays cannot be built (kubectl bundles"
    " kustomize); install kubectl to run these checks",
)

Obj = dict[str, Any]


def _kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )


@cache
def _built(overlay: str) -> tuple[Obj, ...]:
    result = _kustomize(K8S / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _with_components(tmp_path: Path, overlay: str, components: list[str]) -> Path:
    """A throw-away overlay: `overlay` plus `components` (kustomize wants relative paths)."""
    kustomization = {
        "resources": [os.path.relpath(K8S / "overlays" / overlay, tmp_path)],
        "components": [os.path.relpath(K8S / "components" / name, tmp_path) for name in components],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return tmp_path


def _of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def _named(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    (found,) = [obj for obj in _of_kind(objects, kind) if obj["metadata"]["name"] == name]
    return found


def _nats_config(objects: tuple[Obj, ...]) -> dict[str, str]:
    """The files of the nats-config ConfigMap (its name carries kustomize's hash)."""
    (config,) = [
        cm
        for cm in _of_kind(objects, "ConfigMap")
        if cm["metadata"]["name"].startswith("nats-config-")
    ]
    files: dict[str, str] = config["data"]
    return files


def _workloads(objects: tuple[Obj, ...], kinds: tuple[str, ...] = WORKLOADS) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in kinds]


def _pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def _pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _containers(objects: tuple[Obj, ...]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, container) for every container of every workload."""
    for workload in _workloads(objects):
        for container in _pod_spec(workload)["containers"]:
            yield workload, container


def _natscron_containers(objects: tuple[Obj, ...]) -> Iterator[tuple[Obj, Obj]]:
    for workload, container in _containers(objects):
        if workload["metadata"]["name"].startswith("natscron-"):
            yield workload, container


def _env(container: Obj) -> dict[str, Obj]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions with In) against labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _dockerfile_uid() -> int:
    found = re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert found, "the Dockerfile no longer creates its user with a fixed --uid"
    return int(found.group(1))


def _dockerfile_http_port() -> int:
    found = re.search(r"NATSCRON_HTTP_PORT=(\d+)", (ROOT / "Dockerfile").read_text())
    assert found, "the Dockerfile no longer sets NATSCRON_HTTP_PORT"
    return int(found.group(1))


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server prunes: an object's unknown fields are errors here
    (the server would drop them silently) unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema:
        strict["properties"] = {key: _strict(value) for key, value in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            strict["additionalProperties"] = False
    return strict


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    return jsonschema.Draft7Validator(_strict(schema))


def _schema_errors(obj: Obj) -> list[str]:
    """Why `obj` does not validate, one line per version or schema; empty when it does."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        return [
            f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in _crd_validator(*key).iter_errors(obj)
        ]
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{version} {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.utils.SchemaNotFoundError as error:
            errors.append(error.message)
    return errors


# --- building and schemas -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds(overlay: str) -> None:
    kinds = {obj["kind"] for obj in _built(overlay)}
    assert kinds >= {
        "StatefulSet",
        "Deployment",
        "Job",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
        "Namespace",
    }


def test_only_the_layout_remains_in_k8s() -> None:
    """The old flat manifests are gone: base, components, overlays and the README only."""
    assert {path.name for path in K8S.iterdir()} == {"README.md", "base", "components", "overlays"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay: str) -> None:
    objects = _built(overlay)
    problems = {
        f"{obj['kind']}/{obj['metadata']['name']}": errors
        for obj in objects
        if (errors := _schema_errors(obj))
    }
    assert not problems, problems


def test_schema_validation_rejects_unknown_fields() -> None:
    """The validators are strict: a misspelt field fails, in core objects and custom ones."""
    deployment = copy.deepcopy(_named(_built("prod"), "Deployment", "natscron-runner"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFileSystem"
    ] = True
    assert any("readOnlyRootFileSystem" in error for error in _schema_errors(deployment))
    scaled = copy.deepcopy(_named(_built("prod"), "ScaledObject", "natscron-runner"))
    scaled["spec"]["minReplicas"] = 1
    assert any("minReplicas" in error for error in _schema_errors(scaled))
    rule = copy.deepcopy(_named(_built("prod"), "PrometheusRule", "natscron"))
    rule["spec"]["groups"][0]["rules"][0]["expr"] = ["not", "a", "string"]
    assert _schema_errors(rule)


# --- autoscaling ----------------------------------------------------------------------------


def _settings_of(objects: tuple[Obj, ...], workload: Obj) -> Settings:
    """The settings the (only) container of `workload` runs with: its ConfigMaps, then env."""
    (container,) = _pod_spec(workload)["containers"]
    config_maps = _config_maps(objects)
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        values |= config_maps[source["configMapRef"]["name"]]
    values |= {name: entry.get("value", "from-a-secret") for name, entry in _env(container).items()}
    return Settings.model_validate(
        {name.removeprefix("NATSCRON_").lower(): value for name, value in values.items()}
    )


def _runner_deployments(objects: tuple[Obj, ...]) -> dict[str, Obj]:
    """Every runner Deployment, by the pool its runners take jobs from."""
    runners = [
        deployment
        for deployment in _of_kind(objects, "Deployment")
        if _pod_spec(deployment)["containers"][0]["args"] == ["runner"]
    ]
    by_pool = {_settings_of(objects, runner).runner_pool: runner for runner in runners}
    assert len(by_pool) == len(runners), "two runner Deployments of one pool"
    return by_pool


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_runner_pool_is_provisioned_and_browser_runners_have_chromium(overlay: str) -> None:
    objects = _built(overlay)
    runners = _runner_deployments(objects)
    assert set(runners) == {DEFAULT_POOL, "browser"}
    provisioned = _settings_of(objects, _named(objects, "Job", "natscron-provision")).runner_pools
    assert set(runners) <= set(provisioned)
    default, browser = runners[DEFAULT_POOL], runners["browser"]
    (plain,) = _pod_spec(default)["containers"]
    (chromium,) = _pod_spec(browser)["containers"]
    assert chromium["image"] == plain["image"] + "-browser"
    memory = [_bytes(container["resources"]["limits"]["memory"]) for container in (plain, chromium)]
    assert memory[1] > memory[0], "a browser runner gets more memory"
    assert not _matches(default["spec"]["selector"], _pod_labels(browser))
    assert not _matches(browser["spec"]["selector"], _pod_labels(default))


def _bytes(quantity: str) -> int:
    units = {"Mi": 1 << 20, "Gi": 1 << 30}
    return int(quantity[:-2]) * units[quantity[-2:]]


def test_prod_scales_each_runner_pool_with_keda_on_its_own_lanes() -> None:
    objects = _built("prod")
    scaled_objects = _of_kind(objects, "ScaledObject")
    runners = _runner_deployments(objects)
    pools = tuple(runners)
    layout = jetstream_layout(3, 10.0, pools=pools)
    assert len(scaled_objects) == len(runners)
    nats = _named(objects, "StatefulSet", "nats")
    headless = _named(objects, "Service", nats["spec"]["serviceName"])
    (monitor,) = [port for port in headless["spec"]["ports"] if port["name"] == "monitor"]
    for pool, runner in runners.items():
        (scaled,) = [
            scaled
            for scaled in scaled_objects
            if scaled["spec"]["scaleTargetRef"]["name"] == runner["metadata"]["name"]
        ]
        assert "replicas" not in runner["spec"], (
            "KEDA owns the runner count; apply must not reset it"
        )
        assert scaled["spec"]["minReplicaCount"] >= 1
        triggers = scaled["spec"]["triggers"]
        assert {trigger["type"] for trigger in triggers} == {"nats-jetstream"}
        lanes = {names.runner_consumer(pool, priority) for priority in Priority}
        assert {(c.stream, c.name) for c in layout.consumers} >= {
            (names.STREAM_JOBS, consumer) for consumer in lanes
        }
        assert {trigger["metadata"]["consumer"] for trigger in triggers} == lanes
        assert {trigger["metadata"]["stream"] for trigger in triggers} == {names.STREAM_JOBS}
        namespace = runner["metadata"]["namespace"]
        endpoint = f"{headless['metadata']['name']}.{namespace}.svc.cluster.local:{monitor['port']}"
        concurrency = _settings_of(objects, runner).runner_concurrency
        for trigger in triggers:
            assert trigger["metadata"]["natsServerMonitoringEndpoint"] == endpoint
            assert int(trigger["metadata"]["lagThreshold"]) == 2 * concurrency
            assert trigger["metadata"]["account"] == "$G"
    auth = (K8S / "base" / "nats" / "auth.conf").read_text()
    assert not re.search(r"^\s*accounts\s*[:={]", auth, re.MULTILINE), (
        "auth.conf defines accounts: the ScaledObject's account ($G, the global one) must name"
        " the account of the streams"
    )


def test_dev_has_no_autoscaler() -> None:
    kinds = {obj["kind"] for obj in _built("dev")}
    assert not kinds & {"ScaledObject", "HorizontalPodAutoscaler"}
    assert _named(_built("dev"), "Deployment", "natscron-runner")["spec"]["replicas"] >= 1


def test_hpa_component_is_the_alternative(tmp_path: Path) -> None:
    result = _kustomize(_with_components(tmp_path, "dev", ["hpa-runner"]))
    assert result.returncode == 0, result.stderr
    objects = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    hpa = _named(objects, "HorizontalPodAutoscaler", "natscron-runner")
    assert not _schema_errors(hpa)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "natscron-runner"
    assert "replicas" not in _named(objects, "Deployment", "natscron-runner")["spec"]


def test_keda_and_hpa_components_exclude_each_other(tmp_path: Path) -> None:
    result = _kustomize(_with_components(tmp_path, "dev", ["hpa-runner", "keda-runner"]))
    assert result.returncode != 0
    assert "replicas" in result.stderr


# --- security, probes, resources ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_non_root_and_restricted(overlay: str) -> None:
    uid = _dockerfile_uid()
    for workload in _workloads(_built(overlay)):
        pod = _pod_spec(workload)
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        if name.startswith("natscron-"):
            assert pod["securityContext"]["runAsUser"] == uid, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_paths_are_empty_dirs_or_volumes(overlay: str) -> None:
    """A read-only root needs /tmp for Python; every mount is a declared volume."""
    for workload, container in _natscron_containers(_built(overlay)):
        volumes = {volume["name"]: volume for volume in _pod_spec(workload)["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resources(overlay: str) -> None:
    for workload, container in _containers(_built(overlay)):
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert set(resources[bound]) >= {"cpu", "memory"}, workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_probe_health_on_their_http_port(overlay: str) -> None:
    port = _dockerfile_http_port()
    objects = _built(overlay)
    for workload in _workloads(objects, LONG_RUNNING):
        for container in _pod_spec(workload)["containers"]:
            assert container["livenessProbe"] and container["readinessProbe"]
    for name in SERVICES:
        (container,) = _pod_spec(_named(objects, "Deployment", f"natscron-{name}"))["containers"]
        ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
        assert ports["http"] == port
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["args"] == [name]
    (api,) = _pod_spec(_named(objects, "Deployment", "natscron-api"))["containers"]
    assert {"name": "api", "containerPort": 8000} in api["ports"]


# --- availability ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tickers_are_two_and_spread(overlay: str) -> None:
    ticker = _named(_built(overlay), "Deployment", "natscron-ticker")
    assert ticker["spec"]["replicas"] == 2
    spread = {
        constraint["topologyKey"]: constraint
        for constraint in _pod_spec(ticker)["topologySpreadConstraints"]
    }
    assert set(spread) == {HOSTNAME, ZONE}
    for constraint in spread.values():
        assert _matches(constraint["labelSelector"], _pod_labels(ticker))
    if overlay == "prod":
        assert spread[HOSTNAME]["whenUnsatisfiable"] == "DoNotSchedule"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_workload_has_a_pdb_that_allows_drains(overlay: str) -> None:
    objects = _built(overlay)
    budgets = _of_kind(objects, "PodDisruptionBudget")
    for workload in _workloads(objects, LONG_RUNNING):
        labels = _pod_labels(workload)
        covering = [pdb for pdb in budgets if _matches(pdb["spec"]["selector"], labels)]
        assert len(covering) == 1, workload["metadata"]["name"]
        spec = covering[0]["spec"]
        # Never zero disruptions allowed: a budget that blocks every drain is rejected.
        if "maxUnavailable" in spec:
            assert int(str(spec["maxUnavailable"]).removesuffix("%")) > 0
        else:
            assert spec["minAvailable"] < workload["spec"].get("replicas", 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_is_a_three_node_jetstream_cluster(overlay: str) -> None:
    objects = _built(overlay)
    nats = _named(objects, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    (container,) = _pod_spec(nats)["containers"]
    assert container["image"] == NATS_IMAGE
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    headless = _named(objects, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    conf = _nats_config(objects)["nats.conf"]
    routes = set(re.findall(r"nats://([\w.-]+):6222", conf))
    assert routes == {f"nats-{i}.{headless['metadata']['name']}" for i in range(3)}
    assert re.search(r"store_dir:\s*/data\b", conf)
    assert re.search(r"^include \./auth\.conf$", conf, re.MULTILINE)
    if overlay == "prod":
        (by_node,) = [
            constraint
            for constraint in _pod_spec(nats)["topologySpreadConstraints"]
            if constraint["topologyKey"] == HOSTNAME
        ]
        assert by_node["whenUnsatisfiable"] == "DoNotSchedule"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_provision_job_creates_three_replicas(overlay: str) -> None:
    job = _named(_built(overlay), "Job", "natscron-provision")
    (container,) = _pod_spec(job)["containers"]
    assert container["args"] == ["provision"]
    assert _env(container)["NATSCRON_JETSTREAM_REPLICAS"]["value"] == "3"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_admits_natscron_clients_and_its_own_routes(overlay: str) -> None:
    objects = _built(overlay)
    nats = _named(objects, "StatefulSet", "nats")
    policy = _named(objects, "NetworkPolicy", "nats")
    assert _matches(policy["spec"]["podSelector"], _pod_labels(nats))

    def admitted(labels: dict[str, str], port: int) -> bool:
        return any(
            {"protocol": "TCP", "port": port} in rule["ports"]
            and any(_matches(peer["podSelector"], labels) for peer in rule.get("from", []))
            for rule in policy["spec"]["ingress"]
        )

    for workload, _ in _natscron_containers(objects):
        assert admitted(_pod_labels(workload), 4222), workload["metadata"]["name"]
    assert admitted(_pod_labels(nats), 6222)
    assert not admitted(_pod_labels(_named(objects, "Deployment", "natscron-api")), 6222)


# --- configuration and secrets --------------------------------------------------------------


def _config_maps(objects: tuple[Obj, ...]) -> dict[str, dict[str, str]]:
    return {cm["metadata"]["name"]: cm.get("data", {}) for cm in _of_kind(objects, "ConfigMap")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_known_and_valid(overlay: str) -> None:
    """Every NATSCRON_* variable given is a setting, and the settings validate."""
    objects = _built(overlay)
    config_maps = _config_maps(objects)
    fields = set(Settings.model_fields)
    for workload, container in _natscron_containers(objects):
        values: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                values |= config_maps[source["configMapRef"]["name"]]
        for name, entry in _env(container).items():
            values[name] = entry.get("value", "from-a-secret")
        settings = {name.removeprefix("NATSCRON_").lower(): value for name, value in values.items()}
        unknown = set(settings) - fields
        assert not unknown, f"{workload['metadata']['name']}: unknown settings {unknown}"
        Settings.model_validate(settings)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_urls_and_credentials_never_in_config_maps(overlay: str) -> None:
    objects = _built(overlay)
    for name, data in _config_maps(objects).items():
        if name.startswith(("nats-config", "natscron-grafana-dashboards")):
            continue  # files: nats.conf refers to passwords by variable, never by value
        for key, value in data.items():
            assert not SECRET_WORDS.search(key) and "://" not in value, f"{name}: {key}"
    for workload, container in _natscron_containers(objects):
        env = _env(container)
        for name in ("NATSCRON_MONGO_URL", "NATSCRON_NATS_PASSWORD"):
            if name in env:
                assert "secretKeyRef" in env[name]["valueFrom"], workload["metadata"]["name"]
    mongo_users = {
        workload["metadata"]["name"]
        for workload, container in _natscron_containers(objects)
        if "NATSCRON_MONGO_URL" in _env(container)
    }
    assert mongo_users == {f"natscron-{name}" for name in SERVICES}


def test_prod_expects_secrets_dev_generates_examples() -> None:
    assert not _of_kind(_built("prod"), "Secret")
    dev_secrets = {secret["metadata"]["name"] for secret in _of_kind(_built("dev"), "Secret")}
    assert any(name.startswith("natscron-mongo-") for name in dev_secrets)
    assert any(name.startswith("natscron-nats-auth-") for name in dev_secrets)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_connects_as_its_own_nats_user(overlay: str) -> None:
    users = set()
    for workload, container in _natscron_containers(_built(overlay)):
        env = _env(container)
        user = env["NATSCRON_NATS_USER"]["value"]
        password = env["NATSCRON_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert user == container["name"] == password["key"], workload["metadata"]["name"]
        users.add(user)
    assert users == NATS_USERS
    auth = (K8S / "base" / "nats" / "auth.conf").read_text()
    assert users <= set(re.findall(r"user:\s*(\w+)", auth))


def _sample_value(entry: Obj) -> str:
    """What the kubelet would put in an environment variable, made up where it is secret."""
    if "value" in entry:
        return str(entry["value"])
    source = entry["valueFrom"]
    if "resourceFieldRef" in source:
        return str(1 << 30)  # bytes, as for limits.memory
    if "fieldRef" in source:
        return "nats-0"
    return f"sample-{entry['name'].lower()}"


def test_nats_server_accepts_the_config_with_the_pods_environment(tmp_path: Path) -> None:
    """nats-server itself parses nats.conf and the included auth.conf, with exactly the
    variables the StatefulSet gives the container: a password auth.conf refers to that the
    pod does not get fails here."""
    server = shutil.which("nats-server", path=os.path.dirname(sys.executable)) or shutil.which(
        "nats-server"
    )
    if server is None:
        pytest.skip("nats-server is not installed (the `embedded` extra): config not checked")
    objects = _built("prod")
    for file_name, text in _nats_config(objects).items():
        (tmp_path / file_name).write_text(text)
    (container,) = _pod_spec(_named(objects, "StatefulSet", "nats"))["containers"]
    environment = {"PATH": os.environ.get("PATH", "")} | {
        name: _sample_value(entry) for name, entry in _env(container).items()
    }
    result = subprocess.run(
        [server, "-c", "nats.conf", "-t"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout + result.stderr


# --- monitoring -----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_scrapes_every_service_as_its_job(overlay: str) -> None:
    objects = _built(overlay)
    monitor = _named(objects, "ServiceMonitor", "natscron")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    selected = [
        svc
        for svc in _of_kind(objects, "Service")
        if _matches(monitor["spec"]["selector"], svc["metadata"]["labels"])
    ]
    jobs = {svc["metadata"]["labels"][monitor["spec"]["jobLabel"]] for svc in selected}
    assert jobs == {*SERVICES, "runner-browser"}
    for svc in selected:
        (port,) = [port for port in svc["spec"]["ports"] if port["name"] == endpoint["port"]]
        assert port["targetPort"] == "http"
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    assert set(re.findall(r'job="(\w+)"', alerts)) <= jobs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_rule_is_exactly_the_shared_alerts(overlay: str) -> None:
    rule = _named(_built(overlay), "PrometheusRule", "natscron")
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]


def test_dashboards_are_the_deploy_ones_byte_for_byte() -> None:
    """Kustomize reads no file outside k8s/, so k8s keeps a copy: it must not drift."""
    deployed = ROOT / "deploy" / "grafana" / "dashboards"
    copied = K8S / "base" / "monitoring" / "dashboards"
    assert {path.name for path in copied.iterdir()} == {path.name for path in deployed.iterdir()}
    for path in deployed.iterdir():
        assert (copied / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboards_config_map_is_labelled_for_grafana(overlay: str) -> None:
    dashboards = _named(_built(overlay), "ConfigMap", "natscron-grafana-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    deployed = ROOT / "deploy" / "grafana" / "dashboards"
    assert set(dashboards["data"]) == {path.name for path in deployed.glob("*.json")}
