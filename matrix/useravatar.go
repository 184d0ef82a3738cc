package matrix

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Matrix users' avatars, for the networks that show them on their
// puppets (XMPP vCards): when a Matrix user's event is bridged, the
// shared avatar store gets the user's current picture under the sender
// the events carry. What picture a user has is read from their member
// event in the room (pushed to us, cached in the state store), else from
// their profile; the mxc stored last is kept per user (memory, and State
// as "mxavatar:<user id>"), so a picture is downloaded once per change.
// All of it runs in the background: an event never waits for a picture.
const (
	mxAvatarPrefix = "mxavatar:"
	// maxAvatarJobs bounds the avatar downloads under way or waiting;
	// past it users are skipped until their next event.
	maxAvatarJobs = 64
	// avatarDownloads is how many downloads run at once.
	avatarDownloads = 4
	// maxUserAvatars bounds the users remembered in memory; past it the
	// memory starts over and State answers instead.
	maxUserAvatars = 10000
	// userAvatarTimeout bounds one user's lookup and download.
	userAvatarTimeout = time.Minute
)

// userAvatars is the adapter's memory of Matrix users' pictures.
type userAvatars struct {
	stored  map[id.UserID]id.ContentURIString // mxc in the store ("" for none)
	busy    map[id.UserID]bool
	retryAt map[id.UserID]time.Time
	sem     chan struct{}
}

func newUserAvatars() userAvatars {
	return userAvatars{
		stored:  map[id.UserID]id.ContentURIString{},
		busy:    map[id.UserID]bool{},
		retryAt: map[id.UserID]time.Time{},
		sem:     make(chan struct{}, avatarDownloads),
	}
}

// memberAvatar is the avatar_url a Matrix user has in a room, when it is
// known without asking the homeserver: from the member event at hand
// (the user's own), else the state store's copy of it.
func (a *Adapter) memberAvatar(ctx context.Context, evt *event.Event, user id.UserID) (id.ContentURIString, bool) {
	if evt.Type == event.StateMember && evt.StateKey != nil && id.UserID(*evt.StateKey) == user {
		if m := evt.Content.AsMember(); m.Membership == event.MembershipJoin {
			return m.AvatarURL, true
		}
	}
	if m, err := a.as.StateStore.TryGetMember(ctx, evt.RoomID, user); err == nil && m != nil && m.Membership == event.MembershipJoin {
		return m.AvatarURL, true
	}
	return "", false
}

// wantUserAvatar makes sure, in the background, that the store has the
// current picture of s, the Matrix user who sent evt. It never waits.
func (a *Adapter) wantUserAvatar(ctx context.Context, evt *event.Event, s bridge.Sender) {
	if a.avatars == nil || s.Network != a.name {
		return
	}
	user := id.UserID(s.ID)
	if a.isOurs(user) {
		return
	}
	mxc, known := a.memberAvatar(ctx, evt, user)
	a.mu.Lock()
	defer a.mu.Unlock()
	ua := &a.userAvatars
	had, seen := ua.stored[user]
	switch {
	case a.ctx == nil || a.stopped:
		return
	case ua.busy[user], time.Now().Before(ua.retryAt[user]):
		return
	case seen && (!known || had == mxc):
		// Without a member event the profile is asked once per run;
		// changes come as member events, which the state store keeps.
		return
	case len(ua.busy) >= maxAvatarJobs:
		a.log.Debug("matrix: too many avatar downloads under way; skipped", "user", user)
		return
	}
	ua.busy[user] = true
	bg := a.ctx
	a.avatarWG.Go(func() {
		err := a.syncUserAvatar(bg, s, mxc, known)
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(ua.busy, user)
		if err != nil {
			ua.retryAt[user] = time.Now().Add(avatarRetry)
			if bg.Err() == nil {
				a.log.Warn("matrix: cannot read a user's avatar; trying again later", "user", user, "err", err, "retry_in", avatarRetry)
			}
		}
	})
}

// syncUserAvatar brings the store up to the user's picture mxc (looked
// up in their profile when not known) and remembers it.
func (a *Adapter) syncUserAvatar(ctx context.Context, s bridge.Sender, mxc id.ContentURIString, known bool) error {
	ctx, cancel := context.WithTimeout(ctx, userAvatarTimeout)
	defer cancel()
	user := id.UserID(s.ID)
	if !known {
		u, err := a.as.BotClient().GetAvatarURL(ctx, user)
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		mxc = u.CUString()
	}
	key := mxAvatarPrefix + string(user)
	if v, ok, err := a.state.Get(ctx, key); err != nil {
		return err
	} else if ok && id.ContentURIString(v) == mxc {
		if _, has, err := a.avatars.AvatarHash(ctx, s); err == nil && has {
			a.rememberUserAvatar(user, mxc) // stored before a restart
			return nil
		}
	}
	mime, data, err := a.fetchAvatar(ctx, mxc)
	if err != nil {
		return err
	}
	if err := a.avatars.PutAvatar(ctx, s, mime, data); err != nil {
		return err
	}
	if err := a.state.Put(ctx, key, string(mxc)); err != nil {
		return err
	}
	a.rememberUserAvatar(user, mxc)
	a.log.Debug("matrix: user avatar stored", "user", user, "mxc", mxc, "mime", mime, "size", len(data))
	return nil
}

func (a *Adapter) rememberUserAvatar(user id.UserID, mxc id.ContentURIString) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ua := &a.userAvatars
	if _, ok := ua.stored[user]; !ok && len(ua.stored) >= maxUserAvatars {
		clear(ua.stored)
		clear(ua.retryAt)
	}
	ua.stored[user] = mxc
	delete(ua.retryAt, user)
}

// fetchAvatar downloads the picture mxc names, with the appservice
// token. A picture that cannot be shown (gone, too large, not an image)
// is no picture: the user's old one must not stand in for it. An error
// is a failure worth trying again.
func (a *Adapter) fetchAvatar(ctx context.Context, mxc id.ContentURIString) (string, []byte, error) {
	if mxc == "" {
		return "", nil, nil
	}
	u, err := mxc.Parse()
	if err != nil || !u.IsValid() {
		a.log.Debug("matrix: avatar_url is not an mxc URI; taken as none", "mxc", mxc)
		return "", nil, nil
	}
	select {
	case a.userAvatars.sem <- struct{}{}:
		defer func() { <-a.userAvatars.sem }()
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	resp, err := a.downloadMedia(ctx, u.Homeserver, u.FileID)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		a.log.Debug("matrix: avatar not on the homeserver; taken as none", "mxc", mxc)
		return "", nil, nil
	case resp.StatusCode != http.StatusOK:
		return "", nil, fmt.Errorf("avatar download: status %d", resp.StatusCode)
	}
	if resp.ContentLength > adapters.MaxAvatarSize {
		a.log.Debug("matrix: avatar over the size limit; taken as none", "mxc", mxc, "size", resp.ContentLength)
		return "", nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, adapters.MaxAvatarSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("avatar download: %w", err)
	}
	if len(data) > adapters.MaxAvatarSize {
		a.log.Debug("matrix: avatar over the size limit; taken as none", "mxc", mxc)
		return "", nil, nil
	}
	mime, ok := adapters.ImageType(data)
	if !ok {
		a.log.Debug("matrix: avatar is not an image; taken as none", "mxc", mxc, "type", mime)
		return "", nil, nil
	}
	return mime, data, nil
}
