package irc

import "strings"

// caseMapping is how the server compares nicks and channel names, from
// ISUPPORT CASEMAPPING. Comparing with the wrong one would let a user
// named "Bot[1]" pass as our "bot{1}" (or the reverse).
type caseMapping uint8

const (
	caseRFC1459       caseMapping = iota // A-Z[]\~ = a-z{}|^ (the default)
	caseASCII                            // A-Z = a-z
	caseStrictRFC1459                    // A-Z[]\ = a-z{}|
)

func parseCaseMapping(s string) caseMapping {
	switch strings.ToLower(s) {
	case "ascii":
		return caseASCII
	case "strict-rfc1459", "rfc1459-strict":
		return caseStrictRFC1459
	}
	return caseRFC1459
}

func (cm caseMapping) fold(s string) string {
	// Most names are already folded; avoid the allocation then.
	i := 0
	for ; i < len(s); i++ {
		if cm.lower(s[i]) != s[i] {
			break
		}
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		b[i] = cm.lower(b[i])
	}
	return string(b)
}

func (cm caseMapping) lower(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case cm == caseASCII:
		return c
	case c == '[' || c == ']' || c == '\\':
		return c + ('{' - '[')
	case c == '~' && cm == caseRFC1459:
		return '^'
	}
	return c
}

func (cm caseMapping) equal(a, b string) bool {
	return len(a) == len(b) && cm.fold(a) == cm.fold(b)
}
