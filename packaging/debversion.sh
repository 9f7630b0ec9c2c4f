#!/bin/sh
# debversion.sh VERSION — prints the Debian package version for VERSION, a `git describe --tags
# --always --dirty` string (what the Makefile's VERSION holds). Debian compares versions its own way
# (deb-version(7)), so git's forms are rewritten to sort as they should:
#   v1.2.3                  1.2.3
#   v1.2.3-rc.1             1.2.3~rc.1             a pre-release sorts before its release (~)
#   v1.2.3-4-gabc1234       1.2.3+4.gabc1234       commits after a tag sort after it (+)
#   v1.2.3-4-gabc1234-dirty 1.2.3+4.gabc1234.dirty
#   abc1234[-dirty]         0.0.0+gabc1234[.dirty] no tag yet: below any tagged release
# The result never holds a hyphen (that would start a Debian revision) and always starts with a digit.
set -eu
v=${1#v}
local=
case $v in *-dirty) local=dirty; v=${v%-dirty} ;; esac
# Commits after a tag: git appends -N-gHASH.
after=$(printf '%s' "$v" | sed -nE 's/^(.*)-([0-9]+)-g([0-9a-f]+)$/\2.g\3/p')
if [ -n "$after" ]; then
	v=$(printf '%s' "$v" | sed -E 's/-[0-9]+-g[0-9a-f]+$//')
	local=$after${local:+.$local}
fi
case $v in
[0-9]*.[0-9]*) ;;
*)
	# Not a version tag: a bare commit hash (no tag yet) or a tag that is not a version.
	local=g$v${local:+.$local}
	v=0.0.0
	;;
esac
# A tag's own pre-release (1.2.3-rc.1): the first hyphen becomes ~, later ones dots.
v=$(printf '%s' "$v" | sed -E 's/-/~/; s/-/./g; s/[^A-Za-z0-9.+~]+/./g')
local=$(printf '%s' "$local" | sed -E 's/[^A-Za-z0-9.~]+/./g')
printf '%s%s\n' "$v" "${local:++$local}"
