#!/usr/bin/env bash
# Installs Mailpit (the local SMTP server whose web UI shows the mail the service sends) into
# ~/.dapr/bin next to the Dapr binaries, by building it from the Go module proxy: no GitHub
# release download is needed. Cached: a rerun with the pinned version present returns at once.
#
# The web UI's assets (server/ui/dist) are not in the Go module: they are built with npm
# (esbuild) from the module's own package-lock.json (see below for the two packages changed).
# Without node/npm the binary is still built: SMTP and the HTTP API (/api/v1/...) work, only
# the UI pages answer "File not found". The API reference page (/api) is never built.
# MAILPIT_UI=0 skips the npm build on purpose.
set -euo pipefail

# Pinned: github.com/axllent/mailpit v1.33.1 was seen to download from the Go module proxy on
# this machine kind (`go mod download -json github.com/axllent/mailpit@v1.33.1`).
MAILPIT_VERSION="v1.33.1"

BIN_DIR="${DAPR_BIN_DIR:-$HOME/.dapr/bin}"
WORK_DIR="${MAILPIT_BUILD_DIR:-$HOME/.cache/support-mailpit-build}"
WANT_UI="${MAILPIT_UI:-1}"
BIN="$BIN_DIR/mailpit"
STAMP="$BIN.version"
mkdir -p "$BIN_DIR" "$WORK_DIR"

PROGRESS_TAG=install-mailpit
. "$(dirname "$0")/progress.sh"
die() { echo "[install-mailpit] ERROR: $*" >&2; exit 1; }

can_build_ui() { [[ "$WANT_UI" != 0 ]] && command -v node >/dev/null && command -v npm >/dev/null; }

# The stamp holds "version ui=yes|no sha256": a binary built without the UI is rebuilt once
# npm is available, and a binary replaced by hand no longer matches its checksum.
installed() {
  [[ -x "$BIN" && -f "$STAMP" ]] || return 1
  read -r version ui sum < "$STAMP" || return 1
  [[ "$version" == "$MAILPIT_VERSION" && "$sum" == "$(sha256sum "$BIN" | cut -d' ' -f1)" ]] || return 1
  [[ "$ui" == "ui=yes" ]] || ! can_build_ui
}

if installed; then
  log "Mailpit $MAILPIT_VERSION already in $BIN_DIR ($(cut -d' ' -f2 "$STAMP"))"
  exit 0
fi

command -v go >/dev/null || die "Go is not installed; it is needed to build Mailpit (apt-get install golang or install from go.dev)"
export GOTOOLCHAIN=auto

log "downloading github.com/axllent/mailpit@$MAILPIT_VERSION from the Go module proxy"
SRC_DIR=$(go mod download -json "github.com/axllent/mailpit@$MAILPIT_VERSION" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir","")); sys.exit(1 if d.get("Error") else 0)') \
  || die "could not download github.com/axllent/mailpit@$MAILPIT_VERSION (is the Go module proxy reachable? a 403 means this version is refused)"
[[ -d "$SRC_DIR" ]] || die "module github.com/axllent/mailpit@$MAILPIT_VERSION has no source directory"
SRC="$WORK_DIR/mailpit-$MAILPIT_VERSION"
rm -rf "$SRC"; cp -r "$SRC_DIR" "$SRC"; chmod -R u+w "$SRC"

ui=no
if can_build_ui; then
  # The module's package-lock.json pins two packages the npm registry here does not serve
  # (seen: sass-embedded 1.108.1 answers 404, and no rapidoc 12.x exists, 9.3.8 is the newest),
  # so `npm ci` fails. rapidoc only renders the API reference page (server/ui-src/docs.js);
  # it is dropped and only the mail UI (app.js) is built. sass-embedded is moved to 1.108.2,
  # the next patch release. Every other package keeps its locked version.
  # --ignore-scripts: no package install script runs; esbuild and sass-embedded find their
  # platform binaries (optional dependencies) without one.
  ( cd "$SRC"
    npm pkg delete dependencies.rapidoc
    npm pkg set overrides.sass-embedded=1.108.2
    sed -i 's#entryPoints: \["server/ui-src/app.js", "server/ui-src/docs.js"\]#entryPoints: ["server/ui-src/app.js"]#' esbuild.config.mjs
    grep -q 'entryPoints: \["server/ui-src/app.js"\]' esbuild.config.mjs \
      || die "esbuild.config.mjs has changed: cannot drop the API reference page's entry point"
    with_progress "installing the web UI's npm packages (npm install, locked versions)" \
      npm install --ignore-scripts --no-audit --no-fund --loglevel=error
    with_progress "building the web UI assets (esbuild -> server/ui/dist)" \
      env MINIFY=true nice -n 10 node esbuild.config.mjs )
  [[ -f "$SRC/server/ui/dist/app.js" ]] || die "the npm build produced no server/ui/dist/app.js"
  ui=yes
else
  log "node/npm not found (or MAILPIT_UI=0): building without the web UI; SMTP and the HTTP API work"
fi

# nice: the machine's cores are shared; the build is not urgent.
( cd "$SRC"
  CGO_ENABLED=0 with_progress "building mailpit $MAILPIT_VERSION (go build, a few minutes on a fresh machine)" \
    nice -n 10 go build -trimpath -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
    -o "$BIN.tmp" . )
mv "$BIN.tmp" "$BIN"
"$BIN" version --no-release-check 2>/dev/null | grep -q "$MAILPIT_VERSION" \
  || die "mailpit was built but does not report version $MAILPIT_VERSION"
echo "$MAILPIT_VERSION ui=$ui $(sha256sum "$BIN" | cut -d' ' -f1)" > "$STAMP"
rm -rf "$SRC/node_modules"
log "done: $BIN ($MAILPIT_VERSION, web UI: $ui)"
