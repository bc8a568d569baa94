#!/usr/bin/env bash
# npm run engine:install: builds the Pulumi CLI (github.com/pulumi/pulumi/pkg/v3, pinned in
# engine/go.mod, checked against engine/go.sum) and this project's Node.js language host from
# Go modules, once per machine, into a cache outside the clone. Prints the path of the
# `pulumi` binary alone on its last line.
#
# The cache is keyed on engine/'s sources and the Go version, so a change to either builds a
# new engine beside the old one. CUTOVER_ENGINE_CACHE moves it (default ~/.cache/cutover-engine).
# With --cached it builds nothing: it prints the path if this engine is built, else exits 3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CUTOVER_ENGINE_CACHE:-${HOME:-/root}/.cache/cutover-engine}"
versions() { node -p "require('$here/../node_modules/@pulumi/$1/package.json').version"; }
plugins="command@$(versions command) random@$(versions random) tls@$(versions tls) cloudflare@$(versions cloudflare)"
key="$( (go version; echo "$plugins"; cat "$here/go.mod" "$here/go.sum" "$here"/language-nodejs/*.go "$here"/providers/*.go) | sha256sum | cut -c1-16)"
dest="$cache/$key"

if [ -x "$dest/bin/pulumi" ] && [ -f "$dest/ready" ]; then
    [ "${1:-}" = --cached ] || echo "engine: cached in $dest" >&2
    echo "$dest/bin/pulumi"
    exit 0
fi
# --cached: only say where an engine built for these sources is (exit 3: none yet).
[ "${1:-}" = --cached ] && exit 3

command -v go >/dev/null || { echo "engine: go is not on the PATH (Go 1.26 builds the engine)" >&2; exit 1; }
mkdir -p "$cache"
work="$(mktemp -d "$cache/.build-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$here"
# -mod=readonly: the build uses exactly the versions in go.mod and fails on a checksum
# that differs from go.sum, instead of resolving anything anew; no VCS stamp (the clone may
# belong to another user than the build).
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
start=$(date +%s)
echo "engine: downloading the modules in engine/go.mod (once per machine)" >&2
go mod download
version="$(go list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3)"
echo "engine: building the Pulumi CLI $version (about 9 minutes on 2 cores)" >&2
# The release build stamps its version the same way; without it the CLI reports none.
go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    -o "$work/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
echo "engine: building the Node.js language host" >&2
go build -o "$work/bin/pulumi-language-nodejs" ./language-nodejs
# The resource plugins, installed under the versions the npm packages request so that the
# engine never tries to download one. github.com/pulumi/pulumi-command/provider,
# pulumi-random/provider/v4 and pulumi-tls/provider/v5 are not served by the module proxy
# (403 "This module version is not available"), so engine/providers stands in for them, and
# for Cloudflare's API (a mock of a cloud, as under the SDK's mocks).
echo "engine: building the resource plugins (engine/providers)" >&2
go build -o "$work/plugins/cutover-providers" ./providers
for p in $plugins; do
    PULUMI_HOME="$work/home" PULUMI_SKIP_UPDATE_CHECK=true "$work/bin/pulumi" plugin install resource "${p%@*}" "${p#*@}" \
        --file "$work/plugins/cutover-providers" >&2
done
touch "$work/ready"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "engine: built in $(( $(date +%s) - start )) s into $dest" >&2
echo "$dest/bin/pulumi"
