package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/every"
	"github.com/switchboard-chat/switchboard/mapping"
)

// failureNotices tells a person, once, on their home network, when one of
// their own accounts fails (a refused password or token, a nick in use):
// their bot there writes to them directly. It reads the adapters'
// personal states (adapters.PersonalStatuser), the ones /api/status
// shows, so that every network's failures are told the same way and in
// one place; an account is told of again only after it has been up.
type failureNotices struct {
	nets   *netSet
	people *mapping.People
	log    *slog.Logger
	// told holds the accounts (network, person) told of since they were
	// last up. Only the polling goroutine touches it.
	told map[[2]string]bool
}

// noticeEvery is how often the personal states are read: a login fails
// in seconds, and a notice a second late is as good.
const noticeEvery = time.Second

// run polls until ctx ends.
func (f *failureNotices) run(ctx context.Context) {
	every.Run(ctx, noticeEvery, func() { f.poll(ctx) })
}

func (f *failureNotices) poll(ctx context.Context) {
	nets := f.nets.all()
	names := make([]string, 0, len(nets))
	for name := range nets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, network := range names {
		ps, ok := nets[network].(adapters.PersonalStatuser)
		if !ok {
			continue
		}
		for person, state := range ps.PersonalStatus() {
			key := [2]string{network, person}
			why, failed := adapters.PersonalFailure(state)
			switch {
			case state == "connected":
				delete(f.told, key)
			case failed && !f.told[key]:
				if f.tell(ctx, network, person, why) {
					f.told[key] = true
				}
			}
		}
	}
}

// tell writes the notice; false means try again at the next poll (the
// home network is down for now).
func (f *failureNotices) tell(ctx context.Context, network, person, why string) bool {
	p, ok := f.people.Person(person)
	if !ok {
		return true // gone in a reload
	}
	to := p.Accounts[p.Home]
	home := f.nets.get(p.Home)
	bot, ok := home.(bridge.BotSender)
	if !ok || to == "" {
		f.log.Warn("personal account failed; no home network to tell them on", "person", person, "network", network, "home", p.Home)
		return true
	}
	if c, ok := home.(adapters.Connected); ok && !c.Connected() {
		return false // quietly, until it is back
	}
	text := fmt.Sprintf("Switchboard cannot use your account %s on %s: %s. Until it works again, what you say goes out there through a puppet.",
		p.Accounts[network], network, why)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bot.SendAsBot(sctx, "", to, text); err != nil {
		f.log.Warn("cannot tell a person their account failed", "person", person, "network", network, "home", p.Home, "err", err)
		return errors.Is(err, bridge.ErrPermanent)
	}
	f.log.Info("told a person their account failed", "person", person, "network", network, "home", p.Home)
	return true
}
