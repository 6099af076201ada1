#!/usr/bin/env bash
# Builds the release binaries of tillit, reproducibly, into dist/<version>/:
# linux, darwin and windows on amd64 and arm64, static (CGO_ENABLED=0), with
# SHA256SUMS.
#
#   scripts/release.sh [VERSION]      # default: git describe --tags --always
#
# The same commit built with the same Go version gives the same bytes:
# -trimpath drops local paths, -buildid= the build ID, and the version and
# commit are stamped from git, not from the clock. The Go version is part
# of the build (go version -m shows it); the script prints it, and
# GOTOOLCHAIN=local keeps go from switching to another. A tree with
# uncommitted changes is refused (ALLOW_DIRTY=1 builds it anyway, marked
# +dirty), as its binaries could not be built again from the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

commit=$(git rev-parse HEAD)
if [[ -n $(git status --porcelain) ]]; then
	if [[ ${ALLOW_DIRTY:-} != 1 ]]; then
		echo "release.sh: the tree has uncommitted changes; commit them (or ALLOW_DIRTY=1)" >&2
		exit 1
	fi
	commit+="+dirty"
fi
version=${1:-$(git describe --tags --always)}
out=dist/$version
rm -rf "$out"
mkdir -p "$out"

echo "release.sh: tillit $version from $commit with $(go version)" >&2
for os in linux darwin windows; do
	for arch in amd64 arm64; do
		name=tillit-$version-$os-$arch
		[[ $os == windows ]] && name+=.exe
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build \
			-trimpath -buildvcs=true -mod=readonly \
			-ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit" \
			-o "$out/$name" ./cmd/tillit
		echo "  $out/$name" >&2
	done
done
(cd "$out" && sha256sum tillit-* >SHA256SUMS)
cat "$out/SHA256SUMS"
