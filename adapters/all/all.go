// Package all registers every network type Switchboard ships: importing
// it (for its side effects) makes them all known to the configuration,
// the service and the command line. A new network type is a package that
// calls adapters.Register from init, and one import line here.
package all

//go:generate go run ./genexample -o ../../switchboard.example.yaml

import (
	_ "github.com/switchboard-chat/switchboard/irc"
	_ "github.com/switchboard-chat/switchboard/matrix"
	_ "github.com/switchboard-chat/switchboard/mqtt"
	_ "github.com/switchboard-chat/switchboard/webrtc"
	_ "github.com/switchboard-chat/switchboard/xmpp"
)
