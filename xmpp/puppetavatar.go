package xmpp

import (
	"context"
	"encoding/base64"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Puppet avatars (component mode): a puppet shows its sender's picture
// from the shared avatar store (a Matrix user's, say) the XEP-0153 way.
// Its room presences advertise the picture's SHA-1, and the component
// answers vCard requests to the puppet's JID with the picture: a MUC
// hands an occupant's vCard request to the occupant's real JID, which
// for a puppet is on our domain. When the picture changes while a puppet
// is in a room, the puppet's next activity there (a message, a
// reaction...) first sends a fresh presence; there is no presence
// without activity, which would mean a presence per room per change,
// for puppets that may never speak again.

// photoAd is what a puppet's presence in a room advertised: a hash ("":
// no avatar), or nothing when known is false (the store knows nothing).
type photoAd struct {
	hash  string
	known bool
}

// photoUpdate is the presence element for s's stored avatar: its hash,
// an empty photo when the store says s has none, and nil when it knows
// nothing of s (XEP-0153: no x element, nothing is claimed).
func (a *Adapter) photoUpdate(ctx context.Context, s bridge.Sender) (*element, photoAd) {
	if a.avatars == nil || !a.component {
		return nil, photoAd{}
	}
	hash, ok, err := a.avatars.AvatarHash(ctx, s)
	if err != nil {
		a.log.Warn("xmpp: cannot read a sender's avatar for their puppet", "sender", s.ID, "network", s.Network, "err", err)
		return nil, photoAd{}
	}
	if !ok {
		return nil, photoAd{}
	}
	return el(nsVCardUpdate, "x").add(el(nsVCardUpdate, "photo").withText(hash)), photoAd{hash: hash, known: true}
}

// withPhoto appends x (when there is one) to a presence's elements.
func withPhoto(extra []*element, x *element) []*element {
	if x == nil {
		return extra
	}
	return append(extra, x)
}

// refreshPhoto sends a fresh presence for p in r when its sender's avatar
// is not the one its presence there advertised. It is called on the
// puppet's activity, before what it says.
func (a *Adapter) refreshPhoto(ctx context.Context, c *session, r *room, p *puppet) {
	if a.avatars == nil || !a.component {
		return
	}
	a.mu.Lock()
	m := p.rooms[r.key]
	if m == nil || !m.joined || m.joining != nil {
		a.mu.Unlock()
		return
	}
	s, nick, had := p.sender, m.nick, m.photo
	show, status := p.show, p.status
	a.mu.Unlock()
	x, now := a.photoUpdate(ctx, s)
	if !now.known || now == had {
		return // nothing new to say
	}
	e := a.presence(p.jid, r.occupantJID(nick), "")
	e.add(withPhoto(presenceShow(show, status), x)...)
	if err := a.write(c, e); err != nil {
		a.log.Debug("xmpp: cannot send a puppet's new avatar hash", "room", r.addr, "puppet", p.jid.String(), "err", err)
		return
	}
	a.mu.Lock()
	if p.rooms[r.key] == m && m.nick == nick {
		m.photo = now
	}
	a.mu.Unlock()
	a.log.Debug("xmpp: puppet presence with a new avatar hash", "room", r.addr, "puppet", p.jid.String(), "hash", now.hash)
}

// answerVCard answers a vCard request to the puppet of s with its stored
// picture (an empty card when there is none), in the background: the
// store may have to read its database, and this is the read loop.
func (a *Adapter) answerVCard(c *session, st *stanza, reply *element, s bridge.Sender, name string) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, vcardTimeout)
		defer cancel()
		card := el(nsVCard, "vCard")
		if name != "" {
			card.add(el(nsVCard, "FN").withText(name))
		}
		if a.avatars != nil {
			av, ok, err := a.avatars.Avatar(ctx, s)
			if err != nil {
				a.log.Warn("xmpp: cannot read a puppet's avatar for a vCard request", "sender", s.ID, "network", s.Network, "err", err)
				a.answerError(c, st, "wait", "internal-server-error")
				return
			}
			if ok && len(av.Data) > 0 {
				card.add(vcardPhotoElement(av.Mime, av.Data))
			}
		}
		reply.add(card)
		if err := a.write(c, reply); err != nil {
			a.log.Debug("xmpp: cannot answer a vCard request", "err", err)
		}
	}()
}

// vcardPhotoElement is a vCard's PHOTO holding data.
func vcardPhotoElement(mime string, data []byte) *element {
	return el(nsVCard, "PHOTO").add(
		el(nsVCard, "TYPE").withText(mime),
		el(nsVCard, "BINVAL").withText(base64.StdEncoding.EncodeToString(data)),
	)
}
