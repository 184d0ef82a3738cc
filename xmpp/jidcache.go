package xmpp

import (
	"sync"

	"mellium.im/xmpp/jid"
)

// maxCachedJIDs and maxCachedJIDLen bound parsedJIDs: a peer sending
// ever new addresses only pushes out the oldest, and long ones are not
// kept.
const (
	maxCachedJIDs   = 4096
	maxCachedJIDLen = 256
)

// parsedJIDs keeps the JIDs parsed lately. The same few (a room, its
// occupants, our puppets and bot) come and go in every stanza, and
// parsing one runs each part through PRECIS and IDNA: that was a tenth
// of handling a groupchat message.
var parsedJIDs = struct {
	sync.Mutex
	*lru[string, jid.JID]
}{lru: newLRU[string, jid.JID](maxCachedJIDs)}

// parseJID is jid.Parse, remembering what it parsed.
func parseJID(s string) (jid.JID, error) {
	parsedJIDs.Lock()
	j, ok := parsedJIDs.get(s)
	parsedJIDs.Unlock()
	if ok {
		return j, nil
	}
	j, err := jid.Parse(s)
	if err != nil || len(s) > maxCachedJIDLen {
		return j, err
	}
	parsedJIDs.Lock()
	parsedJIDs.put(s, j)
	parsedJIDs.Unlock()
	return j, nil
}
