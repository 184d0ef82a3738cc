package matrix

import (
	"context"
	"strings"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"
)

// A homeserver evaluates every room message against the push rules of
// each of its users in the room, and files a notification for each user
// the default rules notify: with a ghost posting, that is the bot and
// every other ghost in the room, each a few writes to the homeserver's
// database (on Dendrite, the notification, its count and the sync
// stream's copy) that nobody ever reads. Measured on Dendrite with one
// Matrix user in the room, that was about a third of the homeserver's
// work per relayed message. So the bot and every ghost turn on their
// master push rule (.m.rule.master: no notifications at all), once per
// user, remembered in State.

// masterRule is the push rule that, on, stops all of a user's
// notifications.
const masterRule = ".m.rule.master"

// quietPrefix starts the State keys of users whose master rule is on.
const quietPrefix = "quiet:"

// quiet turns on intent's master push rule, unless it did so before. A
// failure is logged and does not stop delivery: the notifications cost
// the homeserver, not the users.
func (a *Adapter) quiet(ctx context.Context, intent *appservice.IntentAPI) {
	u := intent.UserID
	a.ghostMu.Lock()
	done := a.quieted[u]
	a.ghostMu.Unlock()
	if done {
		return
	}
	key := quietPrefix + string(u)
	if _, ok, err := a.state.Get(ctx, key); err == nil && ok {
		a.setQuieted(u)
		return
	}
	err := intent.SetPushRuleEnabled(ctx, "global", pushrules.OverrideRule, masterRule, true)
	if answerLost(err) {
		if ctx.Err() == nil {
			a.log.Warn("matrix: cannot turn a user's notifications off; trying again with its next message", "user", u, "err", err)
		}
		return
	}
	// Answered: done, or refused (a homeserver without push rules), in
	// which case asking again with every message would not help.
	a.setQuieted(u)
	if err != nil {
		a.log.Warn("matrix: the homeserver refused to turn a user's notifications off", "user", u, "err", err)
		return
	}
	if err := a.state.Put(ctx, key, "1"); err != nil {
		a.log.Warn("matrix: cannot remember a user's notifications are off", "user", u, "err", err)
	}
}

// quietGhosts quiets every ghost made before (their records are in
// State): a ghost that only sits in a room, made before Switchboard
// quieted ghosts, would otherwise cost the homeserver a notification per
// message until it next speaks. Once asked, a ghost is not asked again.
func (a *Adapter) quietGhosts(ctx context.Context) {
	var locals []string
	err := a.state.Scan(ctx, "ghost:", func(key, _ string) bool {
		locals = append(locals, strings.TrimPrefix(key, "ghost:"))
		return true
	})
	if err != nil {
		a.log.Warn("matrix: cannot list the ghosts to turn their notifications off", "err", err)
		return
	}
	for _, local := range locals {
		if ctx.Err() != nil {
			return
		}
		if intent := a.as.Intent(id.NewUserID(local, a.cfg.Domain)); intent != nil {
			a.quiet(ctx, intent)
		}
	}
}

func (a *Adapter) setQuieted(u id.UserID) {
	a.ghostMu.Lock()
	a.quieted[u] = true
	a.ghostMu.Unlock()
}
