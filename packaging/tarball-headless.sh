#!/bin/sh
# tarball-headless.sh TARBALL HEADLESS — adds the headless build HEADLESS to fyne's Linux tarball
# TARBALL (`fyne package -os linux`: authkeeper/Makefile and authkeeper/usr/local/...), in place, as
# usr/local/bin/authkeeper-headless: the program `authkeeper clients` writes into agents' stdio
# entries when it lies next to the tray binary (see packaging/nfpm.yaml). fyne's Makefile installs
# only its own files, so each of its lines that installs or removes the tray binary (bin/$(Exec):
# install, uninstall, user-install, user-uninstall) gets a twin for authkeeper-headless; the script
# fails when it does not find the four it knows, as a newer fyne may write them otherwise.
set -eu
tarball=$1
lean=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$tarball" -C "$tmp"
top=$tmp/authkeeper
[ -f "$top/Makefile" ] && [ -x "$top/usr/local/bin/authkeeper" ] || {
	echo "tarball-headless.sh: $tarball is not fyne's tarball of authkeeper" >&2
	exit 1
}
# Once only: a second run would add the Makefile's lines again.
[ ! -e "$top/usr/local/bin/authkeeper-headless" ] || {
	echo "tarball-headless.sh: $tarball already holds usr/local/bin/authkeeper-headless" >&2
	exit 1
}
install -m 0755 "$lean" "$top/usr/local/bin/authkeeper-headless"
awk '
	{ print }
	/^\t(install -Dm00755|-rm) .*bin\/\$\(Exec\)$/ {
		line = $0
		gsub(/\$\(Exec\)/, "authkeeper-headless", line)
		print line
		twins++
	}
	END { if (twins != 4) { printf "tarball-headless.sh: %d lines of fyne'\''s Makefile install or remove bin/$(Exec), want 4\n", twins > "/dev/stderr"; exit 1 } }
' "$top/Makefile" >"$tmp/Makefile.new"
mv "$tmp/Makefile.new" "$top/Makefile"
tar -cJf "$tarball.new" --owner=0 --group=0 --sort=name -C "$tmp" authkeeper
mv "$tarball.new" "$tarball"
