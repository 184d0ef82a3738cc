package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"maunium.net/go/mautrix/appservice"

	"github.com/switchboard-chat/switchboard/bridge"
)

// maxUserID is the spec's limit on a user id's length.
const maxUserID = 255

// encodeLocal renders any string in the localpart characters: a-z, 0-9,
// "." and "-" stay, every other byte becomes "=xx" (lowercase hex). The
// result never holds "_" or "/", which the ghost template uses as
// separators, and decodeLocal reverses it.
func encodeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02x", c)
		}
	}
	return b.String()
}

// decodeLocal reverses encodeLocal.
func decodeLocal(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

// ghosts renders and parses ghost user ids from the ghost_localpart
// template ("sb_{network}_{id}").
type ghosts struct {
	prefix, middle, suffix string // the template's literal parts
	domain                 string
	re                     *regexp.Regexp // a ghost user id
}

func newGhosts(template, domain string) *ghosts {
	prefix, rest, _ := strings.Cut(template, "{network}")
	middle, suffix, _ := strings.Cut(rest, "{id}")
	g := &ghosts{prefix: prefix, middle: middle, suffix: suffix, domain: domain}
	g.re = regexp.MustCompile("^" + g.regex() + "$")
	return g
}

// regex matches every ghost user id, for the registration's namespace.
func (g *ghosts) regex() string {
	return "@" + regexp.QuoteMeta(g.prefix) + ".+" + regexp.QuoteMeta(g.middle) + ".+" +
		regexp.QuoteMeta(g.suffix) + ":" + regexp.QuoteMeta(g.domain)
}

// localpart is the ghost localpart of a sender: stable, and distinct for
// distinct senders. An id too long for a user id is shortened and given a
// hash of the whole; such a ghost maps back through State only.
func (g *ghosts) localpart(s bridge.Sender) string {
	net, id := encodeLocal(s.Network), encodeLocal(s.ID)
	room := maxUserID - len("@:") - len(g.domain) - len(g.prefix) - len(net) - len(g.middle) - len(g.suffix)
	if len(id) > room {
		sum := sha256.Sum256([]byte(s.Network + "\x00" + s.ID))
		h := "=h" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:20])
		keep := max(0, room-len(h))
		// Do not cut an escape in half.
		for keep > 0 && strings.Contains(id[max(0, keep-2):keep], "=") {
			keep--
		}
		id = id[:keep] + h
	}
	return g.prefix + net + g.middle + id + g.suffix
}

// isGhost reports whether a user id is in the ghost namespace.
func (g *ghosts) isGhost(userID string) bool { return g.re.MatchString(userID) }

// parse reads a ghost localpart back into the sender's network and id.
func (g *ghosts) parse(localpart string) (network, id string, ok bool) {
	rest, ok := strings.CutPrefix(localpart, g.prefix)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, g.suffix)
	if !ok {
		return "", "", false
	}
	// Encoded values hold no "_" or "/", and middle holds one of them:
	// the first occurrence of middle ends the network.
	encNet, encID, ok := strings.Cut(rest, g.middle)
	if !ok || encNet == "" || encID == "" {
		return "", "", false
	}
	if network, ok = decodeLocal(encNet); !ok {
		return "", "", false
	}
	if id, ok = decodeLocal(encID); !ok {
		return "", "", false
	}
	return network, id, true
}

// registerLocks serialize EnsureRegistered per user: mautrix reads an
// intent's Registered flag before taking its own lock, a data race when
// two lanes bring in a new ghost at once (a membership and a direct
// message of one sender). Striped by user, so that new ghosts of
// different senders still register side by side.
var registerLocks [64]sync.Mutex

// ensureRegistered is intent.EnsureRegistered under its user's lock.
func ensureRegistered(ctx context.Context, intent *appservice.IntentAPI) error {
	h := fnv.New32a()
	h.Write([]byte(intent.UserID))
	mu := &registerLocks[h.Sum32()%uint32(len(registerLocks))]
	mu.Lock()
	defer mu.Unlock()
	return intent.EnsureRegistered(ctx)
}
