package locale

import "testing"

func TestPOSIXMessagesMatchesOnlyTheSpellingsFyneCannotParse(t *testing.T) {
	for _, tc := range []struct {
		locale string
		want   bool
	}{
		{"C.UTF-8", true},
		{"C.utf8", true},
		{"POSIX.UTF-8", true},
		{"C@euro", true},
		{"C", false},     // go-locale already answers "no language"
		{"POSIX", false}, // likewise
		{"", false},
		{"en_US.UTF-8", false},
		{"de_DE@euro", false},
		{"Catalan.UTF-8", false},
	} {
		if got := posixMessages(tc.locale); got != tc.want {
			t.Errorf("posixMessages(%q) = %v, want %v", tc.locale, got, tc.want)
		}
	}
}

func TestMessagesLocaleTakesLCALLThenLCMESSAGESThenLANG(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LC_ALL": "C.UTF-8", "LC_MESSAGES": "de_DE.UTF-8", "LANG": "fr_FR.UTF-8"}, "C.UTF-8"},
		{map[string]string{"LC_MESSAGES": "de_DE.UTF-8", "LANG": "C.UTF-8"}, "de_DE.UTF-8"},
		{map[string]string{"LANG": "C.UTF-8"}, "C.UTF-8"},
		{map[string]string{}, ""},
	} {
		if got := messagesLocale(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("messagesLocale(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
