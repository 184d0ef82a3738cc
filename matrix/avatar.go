package matrix

import (
	"context"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Ghost avatars: another network (XMPP, from vCards) keeps its senders'
// pictures in the shared avatar store; a ghost gets its sender's picture
// when it speaks and the picture is not the one it was last given (kept
// in State as "avatar:<localpart>" → hash, and in memory).
const (
	avatarPrefix = "avatar:"
	// avatarRetry is how long a ghost whose avatar could not be set
	// waits before the next try, so that a failing homeserver does not
	// get an upload with every message.
	avatarRetry = time.Minute
)

// UseAvatars makes the adapter give ghosts the avatars in st.
func (a *Adapter) UseAvatars(st adapters.AvatarStore) { a.avatars = st }

// syncAvatar gives the ghost intent (of sender s, localpart local) the
// sender's avatar when it has a new one. It never fails the delivery it
// is part of: problems are logged and tried again later.
func (a *Adapter) syncAvatar(ctx context.Context, intent *appservice.IntentAPI, local string, s bridge.Sender) {
	if a.avatars == nil {
		return
	}
	log := a.log.With("ghost", intent.UserID, "sender", s.ID)
	hash, ok, err := a.avatars.AvatarHash(ctx, s)
	if err != nil {
		log.Warn("matrix: cannot read a sender's avatar", "err", err)
		return
	}
	if !ok {
		return // the sender's network has no avatars, or none yet
	}
	a.ghostMu.Lock()
	given, known := a.ghostAvatars[intent.UserID]
	wait := time.Now().Before(a.avatarRetryAt[intent.UserID])
	a.ghostMu.Unlock()
	if known && given == hash || wait {
		return
	}
	if !known {
		// First time since start: what State remembers. A ghost never
		// given one counts as given none, so "no avatar" costs nothing.
		v, _, err := a.state.Get(ctx, avatarPrefix+local)
		if err != nil {
			log.Warn("matrix: cannot read a ghost's avatar record", "err", err)
			return
		}
		a.rememberAvatar(intent.UserID, v)
		if v == hash {
			return
		}
	}
	av, ok, err := a.avatars.Avatar(ctx, s)
	if err == nil && ok {
		err = a.setAvatar(ctx, intent, av)
	}
	if err == nil && ok {
		err = a.state.Put(ctx, avatarPrefix+local, av.Hash)
	}
	if err != nil {
		a.ghostMu.Lock()
		a.avatarRetryAt[intent.UserID] = time.Now().Add(avatarRetry)
		a.ghostMu.Unlock()
		log.Warn("matrix: cannot set a ghost's avatar; trying again later", "err", err, "retry_in", avatarRetry)
		return
	}
	if ok {
		a.rememberAvatar(intent.UserID, av.Hash)
		log.Debug("matrix: ghost avatar set", "hash", av.Hash, "size", len(av.Data))
	}
}

// setAvatar uploads av as the ghost and makes it the ghost's picture; an
// empty one clears it.
func (a *Adapter) setAvatar(ctx context.Context, intent *appservice.IntentAPI, av adapters.Avatar) error {
	var mxc id.ContentURI
	if len(av.Data) > 0 {
		resp, err := intent.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: av.Data, ContentType: av.Mime, FileName: "avatar"})
		if err != nil {
			return err
		}
		mxc = resp.ContentURI
	}
	return intent.SetAvatarURL(ctx, mxc)
}

func (a *Adapter) rememberAvatar(user id.UserID, hash string) {
	a.ghostMu.Lock()
	defer a.ghostMu.Unlock()
	a.ghostAvatars[user] = hash
	delete(a.avatarRetryAt, user)
}
