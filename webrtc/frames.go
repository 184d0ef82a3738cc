package webrtc

import (
	"bytes"
	"encoding/json"
)

// The frames a peer sends. Unknown fields are ignored.
type inFrame struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	ID      string `json:"id"`
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to"`
	Target  string `json:"target"`
	Key     string `json:"key"`
	Remove  bool   `json:"remove"`
	Active  bool   `json:"active"`
	// To is the recipient of a direct frame.
	To *directTo `json:"to"`
}

// Frames Switchboard sends besides events (which have the shape of
// wire.Event).
type welcomeFrame struct {
	Type    string     `json:"type"` // "welcome"
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Person  string     `json:"person,omitempty"` // verified by a personal token
	Network string     `json:"network"`
	Room    string     `json:"room"`
	Session string     `json:"session"`
	Peers   []peerInfo `json:"peers"`
	Limits  limitsInfo `json:"limits"`
}

type peerInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Person string `json:"person,omitempty"`
}

type limitsInfo struct {
	MaxMessage int `json:"max_message"`
	PerSecond  int `json:"per_second"`
	Burst      int `json:"burst"`
	// MaxFile is the largest file the peer may send (files.go), 0 when
	// it may send none.
	MaxFile int64 `json:"max_file"`
}

type errorFrame struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of error frames.
const (
	codeTooLarge     = "too_large"
	codeInvalidJSON  = "invalid_json"
	codeRateLimited  = "rate_limited"
	codeNotHello     = "not_hello"
	codeRoomFull     = "room_full"
	codeInvalid      = "invalid"
	codeNotAllowed   = "not_allowed"
	codeUnknownType  = "unknown_type"
	codeAlreadyHello = "already_hello"
	codeUnavailable  = "unavailable"
	codeRoomClosed   = "room_closed"
)

func encodeFrame(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
