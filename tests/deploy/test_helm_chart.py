"""The Helm chart (deploy/helm/support-service): rendered with the real `helm template` and every
object validated by the real kubeconform, -strict, against local schemas only (the Kubernetes
schemas of kubernetes-validate and the Dapr CRDs of the pinned runtime), offline.
scripts/install_k8s_tools.sh builds both tools from the Go module proxy the first time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "support-service"
THREE_REPLICAS = CHART / "values-3-replicas.yaml"
KUBERNETES_VERSION = "1.37.0"  # the schema version install_k8s_tools.sh copies
STATE_STORES = {"workflow-state", "customer-state", "system-state", "analysis-state", "agent-state"}
DEV_TOKENS = ("dev-client-token", "dev-engineer-token", "dev-operator-token")


@pytest.fixture(scope="module")
def tools() -> Path:
    result = subprocess.run(["bash", str(REPO / "scripts" / "install_k8s_tools.sh")], capture_output=True,
                            text=True, timeout=3600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def helm_template(tools: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(tools / "bin" / "helm"), "template", "support", str(CHART),
                             "--namespace", "support", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def objects(manifest: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def kubeconform(tools: Path, manifest: str) -> tuple[int, dict]:
    """Validates a multi-document manifest; returns the exit code and kubeconform's JSON report."""
    schemas = tools / "schemas"
    result = subprocess.run([
        str(tools / "bin" / "kubeconform"), "-strict", "-summary", "-output", "json",
        "-kubernetes-version", KUBERNETES_VERSION,
        # Local files only: no default (downloading) location is configured.
        "-schema-location", str(schemas / "kubernetes") + "/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json",
        "-schema-location", str(schemas / "dapr") + "/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
        "-",
    ], input=manifest, capture_output=True, text=True, timeout=120)
    return result.returncode, json.loads(result.stdout)


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [doc for doc in by_kind(docs, kind) if name is None or doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


def secret_value(docs: list[dict], name: str, key: str) -> str:
    return one(docs, "Secret", name)["stringData"][key]


@pytest.fixture(scope="module")
def default_render(tools) -> str:
    return helm_template(tools).stdout


@pytest.fixture(scope="module")
def replicated_render(tools) -> str:
    return helm_template(tools, "-f", str(THREE_REPLICAS)).stdout


def test_helm_lint_passes(tools):
    result = subprocess.run([str(tools / "bin" / "helm"), "lint", str(CHART), "-f", str(THREE_REPLICAS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("render", ["default_render", "replicated_render"])
def test_every_rendered_object_validates_strictly(tools, render, request):
    manifest = request.getfixturevalue(render)
    docs = objects(manifest)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted(["Component"] * 6 + ["Configuration", "Deployment", "MCPServer",
                                                "PodDisruptionBudget", "Resiliency", "Secret", "Secret",
                                                "Service"])
    code, report = kubeconform(tools, manifest)
    assert code == 0, report
    # Every object checked against a schema: none skipped for want of one.
    assert report["summary"] == {"valid": len(docs), "invalid": 0, "errors": 0, "skipped": 0}


def test_deployment_has_dapr_annotations_probes_and_resources(default_render):
    docs = objects(default_render)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-id"] == "support-service"
    assert annotations["dapr.io/app-port"] == "8000"
    assert annotations["dapr.io/config"] == one(docs, "Configuration")["metadata"]["name"]
    assert annotations["dapr.io/api-token-secret"] == "support-service-dapr-api-token"
    assert deployment["spec"]["replicas"] == 1

    app = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
    assert app["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert app["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert app["ports"][0]["containerPort"] == 8000
    assert app["resources"]["requests"] and app["resources"]["limits"]
    assert app["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e for e in app["env"]}
    assert env["API_TOKENS"]["valueFrom"]["secretKeyRef"] == {"name": "support-service-api-tokens", "key": "API_TOKENS"}
    assert env["DAPR_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "support-service-dapr-api-token",
                                                                  "key": "token"}
    # The knowledge-base MCP server answers on loopback before daprd loads the MCPServer.
    mcp = one(docs, "MCPServer", "knowledge-base")
    assert mcp["spec"]["endpoint"] == {"streamableHTTP": {"url": "http://127.0.0.1:8765/mcp"}}
    sidecar = one([{"kind": "c", "metadata": {"name": c["name"]}, **c} for c in pod["spec"]["initContainers"]],
                  "c", "knowledge-mcp")
    assert sidecar["restartPolicy"] == "Always" and "8765" in sidecar["command"]


def test_service_and_disruption_budget_select_the_pods(default_render, replicated_render):
    docs = objects(default_render)
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert one(docs, "Service")["spec"]["selector"].items() <= labels.items()
    assert one(docs, "Service")["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    replicated = objects(replicated_render)
    assert one(replicated, "Deployment")["spec"]["replicas"] == 3
    assert one(replicated, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    assert one(replicated, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]


def test_every_state_store_is_postgresql_v2_with_its_own_table(default_render):
    docs = objects(default_render)
    stores = {doc["metadata"]["name"]: doc for doc in by_kind(docs, "Component") if doc["spec"]["type"].startswith("state.")}
    # The same stores as the SQLite profile of resources/.
    local = {doc["metadata"]["name"] for doc in map(yaml.safe_load, map(Path.read_text, (REPO / "resources").glob("*.yaml")))
             if doc["kind"] == "Component" and doc["spec"]["type"].startswith("state.")}
    assert set(stores) == STATE_STORES == local
    prefixes = set()
    for name, store in stores.items():
        assert (store["spec"]["type"], store["spec"]["version"]) == ("state.postgresql", "v2")
        metadata = {m["name"]: m for m in store["spec"]["metadata"]}
        assert metadata["connectionString"]["secretKeyRef"] == {"name": "support-service-postgresql",
                                                                "key": "connectionString"}
        assert "value" not in metadata["connectionString"]
        prefixes.add(metadata["tablePrefix"]["value"])
        assert ("actorStateStore" in metadata) == (name == "workflow-state")
        assert store["scopes"] == ["support-service"] and store["auth"] == {"secretStore": "kubernetes"}
    assert len(prefixes) == len(stores)
    actor = {m["name"]: m for m in stores["workflow-state"]["spec"]["metadata"]}["actorStateStore"]
    assert actor["value"] == "true"

    pubsub = one(docs, "Component", "support-pubsub")
    assert pubsub["spec"]["type"] == "pubsub.redis"
    pubsub_metadata = {m["name"]: m.get("value") for m in pubsub["spec"]["metadata"]}
    assert pubsub_metadata["consumerID"] == "support-service"
    # Streams are trimmed as locally (resources/support-pubsub.yaml): Redis does not grow forever.
    local = yaml.safe_load((REPO / "resources" / "support-pubsub.yaml").read_text())
    assert pubsub_metadata["streamTTL"] == {m["name"]: m["value"] for m in local["spec"]["metadata"]}["streamTTL"] == "168h"


def test_resiliency_and_configuration_mirror_the_local_resources(default_render):
    docs = objects(default_render)
    local_resiliency = yaml.safe_load((REPO / "resources" / "resiliency.yaml").read_text())
    # Dapr 1.18.1's retry policy has no initialInterval (the CRD rejects it; daprd ignores it and
    # starts exponential backoff at its default, 500 ms): the chart leaves it out.
    for policy in local_resiliency["spec"]["policies"]["retries"].values():
        policy.pop("initialInterval", None)
    assert one(docs, "Resiliency")["spec"] == local_resiliency["spec"]
    assert one(docs, "Resiliency")["metadata"]["name"] == local_resiliency["metadata"]["name"]
    local_config = yaml.safe_load((REPO / "resources" / "config.yaml").read_text())
    assert one(docs, "Configuration")["spec"]["tracing"] == local_config["spec"]["tracing"]


def test_generated_secrets_are_random_and_never_the_development_tokens(tools, default_render):
    first, second = objects(default_render), objects(helm_template(tools).stdout)
    tokens = secret_value(first, "support-service-api-tokens", "API_TOKENS")
    entries = [entry.split(":") for entry in tokens.split(",")]
    assert [(name, role) for name, role, _ in entries] == [("client", "client"), ("engineer", "engineer"),
                                                           ("operator", "operator")]
    assert all(len(token) == 48 for _, _, token in entries)
    assert not any(dev in tokens for dev in DEV_TOKENS)
    dapr_token = secret_value(first, "support-service-dapr-api-token", "token")
    assert len(dapr_token) == 64
    # Generated per install, not a value shipped in the chart.
    assert tokens != secret_value(second, "support-service-api-tokens", "API_TOKENS")
    assert dapr_token != secret_value(second, "support-service-dapr-api-token", "token")
    values = (CHART / "values.yaml").read_text()
    assert tokens not in values and dapr_token not in values
    assert not any(dev in values for dev in DEV_TOKENS)


def test_given_and_existing_secrets_are_used(tools):
    given = objects(helm_template(
        tools, "--set", "secrets.apiTokens=ops:engineer:given-token-1",
        "--set", "postgresql.connectionString=host=pg.example user=support password=pw dbname=support",
        "--set", "secrets.existingDaprApiTokenSecret=platform-dapr-token", "--set", "redis.password=redis-pw").stdout)
    assert secret_value(given, "support-service-api-tokens", "API_TOKENS") == "ops:engineer:given-token-1"
    assert "password=pw" in secret_value(given, "support-service-postgresql", "connectionString")
    assert secret_value(given, "support-service-redis", "redis-password") == "redis-pw"
    assert not [s for s in by_kind(given, "Secret") if s["metadata"]["name"] == "support-service-dapr-api-token"]
    annotations = one(given, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/api-token-secret"] == "platform-dapr-token"
    store = one(given, "Component", "workflow-state")
    assert store["spec"]["metadata"][0]["secretKeyRef"] == {"name": "support-service-postgresql", "key": "connectionString"}
    pubsub = {m["name"]: m for m in one(given, "Component", "support-pubsub")["spec"]["metadata"]}
    assert pubsub["redisPassword"]["secretKeyRef"] == {"name": "support-service-redis", "key": "redis-password"}
    # Passwords live in Secrets only, never in a component or the pod spec.
    for doc in given:
        if doc["kind"] != "Secret":
            assert "password=pw" not in json.dumps(doc) and "redis-pw" not in json.dumps(doc)


def test_postgresql_without_any_secret_is_refused(tools):
    result = helm_template(tools, "--set", "postgresql.existingSecret=", check=False)
    assert result.returncode != 0
    assert "postgresql.connectionString or postgresql.existingSecret is required" in result.stderr


BROKEN_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: "three"
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers: [{name: app, image: "support-service:0.1.0"}]
"""

MISSPELT_COMPONENT = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: workflow-state}
spec:
  type: state.postgresql
  version: v2
  metdata:
    - {name: actorStateStore, value: "true"}
"""

SUBSCRIPTION = """
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: escalations}
spec:
  pubsubname: support-pubsub
  {topic_field}: ticket-escalations
  routes: {default: /events/ticket-escalations}
scopes: [support-service]
"""


def invalid_messages(report: dict) -> str:
    return json.dumps([(r["kind"], r["status"], r["msg"], r.get("validationErrors")) for r in report["resources"]])


def test_a_wrong_field_type_in_a_deployment_fails(tools, default_render):
    code, report = kubeconform(tools, BROKEN_DEPLOYMENT)
    assert code != 0
    assert report["summary"]["invalid"] == 1
    assert report["resources"][0]["kind"] == "Deployment"
    assert "/spec/replicas" in invalid_messages(report)
    # -strict: a field Kubernetes does not know is refused too.
    code, report = kubeconform(tools, BROKEN_DEPLOYMENT.replace('replicas: "three"', "replicaz: 3"))
    assert code != 0 and "replicaz" in invalid_messages(report)
    # One broken object among the valid chart fails the whole run.
    code, report = kubeconform(tools, default_render + "\n---\n" + BROKEN_DEPLOYMENT)
    assert code != 0 and report["summary"]["invalid"] == 1 and report["summary"]["valid"] == len(objects(default_render))


def test_a_misspelt_field_in_a_dapr_component_fails(tools):
    code, report = kubeconform(tools, MISSPELT_COMPONENT)
    assert code != 0
    assert report["summary"] == {"valid": 0, "invalid": 1, "errors": 0, "skipped": 0}
    messages = invalid_messages(report)
    assert "metdata" in messages and "Component" in messages


def test_subscription_schema_accepts_a_valid_one_and_rejects_a_misspelt_one(tools):
    code, report = kubeconform(tools, SUBSCRIPTION.replace("{topic_field}", "topic"))
    assert code == 0 and report["summary"]["valid"] == 1, report
    code, report = kubeconform(tools, SUBSCRIPTION.replace("{topic_field}", "topik"))
    assert code != 0 and report["summary"]["invalid"] == 1
    assert "topik" in invalid_messages(report)


def test_a_kind_without_a_local_schema_is_an_error_not_a_skip(tools):
    code, report = kubeconform(tools, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert code != 0
    assert report["summary"]["errors"] == 1
    assert "could not find schema" in invalid_messages(report)
