package oauth

import (
	"net/http"
	"strings"
)

// Challenge is one WWW-Authenticate challenge (RFC 9110 §11.6.1).
type Challenge struct {
	// Scheme is lower-cased, e.g. "bearer".
	Scheme string
	// Params maps lower-cased parameter names to their unquoted values; a token68 is stored under "".
	Params map[string]string
}

// Scopes returns the space-separated `scope` parameter as a list.
func (c Challenge) Scopes() []string { return strings.Fields(c.Params["scope"]) }

// maxChallengeHeader bounds the work done on a hostile header.
const maxChallengeHeader = 8 << 10

// ParseWWWAuthenticate parses WWW-Authenticate header values leniently: it never fails, skips what it
// cannot read, and accepts what real servers send — unescaped quotes inside quoted values, missing
// commas, stray whitespace. A quoted value ends at the first quote followed by a comma or the end.
func ParseWWWAuthenticate(headers []string) []Challenge {
	var out []Challenge
	for _, h := range headers {
		if len(h) > maxChallengeHeader {
			h = h[:maxChallengeHeader]
		}
		p := &challengeParser{s: h}
		out = append(out, p.parse()...)
	}
	return out
}

// BearerChallenge returns the first Bearer challenge of a response, if any.
func BearerChallenge(h http.Header) (Challenge, bool) {
	for _, c := range ParseWWWAuthenticate(h.Values("WWW-Authenticate")) {
		if c.Scheme == "bearer" {
			return c, true
		}
	}
	return Challenge{}, false
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) parse() []Challenge {
	var out []Challenge
	cur := -1 // index in out of the challenge being filled
	for {
		sawComma := p.skip(" \t,")
		if p.i >= len(p.s) {
			return out
		}
		tok := p.token()
		if tok == "" {
			p.i++ // an unexpected character: skip it
			continue
		}
		p.skip(" \t")
		switch {
		case p.i < len(p.s) && p.s[p.i] == '=':
			p.i++
			p.skip(" \t")
			v := p.value()
			if cur >= 0 {
				out[cur].Params[strings.ToLower(tok)] = v
			} // a parameter before any scheme is dropped
		case cur >= 0 && !sawComma && len(out[cur].Params) == 0:
			out[cur].Params[""] = tok // token68, e.g. "Basic dXNlcg"
		default:
			out = append(out, Challenge{Scheme: strings.ToLower(tok), Params: map[string]string{}})
			cur = len(out) - 1
		}
	}
}

// skip advances past characters in set and reports whether it passed a comma.
func (p *challengeParser) skip(set string) bool {
	comma := false
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		comma = comma || p.s[p.i] == ','
		p.i++
	}
	return comma
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) value() string {
	if p.i >= len(p.s) {
		return ""
	}
	if p.s[p.i] != '"' {
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != ' ' && p.s[p.i] != '\t' {
			p.i++
		}
		return p.s[start:p.i]
	}
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == '"' && p.closes():
			p.i++
			return b.String()
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return b.String() // unterminated: take the rest
}

// closes reports whether the quote at p.i ends the value: what follows is the end, a comma, or (a
// missing comma) whitespace then a `name=` parameter.
func (p *challengeParser) closes() bool {
	rest := strings.TrimLeft(p.s[p.i+1:], " \t")
	if rest == "" || rest[0] == ',' {
		return true
	}
	if len(rest) == len(p.s[p.i+1:]) {
		return false // text right after the quote: an unescaped quote inside the value
	}
	j := 0
	for j < len(rest) && isTokenChar(rest[j]) {
		j++
	}
	return j > 0 && j < len(rest) && rest[j] == '='
}

// isTokenChar reports RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/", c) >= 0 // '/' tolerated for token68
}
