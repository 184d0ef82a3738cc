package xmpp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Avatars: occupants advertise the SHA-1 of their vCard photo in their
// presence (XEP-0153, <x xmlns='vcard-temp:x:update'><photo/>). When a
// sender's hash is new, the bot asks for the vCard through the room (an
// IQ to the occupant JID, which the MUC hands to the account) and keeps
// the photo in the shared avatar store, where the Matrix adapter finds
// it for the sender's ghost.
const (
	nsVCard       = "vcard-temp"
	nsVCardUpdate = "vcard-temp:x:update"

	// maxAvatarFetches bounds the vCard requests under way or waiting;
	// beyond it presences are not acted on (the next one tries again).
	maxAvatarFetches = 64
	// avatarParallel is how many vCard requests are in flight at once.
	avatarParallel = 4
	// maxAvatarSeen bounds the per-sender hashes remembered; past it
	// the memory starts over and the store answers instead.
	maxAvatarSeen = 10000
	// vcardTimeout bounds one fetch, waiting for a slot included.
	vcardTimeout = 30 * time.Second
)

// maxVCardStanza bounds a vCard answer: a photo of adapters.MaxAvatarSize
// in base64 with line breaks, and room for the rest of the card. It is
// above max_stanza only for the answers the adapter asked for.
const maxVCardStanza = adapters.MaxAvatarSize*4/3 + adapters.MaxAvatarSize/16 + 64*1024

var (
	errAvatarTooLarge = errors.New("vCard photo over the avatar size limit")
	errNotImage       = errors.New("vCard photo is not an image")
)

// UseAvatars makes the adapter read its occupants' vCard avatars into st.
func (a *Adapter) UseAvatars(st adapters.AvatarStore) { a.avatars = st }

// parsePhoto reads a presence's XEP-0153 photo hash. ok is false when
// there is none to act on: no <photo/> ("not ready to say") or not a
// SHA-1. An empty photo is a hash of "": no avatar.
func parsePhoto(e *element) (hash string, ok bool) {
	p := e.child(nsVCardUpdate, "x").child(nsVCardUpdate, "photo")
	if p == nil {
		return "", false
	}
	h := strings.ToLower(strings.TrimSpace(p.text))
	if h == "" {
		return "", true
	}
	if len(h) != 40 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", false
	}
	return h, true
}

// vcardPhoto reads the photo of a vcard-temp vCard: no data when it has
// none. The media type is the one the bytes show (never the card's TYPE,
// which anyone can set), and it must be an image.
func vcardPhoto(v *element) (mime string, data []byte, err error) {
	if v == nil || v.name.Space != nsVCard || v.name.Local != "vCard" {
		return "", nil, nil // no vCard at all
	}
	p := v.child(nsVCard, "PHOTO")
	if p == nil {
		return "", nil, nil
	}
	b64 := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, p.child(nsVCard, "BINVAL").textOr(""))
	if b64 == "" {
		return "", nil, nil // an EXTVAL (a URL) is not fetched
	}
	if len(b64) > base64.StdEncoding.EncodedLen(adapters.MaxAvatarSize) {
		return "", nil, errAvatarTooLarge
	}
	data, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("vCard photo: %w", err)
	}
	mime, ok := adapters.ImageType(data)
	if !ok {
		return "", nil, errNotImage
	}
	return mime, data, nil
}

// wantAvatar starts fetching an occupant's avatar in the background when
// the hash they advertise is not the one last handled for the sender. It
// never waits: it is called from the read loop.
func (a *Adapter) wantAvatar(c *session, r *room, nick string, s bridge.Sender, hash string) {
	if a.avatars == nil {
		return
	}
	key := senderKey(s)
	a.mu.Lock()
	if seen, ok := a.avatarSeen[key]; ok && seen == hash || a.avatarBusy[key] {
		a.mu.Unlock()
		return
	}
	if len(a.avatarBusy) >= maxAvatarFetches {
		a.mu.Unlock()
		a.log.Debug("xmpp: too many avatar fetches under way; skipped", "sender", s.ID)
		return
	}
	a.avatarBusy[key] = true
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		handled := a.fetchAvatar(c, r, nick, s, hash)
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.avatarBusy, key)
		if handled {
			if len(a.avatarSeen) >= maxAvatarSeen {
				clear(a.avatarSeen)
			}
			a.avatarSeen[key] = hash
		}
	}()
}

// fetchAvatar brings the store up to hash for s. It reports whether the
// hash is dealt with (stored, or known to be wrong); false means it is
// worth trying again with the next presence.
func (a *Adapter) fetchAvatar(c *session, r *room, nick string, s bridge.Sender, hash string) bool {
	ctx, cancel := context.WithTimeout(c.ctx, vcardTimeout)
	defer cancel()
	log := a.log.With("sender", s.ID, "room", r.addr)
	if cur, ok, err := a.avatars.AvatarHash(ctx, s); err == nil && ok && cur == hash {
		return true // known from before a restart
	}
	if hash == "" {
		if err := a.avatars.PutAvatar(ctx, s, "", nil); err != nil {
			log.Warn("xmpp: cannot store that a sender has no avatar", "err", err)
			return false
		}
		return true
	}
	select {
	case a.avatarSem <- struct{}{}:
		defer func() { <-a.avatarSem }()
	case <-ctx.Done():
		return false
	}
	// Ours by now? A puppet's presence can reach the bot before the
	// puppet learns its nick; we never ask ourselves for a vCard.
	a.mu.Lock()
	own := nick == r.nick || r.puppetNicks[nick] != nil || r.occupants[nick] != nil && r.occupants[nick].own
	a.mu.Unlock()
	if own {
		return true
	}
	if a.testVCardFetch != nil {
		a.testVCardFetch(r.occupantJID(nick))
	}
	st, err := a.iqLimit(ctx, c, c.me, r.occupantJID(nick), "get", el(nsVCard, "vCard"), vcardTimeout, maxVCardStanza)
	if err != nil {
		log.Debug("xmpp: no answer to a vCard request", "err", err)
		return false
	}
	if st.typ == "error" {
		log.Debug("xmpp: vCard request failed", "err", st.err)
		return true
	}
	mime, data, err := vcardPhoto(st.payload)
	if err != nil {
		log.Debug("xmpp: vCard photo not usable", "err", err)
		return true
	}
	if got := adapters.AvatarHash(data); got != hash {
		log.Debug("xmpp: vCard photo does not match the advertised hash; ignored", "advertised", hash, "got", got)
		return true
	}
	if err := a.avatars.PutAvatar(ctx, s, mime, data); err != nil {
		log.Warn("xmpp: cannot store an avatar", "err", err)
		return false
	}
	log.Debug("xmpp: avatar stored", "mime", mime, "size", len(data))
	return true
}
