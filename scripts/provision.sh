#!/usr/bin/env bash
# Provisions a Debian 12 machine to build Tripline and run its live rule tests:
# the Vagrant VM (Vagrantfile runs it as root) or any Debian 12 host, CI
# included. Idempotent: it installs only what is missing and changes nothing
# else on a machine that already has everything.
#
#   scripts/provision.sh           install what is missing, build, print the test command
#   scripts/provision.sh --check   report what is missing; install and build nothing
#
# Environment:
#   PROVISION_REPO   the repository (default /vagrant)
#   PROVISION_RULES  the rules folder the live tests use (default
#                    /home/vagrant/tripline/rules when it exists, else $PROVISION_REPO/rules)
#   PROVISION_BUILD  0 skips `make build` (deploy/provision_test.go does: a cold
#                    -trimpath build takes minutes; the other tests build the sensor)
set -euo pipefail

say() { echo "provision: $*"; }
die() {
	echo "provision: error: $*" >&2
	exit 1
}

check=false
case "${1:-}" in
"") ;;
--check) check=true ;;
-h | --help)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument $1 (want --check)" ;;
esac

repo=${PROVISION_REPO:-/vagrant}
[[ -f $repo/go.mod ]] && grep -q '^module github.com/tripline/tripline$' "$repo/go.mod" ||
	die "PROVISION_REPO=$repo is not the Tripline repository"
repo=$(cd "$repo" && pwd)
rules=${PROVISION_RULES:-}
if [[ -z $rules ]]; then
	if [[ -d /home/vagrant/tripline/rules ]]; then rules=/home/vagrant/tripline/rules; else rules=$repo/rules; fi
fi

if ! $check && [[ $(id -u) -ne 0 ]]; then
	die "run as root (the VM provisioner does); use --check to only inspect"
fi
[[ -r /etc/os-release ]] && . /etc/os-release
if [[ ${ID:-} != debian || ${VERSION_ID:-} != 12 ]]; then
	say "warning: written for Debian 12, this is ${PRETTY_NAME:-unknown}"
fi

missing_any=false

# --- kernel ------------------------------------------------------------------
# CO-RE relocation and tp_btf programs need the kernel's BTF.
if [[ -r /sys/kernel/btf/vmlinux ]]; then
	say "kernel $(uname -r): BTF present"
else
	say "kernel $(uname -r): /sys/kernel/btf/vmlinux missing; the sensor needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian 12's 6.1 has it)"
	missing_any=true
fi

# --- packages ----------------------------------------------------------------
pkgs=(clang llvm bpftool containerd runc busybox-static nats-server iproute2
	libcap2-bin util-linux make ca-certificates)
# One dpkg-query for all of them; a package dpkg never heard of is missing too.
present=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null | awk '/ install ok installed$/ { print $1 }' || true)
missing=()
for p in "${pkgs[@]}"; do
	grep -qx "$p" <<<"$present" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	say "packages: all present"
elif $check; then
	say "packages missing: ${missing[*]}"
	missing_any=true
else
	say "installing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Go ----------------------------------------------------------------------
# go.mod names the minimum toolchain. Use an installed go that is recent
# enough; otherwise install Debian's newest golang-1.NN (>= 1.21, from
# bookworm-backports), whose GOTOOLCHAIN=auto then fetches the exact
# toolchain from the Go module proxy, checksummed by sum.golang.org.
need=$(awk '$1 == "toolchain" { sub(/^go/, "", $2); print $2; exit }' "$repo/go.mod")
[[ -n $need ]] || need=$(awk '$1 == "go" { print $2; exit }' "$repo/go.mod")
[[ -n $need ]] || die "no go directive in $repo/go.mod"
version_ge() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }
go_version() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//'; }

find_go() {
	local g v best="" bestv=0
	for g in $(command -v go 2>/dev/null) /usr/local/go/bin/go /usr/lib/go-1.*/bin/go; do
		[[ -x $g ]] || continue
		v=$(GOTOOLCHAIN=local go_version "$g") || continue
		[[ -n $v ]] || continue
		if [[ -z $best ]] || version_ge "$v" "$bestv"; then best=$g bestv=$v; fi
	done
	[[ -n $best ]] && echo "$best $bestv"
}

gobin="" gotoolchain=local
if read -r g v < <(find_go); then
	if version_ge "$v" "$need"; then
		gobin=$g
		say "go $v at $g (go.mod needs $need)"
	elif version_ge "$v" 1.21; then
		gobin=$g gotoolchain=auto
		say "go $v at $g; it will fetch go $need from the module proxy (GOTOOLCHAIN=auto)"
	fi
fi
if [[ -z $gobin ]]; then
	if $check; then
		say "go: no go >= 1.21 installed (go.mod needs $need)"
		missing_any=true
	else
		newest() { apt-cache pkgnames golang-1. 2>/dev/null | grep -E '^golang-1\.[0-9]+$' | sort -V | tail -n1 || true; }
		pkg=$(newest)
		if [[ -z $pkg ]] || ! version_ge "${pkg#golang-}" 1.21; then
			if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
				say "enabling bookworm-backports for a newer Go"
				echo "deb http://deb.debian.org/debian bookworm-backports main" >/etc/apt/sources.list.d/bookworm-backports.list
			fi
			apt-get update -qq
			pkg=$(newest)
		fi
		if [[ -z $pkg ]] || ! version_ge "${pkg#golang-}" 1.21; then
			die "no Go >= 1.21 available from apt; install Go $need from https://go.dev/dl/ into /usr/local/go and re-run"
		fi
		say "installing $pkg"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
		gobin=/usr/lib/go-${pkg#golang-}/bin/go
		version_ge "$(GOTOOLCHAIN=local go_version "$gobin")" "$need" || gotoolchain=auto
		say "go from $pkg; GOTOOLCHAIN=$gotoolchain"
	fi
fi

# --- containerd ----------------------------------------------------------------
# Live rule tests with `container: true` start containers through containerd.
if [[ -S /run/containerd/containerd.sock ]]; then
	say "containerd: running"
elif [[ ! -d /run/systemd/system ]]; then
	say "containerd: not running (no systemd here; start it before live tests that use containers)"
elif $check; then
	say "containerd: not running (provisioning starts it)"
else
	say "starting containerd"
	systemctl enable --now containerd >/dev/null
fi

if $check; then
	if $missing_any; then
		say "check: something is missing (see above); run scripts/provision.sh as root"
		exit 1
	fi
	say "check: nothing to do"
	exit 0
fi
$missing_any && die "the kernel cannot run the sensor (see above)"

# --- build -------------------------------------------------------------------
if [[ ${PROVISION_BUILD:-1} == 0 ]]; then
	say "build skipped (PROVISION_BUILD=0); build with: make -C $repo build"
	say "done. Run the live rule tests (real probes, real workloads) with:"
	echo
	echo "    sudo $repo/bin/sensor rules test --live $rules/tests"
	echo
	exit 0
fi
say "building the sensor (make build)"
PATH="$(dirname "$gobin"):$PATH" GOTOOLCHAIN=$gotoolchain make -s -C "$repo" build GO="$gobin" >/dev/null
"$repo/bin/sensor" --help >/dev/null || die "the built sensor does not run"
say "built $repo/bin/sensor"
if out=$("$repo/bin/sensor" rules validate "$rules" 2>&1); then
	say "rules in $rules: valid"
else
	say "warning: 'sensor rules validate $rules' failed:"
	printf '%s\n' "$out" | sed 's/^/    /' | head -n 20
fi

cat <<EOF
provision: done. Run the live rule tests (real probes, real workloads) with:

    sudo $repo/bin/sensor rules test --live $rules/tests

EOF
