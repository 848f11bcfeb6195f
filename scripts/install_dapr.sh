#!/usr/bin/env bash
# Installs the pinned Dapr runtime (daprd, placement, scheduler) and CLI into ~/.dapr/bin
# by building them from Go modules: `dapr init` cannot download release binaries here.
# Binaries are cached; a rerun with the right versions present returns at once.
set -euo pipefail

# Pinned versions. These are the versions seen to download from the Go module proxy on this
# machine kind: daprd 1.18.2/1.18.3 need a durabletask-go the proxy refuses (403), and
# go-etcd-cron v0.12.5 (wanted by the scheduler) is refused, so v0.12.6 replaces it.
DAPR_RUNTIME_VERSION="1.18.1"
DAPR_CLI_VERSION="1.16.5"
CLI_CONTRIB_VERSION="1.16.5"
ETCD_CRON_VERSION="v0.12.6"

BIN_DIR="${DAPR_BIN_DIR:-$HOME/.dapr/bin}"
WORK_DIR="${DAPR_BUILD_DIR:-$HOME/.cache/support-dapr-build}"
mkdir -p "$BIN_DIR" "$WORK_DIR"

PROGRESS_TAG=install-dapr
# log (with the elapsed time) and with_progress (says every 20 s that a build still runs).
. "$(dirname "$0")/progress.sh"
die() { echo "[install-dapr] ERROR: $*" >&2; exit 1; }

have_version() {  # $1 binary, $2 expected version
  local bin="$BIN_DIR/$1"
  [[ -x "$bin" ]] || return 1
  case "$1" in
    dapr) "$bin" version 2>/dev/null | grep -q "CLI version: $2" ;;
    daprd) [[ "$("$bin" --version 2>/dev/null | tr -d '[:space:]')" == "$2" ]] ;;
    # placement and scheduler have no --version flag: a stamp written after the build holds
    # the version and the binary's checksum.
    *) [[ -f "$bin.version" && "$(cat "$bin.version")" == "$2 $(sha256sum "$bin" | cut -d' ' -f1)" ]] ;;
  esac
}

stamp() { echo "$DAPR_RUNTIME_VERSION $(sha256sum "$BIN_DIR/$1" | cut -d' ' -f1)" > "$BIN_DIR/$1.version"; }

need_runtime=0; need_cli=0
for b in daprd placement scheduler; do have_version "$b" "$DAPR_RUNTIME_VERSION" || need_runtime=1; done
have_version dapr "$DAPR_CLI_VERSION" || need_cli=1
if [[ $need_runtime == 0 && $need_cli == 0 ]]; then
  log "Dapr runtime $DAPR_RUNTIME_VERSION and CLI $DAPR_CLI_VERSION already in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null || die "Go is not installed; it is needed to build the Dapr runtime (apt-get install golang or install from go.dev)"
export GOTOOLCHAIN=auto GOFLAGS="${GOFLAGS:-}"

# Downloads a module and copies its source to a writable directory; prints that directory.
fetch_module() {  # $1 module, $2 version, $3 target dir
  local dir
  log "downloading $1@$2 from the Go module proxy"
  dir=$(go mod download -json "$1@$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir","")); sys.exit(1 if d.get("Error") else 0)') \
    || die "could not download $1@$2 (is the Go module proxy reachable? a 403 means this version is refused)"
  [[ -d "$dir" ]] || die "module $1@$2 has no source directory"
  rm -rf "$3"; cp -r "$dir" "$3"; chmod -R u+w "$3"
}

if [[ $need_runtime == 1 ]]; then
  SRC="$WORK_DIR/dapr-$DAPR_RUNTIME_VERSION"
  fetch_module github.com/dapr/dapr "v$DAPR_RUNTIME_VERSION" "$SRC"
  LDFLAGS="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_RUNTIME_VERSION -X github.com/dapr/kit/logger.DaprVersion=$DAPR_RUNTIME_VERSION"
  # The version ldflags matter: a daprd reporting "edge" makes `dapr run -f` omit the
  # scheduler address, which silently breaks workflow timers.
  ( cd "$SRC"
    if ! have_version daprd "$DAPR_RUNTIME_VERSION"; then
      CGO_ENABLED=0 with_progress "building daprd $DAPR_RUNTIME_VERSION (about 7 minutes on a fresh machine; downloads included)" go build -trimpath -tags allcomponents -ldflags "$LDFLAGS" -o "$BIN_DIR/daprd.tmp" ./cmd/daprd
      mv "$BIN_DIR/daprd.tmp" "$BIN_DIR/daprd"
    fi
    if ! have_version placement "$DAPR_RUNTIME_VERSION"; then
      CGO_ENABLED=0 with_progress "building placement $DAPR_RUNTIME_VERSION" go build -trimpath -ldflags "$LDFLAGS" -o "$BIN_DIR/placement.tmp" ./cmd/placement
      mv "$BIN_DIR/placement.tmp" "$BIN_DIR/placement"
      stamp placement
    fi
    if ! have_version scheduler "$DAPR_RUNTIME_VERSION"; then
      go mod edit -replace "github.com/diagridio/go-etcd-cron=github.com/diagridio/go-etcd-cron@$ETCD_CRON_VERSION"
      GOFLAGS=-mod=mod CGO_ENABLED=0 with_progress "building scheduler $DAPR_RUNTIME_VERSION (go-etcd-cron replaced by $ETCD_CRON_VERSION)" go build -trimpath -ldflags "$LDFLAGS" -o "$BIN_DIR/scheduler.tmp" ./cmd/scheduler
      mv "$BIN_DIR/scheduler.tmp" "$BIN_DIR/scheduler"
      stamp scheduler
    fi
  )
fi

if [[ $need_cli == 1 ]]; then
  command -v gcc >/dev/null || die "gcc is needed to build the dapr CLI (cgo, for 'dapr workflow list'): apt-get install gcc"
  SRC="$WORK_DIR/cli-$DAPR_CLI_VERSION"
  fetch_module github.com/dapr/cli "v$DAPR_CLI_VERSION" "$SRC"
  ( cd "$SRC"
    go mod edit -replace "github.com/dapr/components-contrib=github.com/dapr/components-contrib@v$CLI_CONTRIB_VERSION"
    GOFLAGS=-mod=mod CGO_ENABLED=1 with_progress "building the dapr CLI $DAPR_CLI_VERSION" go build -trimpath -ldflags "-s -w -X main.version=$DAPR_CLI_VERSION -X main.apiVersion=1.0" -o "$BIN_DIR/dapr.tmp" .
    mv "$BIN_DIR/dapr.tmp" "$BIN_DIR/dapr"
  )
fi

for b in daprd placement scheduler; do have_version "$b" "$DAPR_RUNTIME_VERSION" || die "$b was built but does not report version $DAPR_RUNTIME_VERSION"; done
have_version dapr "$DAPR_CLI_VERSION" || die "dapr CLI was built but does not report version $DAPR_CLI_VERSION"
log "done: $(ls "$BIN_DIR" | tr '\n' ' ')in $BIN_DIR"
