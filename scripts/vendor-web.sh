#!/usr/bin/env bash
# Vendors the dashboard's browser libraries from npm (docs/dashboard.md).
#
#   scripts/vendor-web.sh            re-fetch every package pinned in
#                                    internal/ui/vendor.lock, check it, and
#                                    copy its files into internal/ui/static/vendor
#   scripts/vendor-web.sh --update   the same, but take each pinned version's
#                                    integrity and the copies' sha256 from what
#                                    was fetched and rewrite the lock (after
#                                    editing a version or a file list there)
#
# Each package's tarball must match the sha512 integrity in the lock and the
# one the npm registry's metadata gives for that version, and its licence
# must be the one the lock names. The copied files' sha256 are in the lock;
# internal/ui's TestVendoredFiles re-hashes the committed copies against
# them. Needs npm, curl and openssl; nothing runs at build or run time.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=internal/ui/vendor.lock
dest=internal/ui/static/vendor
update=0
case "${1:-}" in
--update) update=1 ;;
"") ;;
*) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac
for bin in npm curl openssl; do
	command -v "$bin" >/dev/null || { echo "vendor-web: $bin is required (scripts/deps.sh installs npm)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "vendor-web: $lock: $*" >&2; exit 1; }

# Everything is checked in a scratch copy; $dest is replaced only at the end.
out="$tmp/vendor"
mkdir -p "$out"
declare -A unpacked
n=0
while IFS= read -r line || [ -n "$line" ]; do
	n=$((n + 1))
	read -r kind f1 f2 f3 f4 rest <<<"$line" || true
	case "$kind" in
	"" | "#"*)
		printf '%s\n' "$line" >>"$tmp/lock"
		;;
	package)
		name=$f1 version=$f2 license=$f3 integrity=$f4
		[ -n "$integrity" ] && [ -z "$rest" ] || fail "line $n: want: package NAME VERSION LICENSE INTEGRITY"
		meta_integrity=$(npm view "$name@$version" dist.integrity)
		tarball=$(npm view "$name@$version" dist.tarball)
		meta_license=$(npm view "$name@$version" license)
		[ -n "$meta_integrity" ] && [ -n "$tarball" ] || fail "line $n: the registry has no $name@$version"
		[ "$meta_license" = "$license" ] || fail "line $n: $name@$version is licensed $meta_license in the registry, not $license; review it and fix the lock"
		if ((update)); then
			integrity=$meta_integrity
		elif [ "$meta_integrity" != "$integrity" ]; then
			fail "line $n: $name@$version: the registry says $meta_integrity, the lock $integrity"
		fi
		file="$tmp/$n.tgz"
		curl -fsSL --retry 3 -o "$file" "$tarball"
		got="sha512-$(openssl dgst -sha512 -binary "$file" | base64 -w0)"
		[ "$got" = "$integrity" ] || fail "line $n: $tarball hashes to $got, want $integrity"
		mkdir -p "$tmp/$n"
		tar -xzf "$file" -C "$tmp/$n"
		unpacked[$name]="$tmp/$n"
		echo "vendor-web: $name@$version ($license) $integrity" >&2
		printf 'package %s %s %s %s\n' "$name" "$version" "$license" "$integrity" >>"$tmp/lock"
		;;
	file)
		name=$f1 src=$f2 dst=$f3 sum=$f4
		[ -n "$dst" ] && [ -z "$rest" ] || fail "line $n: want: file PACKAGE PATH-IN-TARBALL DESTINATION [SHA256]"
		[ -n "${unpacked[$name]:-}" ] || fail "line $n: file of $name before its package line"
		case "$dst" in /* | *..*) fail "line $n: destination $dst must be relative, without .." ;; esac
		from="${unpacked[$name]}/$src"
		[ -f "$from" ] || fail "line $n: $name has no $src"
		mkdir -p "$(dirname "$out/$dst")"
		cp "$from" "$out/$dst"
		got=$(sha256sum "$out/$dst" | cut -d' ' -f1)
		if ((update)); then
			sum=$got
		elif [ "$got" != "$sum" ]; then
			fail "line $n: $dst hashes to $got, the lock says $sum"
		fi
		printf 'file %s %s %s %s\n' "$name" "$src" "$dst" "$sum" >>"$tmp/lock"
		;;
	*)
		fail "line $n: unknown line kind $kind"
		;;
	esac
done <"$lock"
rm -rf "$dest"
cp -r "$out" "$dest"
if ((update)); then
	cp "$tmp/lock" "$lock"
	echo "vendor-web: rewrote $lock" >&2
fi
echo "vendor-web: $dest matches $lock" >&2
