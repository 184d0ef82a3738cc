package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem with one key of the configuration. Path is the
// key's position in the file: "networks.libera.server", "links.lobby[1]".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// errorList collects every problem so a user fixes them in one round.
type errorList struct {
	errs []*FieldError
	// quiet holds paths that already have an error from decoding: what
	// validation finds there or below (a zero value left by a bad value) is
	// a consequence, not news.
	quiet map[string]bool
}

func (l *errorList) add(path, format string, args ...any) {
	if l.covered(path) {
		return
	}
	l.errs = append(l.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addErr records an error that already names its path ("links.x[1]: ..."),
// as mapping.NewLinks returns them.
func (l *errorList) addErr(err error) {
	path, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		path, msg = "", err.Error()
	}
	l.add(path, "%s", msg)
}

// silence makes later errors at or below the paths recorded so far quiet.
func (l *errorList) silence() {
	if l.quiet == nil {
		l.quiet = map[string]bool{}
	}
	for _, e := range l.errs {
		l.quiet[e.Path] = true
	}
}

func (l *errorList) covered(path string) bool {
	for p := path; p != ""; p = parent(p) {
		if l.quiet[p] {
			return true
		}
	}
	return false
}

// parent strips a path's last key or index.
func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// err joins the errors sorted by path, indexes in numeric order, so that
// the output is the same on every run despite map iteration.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	es := slices.Clone(l.errs)
	slices.SortStableFunc(es, func(a, b *FieldError) int {
		if c := naturalCompare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Msg, b.Msg)
	})
	es = slices.CompactFunc(es, func(a, b *FieldError) bool { return *a == *b })
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return errors.Join(out...)
}

// naturalCompare orders strings with runs of digits compared as numbers,
// so links.x[2] comes before links.x[10].
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// Problems collects what is wrong with one network's keys, for a
// Section's Validate: keys are relative to the network, and every problem
// is reported at once, with its full path
// ("networks.libera.server: required").
type Problems struct {
	errs *errorList
	path string // the network's: "networks.libera"
}

// Add records a problem with key ("server", "sasl.user",
// "ice_servers[1].urls"; "" for the network itself).
func (p *Problems) Add(key, format string, args ...any) {
	path := p.path
	if key != "" {
		path = join(path, key)
	}
	p.errs.add(path, format, args...)
}
