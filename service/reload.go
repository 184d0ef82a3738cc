package service

import (
	"context"
	"fmt"
	"reflect"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/mapping"
)

// reload applies a re-read config file (SIGHUP). Links, their options
// (link_options), admins and the API token change at once; rooms that
// stay linked keep their connections.
// What needs a restart (networks, store, listeners, data_dir) keeps its
// running value and is logged. An error leaves everything as it was.
func (s *Service) reload(ctx context.Context, next *config.Config) error {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	cur := s.cfg
	merged := *next
	if restart := restartOnly(cur, next); len(restart) > 0 {
		s.log.Warn("reload: these settings take effect at the next restart", "keys", restart)
		merged.DataDir, merged.Store, merged.HTTP.Listen, merged.HTTP.ReadyGrace = cur.DataDir, cur.Store, cur.HTTP.Listen, cur.HTTP.ReadyGrace
		merged.Retention = cur.Retention
		merged.HTTP.PublicURL = cur.HTTP.PublicURL
		merged.Broker, merged.Networks, merged.Log = cur.Broker, cur.Networks, cur.Log
		merged.Cluster = cur.Cluster
	}
	links, err := effectiveLinks(&merged, s.overlay)
	if err != nil {
		return fmt.Errorf("config rejected, keeping the running one: %w", err)
	}
	// Checked before anything changes: an error leaves everything as it
	// was. The API's people are laid over the file's, as links are.
	people, err := effectivePeople(&merged, s.peopleOverlay, "")
	if err != nil {
		return fmt.Errorf("config rejected, keeping the running one: %w", err)
	}
	if _, err := mapping.NewPeople(people.PeopleMapping()); err != nil {
		return fmt.Errorf("config rejected, keeping the running one: %w", err)
	}
	if s.ignores != nil {
		// The networks' lists are part of networks: at a restart, as the
		// rest of them.
		if err := s.ignores.Replace(merged.IgnoreLists()); err != nil {
			return fmt.Errorf("config rejected, keeping the running one: %w", err)
		}
	}
	if err := s.usePeople(people); err != nil {
		return fmt.Errorf("config rejected, keeping the running one: %w", err)
	}
	s.cfg = &merged
	s.api.SetToken(merged.HTTP.APIToken)
	if s.onReload != nil {
		s.onReload(&merged)
	}
	if err := s.applyLinks(ctx, links, s.overlay.Relay); err != nil {
		return fmt.Errorf("links changed, but: %w", err)
	}
	s.log.Info("config reloaded", "links", len(links))
	return nil
}

// restartOnly lists the top-level keys whose change needs a restart.
func restartOnly(cur, next *config.Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	diff("data_dir", cur.DataDir, next.DataDir)
	diff("store", cur.Store, next.Store)
	diff("retention", cur.Retention, next.Retention)
	diff("http.listen", cur.HTTP.Listen, next.HTTP.Listen)
	diff("http.ready_grace", cur.HTTP.ReadyGrace, next.HTTP.ReadyGrace)
	// The adapters and the text links were handed it at start.
	diff("http.public_url", cur.HTTP.PublicURL, next.HTTP.PublicURL)
	diff("broker", cur.Broker, next.Broker)
	diff("cluster", cur.Cluster, next.Cluster)
	diff("networks", cur.Networks, next.Networks)
	diff("log", cur.Log, next.Log)
	return keys
}
