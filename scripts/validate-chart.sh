#!/usr/bin/env bash
# Offline checks of the Helm chart charts/medmesh; needs only python3 (3.11+) and PyPI.
#
# - Helm itself: helm-python-sdk bundles Helm's Go SDK (v4) as a native library (libhelm_c.so,
#   called through ctypes), so the chart is rendered and linted by real Helm with no helm binary,
#   no cluster and no download beyond the wheel.
# - Kubernetes schemas: kubernetes-validate ships the API's JSON schemas for each Kubernetes
#   minor version; every rendered manifest is checked against the strict variant (unknown
#   fields are errors) for each version in KUBE_VERSIONS. A kind without a schema is an error.
# - medmesh's own wiring: each StatefulSet's headless Service publishes not-ready addresses,
#   selectors match the pods, MEDMESH_PEERS lists ordinal N as id N+1 at its stable DNS name
#   and internal (raft) port, MEDMESH_ENDPOINTS the public ones, the client Service only grpc,
#   the per-pod id files exist, and bad values (duplicate province, bad code, federation on)
#   fail the render.
#
# Usage: scripts/validate-chart.sh      (exit 0 and one summary line when all is valid)
# Env:   CHART_VENV     virtualenv to create or reuse (default target/chart-venv, git-ignored)
#        KUBE_VERSIONS  Kubernetes versions to validate against (default "1.29.0 1.37.0")
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${CHART_VENV:-target/chart-venv}
export KUBE_VERSIONS=${KUBE_VERSIONS:-"1.29.0 1.37.0"}
REQUIREMENTS="helm-python-sdk==0.2.2 kubernetes-validate==1.37.0"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# Reinstall only when the pinned requirements change.
if [ "$(cat "$VENV/.medmesh-requirements" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  # shellcheck disable=SC2086 # word splitting of the requirement list is intended
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQUIREMENTS
  echo "$REQUIREMENTS" >"$VENV/.medmesh-requirements"
fi

exec "$VENV/bin/python" - charts/medmesh charts/medmesh/ci/test-values.yaml <<'PY'
"""Renders, lints and validates the chart; prints one summary line or the errors."""

import copy
import os
import re
import sys
import tomllib

import helm_python as helm
import yaml
from kubernetes_validate import utils as kv

CHART, TEST_VALUES = sys.argv[1], sys.argv[2]
RELEASE, NAMESPACE = "medmesh", "medmesh"
KUBE_VERSIONS = os.environ["KUBE_VERSIONS"].split()
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
errors: list[str] = []


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects a key repeated in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def error(msg: str) -> None:
    errors.append(msg)


def render(values: dict) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str], label: str) -> list[dict]:
    """The rendered objects; NOTES.txt must render but is not a manifest."""
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            if not text.strip():
                error(f"{label}: {path} rendered empty")
            continue
        try:
            loaded = list(yaml.load_all(text, Loader=UniqueKeyLoader))
        except yaml.YAMLError as e:
            error(f"{label}: {path}: not YAML: {e}")
            continue
        for doc in loaded:
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                error(f"{label}: {path}: a document without kind/apiVersion")
                continue
            doc.setdefault("metadata", {})
            docs.append((path, doc))
    return docs


def lint(values: dict | None, label: str) -> None:
    for version in KUBE_VERSIONS:
        report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{version}")
        for e in report.get("errors") or []:
            error(f"lint {label} (kubernetes {version}): {e}")
        for m in report.get("messages") or []:
            if m["severity"] >= 2:  # 2 = warning (an error under --strict), 3 = error
                error(f"lint {label} (kubernetes {version}): {m['path']}: {m['error']}")


def validate_schemas(docs: list, label: str) -> None:
    for path, doc in docs:
        what = f"{label}: {path}: {doc['kind']}/{doc['metadata'].get('name')}"
        for version in KUBE_VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                error(f"{what}: kubernetes {version}: {where}: {e.message}")
            except kv.SchemaNotFoundError as e:
                error(f"{what}: {e.message}")
            except kv.VersionNotSupportedError as e:
                error(f"kubernetes-validate: {e.message}")


def check_wiring(docs: list, label: str) -> None:
    """medmesh-specific consistency of the rendered objects."""
    by_kind: dict[str, dict[str, dict]] = {}
    for path, doc in docs:
        kind, name = doc["kind"], doc["metadata"].get("name", "")
        if name in by_kind.setdefault(kind, {}):
            error(f"{label}: {kind}/{name} rendered twice")
        by_kind[kind][name] = doc
        if not DNS_LABEL.match(name) or len(name) > 63:
            error(f"{label}: {kind}/{name}: not a DNS label of at most 63 characters")
        if doc["metadata"].get("namespace") not in (None, NAMESPACE):
            error(f"{label}: {kind}/{name}: namespace {doc['metadata']['namespace']!r}")
    services = by_kind.get("Service", {})
    pdbs = by_kind.get("PodDisruptionBudget", {})
    configmaps = by_kind.get("ConfigMap", {})
    if not by_kind.get("StatefulSet"):
        error(f"{label}: no StatefulSet rendered")

    def selects(selector: dict, labels: dict) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    for name, sts in by_kind.get("StatefulSet", {}).items():
        what = f"{label}: StatefulSet/{name}"
        spec, pod = sts["spec"], sts["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        replicas = spec["replicas"]
        if len(name) > 52:
            error(f"{what}: name longer than 52 characters (controller-revision-hash label)")
        if not selects(spec["selector"]["matchLabels"], labels):
            error(f"{what}: selector does not match its pod labels")
        headless = services.get(spec["serviceName"])
        if headless is None:
            error(f"{what}: serviceName {spec['serviceName']} is not a rendered Service")
        else:
            hs = headless["spec"]
            if hs.get("clusterIP") != "None" or hs.get("publishNotReadyAddresses") is not True:
                error(f"{what}: Service/{spec['serviceName']} is not headless with publishNotReadyAddresses")
        clients = [s for s in services.values() if s["spec"].get("clusterIP") != "None" and selects(s["spec"].get("selector", {}), labels)]
        if len(clients) != 1:
            error(f"{what}: {len(clients)} client Services select its pods, want 1")
        for c in clients:
            ports = [p.get("name") for p in c["spec"].get("ports", [])]
            if ports not in (["grpc"], ["grpc", "https"]) or ("https" in ports and name.endswith("-000000")):
                error(f"{what}: the client Service must expose only the public grpc port and, for a province, the HTTP gateway (Raft stays internal)")
        covering = [p for p in pdbs.values() if selects(p["spec"]["selector"]["matchLabels"], labels)]
        if len(covering) != 1 or covering[0]["spec"].get("maxUnavailable") != 1:
            error(f"{what}: want exactly one PodDisruptionBudget with maxUnavailable 1")
        pspec = pod["spec"]
        sc = pspec.get("securityContext", {})
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != 10001:
            error(f"{what}: pod must run as non-root uid 10001")
        if not pspec.get("affinity", {}).get("podAntiAffinity"):
            error(f"{what}: no pod anti-affinity")
        if [v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])] != ["data"]:
            error(f"{what}: want one volumeClaimTemplate named data")
        (container,) = pspec["containers"]
        env = container.get("env", [])
        names = [e["name"] for e in env]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            error(f"{what}: duplicate env {dupes}")
        values = {e["name"]: e.get("value") for e in env}
        if "MEDMESH_ID" in values:
            error(f"{what}: MEDMESH_ID must come from the per-pod file, not env")
        if "POD_NAME" not in names or names.index("POD_NAME") > names.index("MEDMESH_ADVERTISE"):
            error(f"{what}: POD_NAME must be defined before MEDMESH_ADVERTISE uses it")
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        raft = next((p["containerPort"] for p in container["ports"] if p["name"] == "raft"), None)
        if raft is None or raft == port:
            error(f"{what}: needs a raft container port apart from grpc (the internal listener)")
        domain = f"{spec['serviceName']}.{NAMESPACE}.svc.cluster.local"
        # Raft peers on the internal listener; the public endpoints on the public one.
        want_peers = ",".join(f"{i + 1}={name}-{i}.{domain}:{raft}" for i in range(replicas))
        if values.get("MEDMESH_PEERS") != want_peers:
            error(f"{what}: MEDMESH_PEERS {values.get('MEDMESH_PEERS')!r}, want {want_peers!r}")
        want_endpoints = ",".join(f"{name}-{i}.{domain}:{port}" for i in range(replicas))
        if values.get("MEDMESH_ENDPOINTS") != want_endpoints:
            error(f"{what}: MEDMESH_ENDPOINTS {values.get('MEDMESH_ENDPOINTS')!r}, want {want_endpoints!r}")
        if values.get("MEDMESH_ADVERTISE") != f"$(POD_NAME).{domain}:{port}":
            error(f"{what}: MEDMESH_ADVERTISE {values.get('MEDMESH_ADVERTISE')!r}")
        if values.get("MEDMESH_INTERNAL_ADVERTISE") != f"$(POD_NAME).{domain}:{raft}":
            error(f"{what}: MEDMESH_INTERNAL_ADVERTISE {values.get('MEDMESH_INTERNAL_ADVERTISE')!r}")
        if values.get("MEDMESH_LISTEN") != f"0.0.0.0:{port}":
            error(f"{what}: MEDMESH_LISTEN {values.get('MEDMESH_LISTEN')!r}, want 0.0.0.0:{port}")
        if values.get("MEDMESH_INTERNAL_LISTEN") != f"0.0.0.0:{raft}":
            error(f"{what}: MEDMESH_INTERNAL_LISTEN {values.get('MEDMESH_INTERNAL_LISTEN')!r}, want 0.0.0.0:{raft}")
        if not re.fullmatch(r"[0-9]{2}0000", values.get("MEDMESH_PROVINCE") or ""):
            error(f"{what}: MEDMESH_PROVINCE {values.get('MEDMESH_PROVINCE')!r}")
        fed = by_kind.get("StatefulSet", {}).get(f"{name.rsplit('-', 1)[0]}-000000")
        if fed is not None and values.get("MEDMESH_PROVINCE") != "000000":
            fdomain = f"{fed['spec']['serviceName']}.{NAMESPACE}.svc.cluster.local"
            want = ",".join(f"{fed['metadata']['name']}-{i}.{fdomain}:{port}" for i in range(fed["spec"]["replicas"]))
            if values.get("MEDMESH_FEDERATION") != want:
                error(f"{what}: MEDMESH_FEDERATION {values.get('MEDMESH_FEDERATION')!r}, want {want!r}")
        if values.get("MEDMESH_PROVINCE") == "000000" and "MEDMESH_FEDERATION" in values:
            error(f"{what}: the federation's own replicas need no MEDMESH_FEDERATION")
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                error(f"{what}: no {probe}")
        args = container.get("args", [])
        if args[:2] != ["node", "--config"] or args[2:] != ["/etc/medmesh/$(POD_NAME).toml"]:
            error(f"{what}: args {args}")
        config_volumes = [v["configMap"]["name"] for v in pspec.get("volumes", []) if "configMap" in v]
        cm = configmaps.get(config_volumes[0]) if config_volumes else None
        if cm is None:
            error(f"{what}: its config volume is not a rendered ConfigMap")
            continue
        for i in range(replicas):
            key = f"{name}-{i}.toml"
            try:
                got = tomllib.loads(cm.get("data", {}).get(key, "")).get("id")
            except tomllib.TOMLDecodeError as e:
                got = f"bad TOML: {e}"
            if got != i + 1:
                error(f"{what}: ConfigMap/{cm['metadata']['name']} {key}: id {got!r}, want {i + 1}")


def expect_failure(values: dict, needle: str, label: str) -> None:
    try:
        render(values)
    except helm.HelmError as e:
        if needle not in str(e):
            error(f"bad values ({label}) failed for another reason: {e}")
        return
    error(f"bad values ({label}) rendered without error")


test_values = helm.values_from_yaml(open(TEST_VALUES, encoding="utf-8").read())
counts = {}
for label, values in (("ci/test-values.yaml", test_values), ("default values", None)):
    lint(values, label)
    try:
        docs = manifests(render(values), label)
    except helm.HelmError as e:
        error(f"render {label}: {e}")
        continue
    validate_schemas(docs, label)
    check_wiring(docs, label)
    counts[label] = len(docs)

first = test_values["node"]["provinces"][0]
for label, patch, needle in (
    ("federation's code as a province", {"node": {"provinces": [{"code": "000000", "replicas": 3}]}}, "federation's group"),
    ("federation without voters", {"federation": {"enabled": True, "replicas": 0}}, "federation.replicas"),
    ("duplicate province", {"node": {"provinces": [first, first]}}, "listed twice"),
    ("bad province code", {"node": {"provinces": [{"code": "110001", "replicas": 3}]}}, "province code"),
    ("MEDMESH_ID in extraEnv", {"node": {"extraEnv": [{"name": "MEDMESH_ID", "value": "1"}]}}, "MEDMESH_ID"),
):
    values = copy.deepcopy(test_values)
    for key, value in patch.items():
        values.setdefault(key, {}).update(value)
    expect_failure(values, needle, label)

if errors:
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"chart: {len(errors)} errors", file=sys.stderr)
    sys.exit(1)
n = counts["ci/test-values.yaml"]
print(
    f"chart: {n} manifests valid (ci/test-values.yaml; {counts['default values']} with default values), "
    f"strict schemas of kubernetes {', '.join(KUBE_VERSIONS)}, helm {helm.helm_sdk_version()} lint clean"
)
PY
