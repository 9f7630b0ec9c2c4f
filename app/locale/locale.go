// Package locale keeps fyne from logging "Error parsing user locale C" at start under a "C.UTF-8"
// (or "POSIX.*") locale, the default of Debian containers, CI runners and many servers.
//
// fyne's lang package asks github.com/jeandeaual/go-locale for the user's language in its init, before
// main runs: go-locale treats "C" and "POSIX" as "no language" but passes "C.UTF-8" through, and fyne
// then fails to parse its language part "C" and logs three lines to stderr — on every command, even
// `authkeeper version`. This package's init sets LANGUAGE=en when the locale is C.* or POSIX.* and
// LANGUAGE is unset: go-locale consults LANGUAGE for such a locale and answers "en", which is also what
// a C locale means for messages (untranslated English), so nothing the user sees changes, and child
// processes (xdg-open, the browser) get no language they did not have.
//
// It must run before fyne's lang package: main imports it (blank), and Go initialises packages in the
// order of their import paths among those whose imports are done (the spec, "Package initialization",
// since Go 1.21). github.com/jeandeaual/go-locale, which fyne's lang imports, imports exactly os and
// strings; this package imports a subset of those and its path sorts before go-locale's, so it is
// ready no later and chosen first. Keep it that way: an import go-locale does not have could let
// go-locale, and fyne's lang after it, run first.
// TestCLocaleStartsQuietly (main_test.go) runs the real binary under LANG=C.UTF-8 to keep that true.
package locale

import (
	"os"
	"strings"
)

func init() {
	if os.Getenv("LANGUAGE") != "" {
		return
	}
	if posixMessages(messagesLocale(os.Getenv)) {
		os.Setenv("LANGUAGE", "en")
	}
}

// messagesLocale is the locale that names the language of messages: the first of LC_ALL, LC_MESSAGES
// and LANG that is set, as POSIX and go-locale read them.
func messagesLocale(getenv func(string) string) string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if l := getenv(v); l != "" {
			return l
		}
	}
	return ""
}

// posixMessages reports whether locale is the C/POSIX locale with an encoding or modifier ("C.UTF-8",
// "C.utf8", "POSIX.UTF-8", "C@euro"): the spellings go-locale passes through and fyne cannot parse.
// Plain "C" and "POSIX" need nothing: go-locale already answers "no language" for them.
func posixMessages(locale string) bool {
	base, _, found := strings.Cut(locale, ".")
	if !found {
		base, _, found = strings.Cut(locale, "@")
	}
	return found && (base == "C" || base == "POSIX")
}
