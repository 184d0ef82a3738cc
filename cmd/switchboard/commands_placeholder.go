package main

import (
	"context"
	"errors"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// PLACEHOLDER, to be deleted at integration: *service does not implement
// linkControl on this branch yet (links.go is written in parallel). Until
// it does, the chat commands see the file's links read-only: status works,
// link, unlink and relay say they are unavailable. The integrator deletes
// this file and passes s instead of fileLinksOnly{links} in start.
type fileLinksOnly struct{ *mapping.Links }

var errLinksReadOnly = errors.New("links cannot be changed at runtime in this build")

func (fileLinksOnly) LinkRooms(context.Context, bridge.RoomAddr, bridge.RoomAddr) (string, error) {
	return "", errLinksReadOnly
}

func (fileLinksOnly) UnlinkRoom(context.Context, bridge.RoomAddr) error { return errLinksReadOnly }

func (fileLinksOnly) SetRelay(context.Context, bridge.RoomAddr, bool) error { return errLinksReadOnly }

func (fileLinksOnly) Relayed(bridge.RoomAddr) bool { return false }
