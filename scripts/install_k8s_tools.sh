#!/usr/bin/env bash
# Installs what validating the Helm chart needs, offline: helm and kubeconform built from the Go
# module proxy, the Kubernetes JSON schemas shipped by the PyPI package kubernetes-validate
# (requirements.txt), and JSON schemas of the Dapr CRDs converted from the dapr module's
# charts/dapr/crds/ with kubeconform's own openapi2jsonschema.py. kubeconform's default schema
# download cannot work here; tests point -schema-location at these local copies.
#
#   bash scripts/install_k8s_tools.sh          # prints the tools directory on its last line
#
# Everything is cached under $K8S_TOOLS_DIR (default ~/.cache/support-k8s-tools) with version
# stamps; a rerun with everything in place returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned versions. Both tool modules were seen served by the Go module proxy on this machine
# kind (`go mod download helm.sh/helm/v3@v3.22.0 github.com/yannh/kubeconform@v0.8.0`).
HELM_VERSION="v3.22.0"
KUBECONFORM_VERSION="v0.8.0"
# The dapr module whose charts/dapr/crds/ hold the CRDs: the runtime version of install_dapr.sh.
DAPR_VERSION="v1.18.1"
# Kubernetes schema version: helm v3.22.0 builds against client-go v0.37 (Kubernetes 1.37), and
# kubernetes-validate 1.37.0 ships the schemas of that version.
KUBERNETES_VERSION="1.37.0"

TOOLS_DIR="${K8S_TOOLS_DIR:-$HOME/.cache/support-k8s-tools}"
BIN_DIR="$TOOLS_DIR/bin"
SCHEMA_DIR="$TOOLS_DIR/schemas"
PY="$PWD/.venv/bin/python"
mkdir -p "$BIN_DIR" "$SCHEMA_DIR"

PROGRESS_TAG=install-k8s-tools
. scripts/progress.sh
die() { echo "[install-k8s-tools] ERROR: $*" >&2; exit 1; }

stamp_ok() {  # $1 file, $2 wanted stamp content: the stamp holds the version and the checksum
  [[ -f "$1" && -f "$1.version" && "$(cat "$1.version")" == "$2 $(sha256sum "$1" | cut -d' ' -f1)" ]]
}
write_stamp() { echo "$2 $(sha256sum "$1" | cut -d' ' -f1)" > "$1.version"; }

# Downloads a module (a no-op when it is in the module cache) and prints its source directory.
module_dir() {  # $1 module@version
  go mod download -json "$1" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir","")); sys.exit(1 if d.get("Error") else 0)' \
    || die "could not download $1 from the Go module proxy"
}

command -v go >/dev/null || die "Go is needed to build helm and kubeconform"
[[ -x $PY ]] || die "run scripts/ensure_python.sh first (kubernetes-validate and PyYAML come from requirements.txt)"
export GOTOOLCHAIN=auto GOFLAGS="${GOFLAGS:-}"
# `go install pkg@version` builds outside any module; the temporary GOBIN keeps a half-built
# binary from ever being taken for a finished one.
GOBIN_TMP=$(mktemp -d); trap 'rm -rf "$GOBIN_TMP"' EXIT

if stamp_ok "$BIN_DIR/helm" "helm $HELM_VERSION"; then
  log "helm $HELM_VERSION already in $BIN_DIR"
else
  major=$((${KUBERNETES_VERSION%%.*})); minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  with_progress "building helm $HELM_VERSION from helm.sh/helm/v3 (about 5 minutes on a fresh machine; downloads included)" env GOBIN="$GOBIN_TMP" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata= \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$GOBIN_TMP/helm" "$BIN_DIR/helm"
  "$BIN_DIR/helm" version --short | grep -q "^$HELM_VERSION" || die "helm was built but does not report $HELM_VERSION"
  write_stamp "$BIN_DIR/helm" "helm $HELM_VERSION"
fi

if stamp_ok "$BIN_DIR/kubeconform" "kubeconform $KUBECONFORM_VERSION"; then
  log "kubeconform $KUBECONFORM_VERSION already in $BIN_DIR"
else
  with_progress "building kubeconform $KUBECONFORM_VERSION from github.com/yannh/kubeconform (about a minute)" env GOBIN="$GOBIN_TMP" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  mv "$GOBIN_TMP/kubeconform" "$BIN_DIR/kubeconform"
  "$BIN_DIR/kubeconform" -v | grep -q "${KUBECONFORM_VERSION}" || die "kubeconform was built but does not report $KUBECONFORM_VERSION"
  write_stamp "$BIN_DIR/kubeconform" "kubeconform $KUBECONFORM_VERSION"
fi

# Kubernetes schemas: kubeconform looks them up as
# {{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json.
# kubernetes-validate's files carry an https://kubernetes.io/api/... $id and refer to
# "/api/_definitions.json" (resolved by its own registry); kubeconform would fetch that URL. The
# copies drop the $id and refer to the _definitions.json beside them: read from disk only.
K8S_STAMP="local-refs-2 kubernetes-validate $("$PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))') $KUBERNETES_VERSION"
if [[ -f "$SCHEMA_DIR/kubernetes.version" && "$(cat "$SCHEMA_DIR/kubernetes.version")" == "$K8S_STAMP" ]]; then
  log "Kubernetes $KUBERNETES_VERSION schemas already in $SCHEMA_DIR/kubernetes"
else
  log "copying the Kubernetes $KUBERNETES_VERSION schemas from the kubernetes-validate package"
  "$PY" - "$KUBERNETES_VERSION" "$SCHEMA_DIR/kubernetes" <<'EOF'
import json, pathlib, shutil, sys
import kubernetes_validate

version, target = sys.argv[1], pathlib.Path(sys.argv[2])
source_root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
shutil.rmtree(target, ignore_errors=True)
for flavour in ("-local", "-local-strict"):
    source = source_root / f"v{version}{flavour}"
    if not source.is_dir():
        sys.exit(f"kubernetes-validate has no schemas for Kubernetes {version} ({source})")
    out = target / source.name
    out.mkdir(parents=True)
    for schema in source.glob("*.json"):
        document = json.loads(schema.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        document.pop("$id", None)
        (out / schema.name).write_text(json.dumps(document))
print(f"{len(list(target.rglob('*.json')))} schema files in {target}")
EOF
  echo "$K8S_STAMP" > "$SCHEMA_DIR/kubernetes.version"
fi

# Dapr CRD schemas, as {kind}_{version}.json (lower case), from the CRDs of the pinned runtime.
DAPR_STAMP="dapr $DAPR_VERSION kubeconform $KUBECONFORM_VERSION"
if [[ -f "$SCHEMA_DIR/dapr.version" && "$(cat "$SCHEMA_DIR/dapr.version")" == "$DAPR_STAMP" ]]; then
  log "Dapr $DAPR_VERSION CRD schemas already in $SCHEMA_DIR/dapr"
else
  log "converting the Dapr $DAPR_VERSION CRDs (github.com/dapr/dapr charts/dapr/crds) to JSON schemas"
  dapr_src=$(module_dir "github.com/dapr/dapr@$DAPR_VERSION")
  converter="$(module_dir "github.com/yannh/kubeconform@$KUBECONFORM_VERSION")/scripts/openapi2jsonschema.py"
  [[ -f $converter ]] || die "kubeconform $KUBECONFORM_VERSION has no scripts/openapi2jsonschema.py"
  rm -rf "$SCHEMA_DIR/dapr"; mkdir -p "$SCHEMA_DIR/dapr"
  # DENY_ROOT_ADDITIONAL_PROPERTIES: a misspelt top-level field (e.g. "scope") fails too, not
  # only misspelt fields inside spec.
  ( cd "$SCHEMA_DIR/dapr" && DENY_ROOT_ADDITIONAL_PROPERTIES=1 FILENAME_FORMAT="{kind}_{version}" \
      "$PY" "$converter" "$dapr_src"/charts/dapr/crds/*.yaml >/dev/null )
  for kind in component configuration resiliency subscription; do
    [[ -f "$SCHEMA_DIR/dapr/${kind}_v1alpha1.json" ]] || die "no schema for the Dapr $kind CRD"
  done
  echo "$DAPR_STAMP" > "$SCHEMA_DIR/dapr.version"
fi

log "done in $((SECONDS - START))s: $(ls "$BIN_DIR" | grep -v '\.version$' | tr '\n' ' ')and schemas in $SCHEMA_DIR"
echo "$TOOLS_DIR"
