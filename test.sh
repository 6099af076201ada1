#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need and is missing,
# then `go test -race ./...`. Arguments replace ./... (flags and packages:
# ./test.sh -run TestX ./internal/server/).
#
# The tests need, besides Go:
#   - PostgreSQL's initdb and postgres: the PostgreSQL store's tests start a
#     real server in a temporary folder, and fail (never skip) without them.
#   - Chromium, for the browser tests of the login pages (internal/browsertest),
#     which also fail, never skip, without it.
# Whatever is missing is installed from Debian's packages with apt-get (as
# root, or through sudo). Where that cannot be done the script says what to
# install and fails: the tests must not pass by not running.
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "test.sh: $*" >&2; }

have_postgres() {
	if command -v initdb >/dev/null && command -v postgres >/dev/null; then
		return 0
	fi
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [[ -x $d/initdb && -x $d/postgres ]]; then
			return 0
		fi
	done
	return 1
}

have_chromium() {
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
		[[ -x /usr/bin/chromium || -x /usr/lib/chromium/chromium ]]
}

apt_updated=
apt_install() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		if ! command -v sudo >/dev/null; then
			say "not root and no sudo: cannot apt-get install $*"
			return 1
		fi
		sudo=(sudo)
	fi
	if ! command -v apt-get >/dev/null; then
		say "no apt-get here: install $* with this system's package manager"
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	if [[ -z $apt_updated ]]; then
		"${sudo[@]}" apt-get update -qq || return 1
		apt_updated=1
	fi
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! have_postgres; then
	say "PostgreSQL's initdb and postgres are missing; installing Debian's postgresql package"
	apt_install postgresql || true
	if ! have_postgres; then
		say "initdb and postgres are still missing: install PostgreSQL (Debian: apt-get install postgresql)"
		exit 1
	fi
fi
# initdb and postgres refuse to run as root; the tests then run them as the
# postgres user, which Debian's package creates.
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
	say "running as root and there is no postgres user to run PostgreSQL as"
	exit 1
fi

# The login pages are tested in a real headless Chromium, which fails,
# never skips, when it is missing.
if ! have_chromium; then
	say "chromium is missing; installing Debian's chromium package"
	apt_install chromium || true
	if ! have_chromium; then
		say "chromium is still missing: install it (Debian: apt-get install chromium)"
		exit 1
	fi
fi

go version
if [[ $# -eq 0 ]]; then
	set -- ./...
fi
exec go test -race "$@"
