package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/wire"
)

// Via marks payloads published by Switchboard (wire.Via).
const Via = wire.Via

// Payload is what a device published, after parsing.
type Payload struct {
	Text    string
	Name    string // "" when the device gave none
	ReplyTo string // a bridge event id, or ""
	ID      string // the device's own message id, or ""
	JSON    bool   // whether it came as a JSON object
}

var (
	// ErrMalformed is wrapped by every ParsePayload error except ErrLoop.
	ErrMalformed = errors.New("malformed payload")
	// ErrLoop is returned for JSON payloads marked "via": "switchboard".
	ErrLoop = errors.New("payload was published by a bridge")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParsePayload reads a device's payload. A payload whose first character
// other than white space is "{" is JSON and must be a well-formed message
// object:
//
//	{"text": "...", "name": "...", "reply_to": "<event id>", "id": "<device message id>"}
//
// with a non-empty "text" string and, when present, string values for the
// others ("id" may also be an integer, as device counters often are).
// Unknown keys are ignored so devices can send more than we read. A
// payload that starts with "{" and does not parse is malformed, not text:
// a truncated or mistyped object would otherwise reach the rooms as
// source code. Anything else that is valid UTF-8 is the message text
// itself, without trailing line breaks. Error messages never quote the
// payload: they end up in logs.
func ParsePayload(b []byte) (Payload, error) {
	if !utf8.Valid(b) {
		return Payload{}, malformed("invalid UTF-8")
	}
	if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return Payload{}, malformed("not a JSON object: %s", jsonProblem(err))
		}
		return parseObject(obj)
	}
	text := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(text) == "" {
		return Payload{}, malformed("empty text")
	}
	return Payload{Text: text}, nil
}

func parseObject(obj map[string]json.RawMessage) (Payload, error) {
	p := Payload{JSON: true}
	via, err := stringField(obj, "via")
	if err != nil {
		return Payload{}, err
	}
	if via == Via {
		return Payload{}, ErrLoop
	}
	if _, ok := obj["text"]; !ok {
		return Payload{}, malformed(`missing "text"`)
	}
	if p.Text, err = stringField(obj, "text"); err != nil {
		return Payload{}, err
	}
	if strings.TrimSpace(p.Text) == "" {
		return Payload{}, malformed(`empty "text"`)
	}
	if p.Name, err = stringField(obj, "name"); err != nil {
		return Payload{}, err
	}
	if p.ReplyTo, err = stringField(obj, "reply_to"); err != nil {
		return Payload{}, err
	}
	if p.ID, err = idField(obj["id"]); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// stringField returns obj[key] as a string; absent and null are "".
func stringField(obj map[string]json.RawMessage, key string) (string, error) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed("%q is not a string", key)
	}
	return s, nil
}

func idField(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
	} else {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil && !strings.ContainsAny(n.String(), ".eE") {
			return n.String(), nil
		}
	}
	return "", malformed(`"id" is neither a string nor an integer`)
}

// jsonProblem says what is wrong with a payload's JSON without quoting
// it (encoding/json's messages quote a character of it).
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	switch {
	case !errors.As(err, &syntax):
		return "not an object"
	case syntax.Error() == "unexpected end of JSON input":
		return "it ends before the object does"
	}
	return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
}
