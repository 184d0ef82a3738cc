package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// relaySubjects is the prefix of the NATS subjects Relay publishes on.
const relaySubjects = "switchboard.relay."

// Relay carries data between the instances over core NATS pub/sub (not
// JetStream): at most once, nothing stored, for what each instance hands
// on to its own local clients as it happens (adapters.Relay). While the
// connection is down, what is published waits in the client's reconnect
// buffer and subscriptions come back by themselves when it is up again.
type Relay struct {
	nc  *nats.Conn
	log *slog.Logger
}

// subscribeWait bounds how long Subscribe waits for the server.
const subscribeWait = 2 * time.Second

// Relay is the Relay on this node's NATS connection.
func (n *Node) Relay() *Relay { return &Relay{nc: n.nc, log: n.log} }

// subject maps a topic, any string, to a NATS subject: a topic may hold
// dots, spaces and wildcards, which a subject may not, and be longer than
// a control line allows, so the subject is its hash. The topic travels in
// the data too (see frame) and is checked on receipt.
func subject(topic string) string {
	h := sha256.Sum256([]byte(topic))
	return relaySubjects + base64.RawURLEncoding.EncodeToString(h[:])
}

// frame is the topic's length (uvarint), the topic and the data.
func frame(topic string, data []byte) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(topic)+len(data))
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	return append(b, data...)
}

// unframe is the data of a frame on topic; ok is false for a frame of
// another topic (whose hash is the same) or a malformed one.
func unframe(topic string, b []byte) (data []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) || string(b[k:k+int(n)]) != topic {
		return nil, false
	}
	return b[k+int(n):], true
}

// Publish sends data to every subscriber of topic, this instance's too.
// It does not wait for the server: the client sends it soon, or after it
// reconnected.
func (r *Relay) Publish(ctx context.Context, topic string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := frame(topic, data)
	if max := r.nc.MaxPayload(); max > 0 && int64(len(b)) > max {
		return fmt.Errorf("cluster relay: %d bytes on %q exceed the server's max_payload %d", len(b), topic, max)
	}
	if err := r.nc.Publish(subject(topic), b); err != nil {
		return fmt.Errorf("cluster relay: publish on %q: %w", topic, err)
	}
	return nil
}

// Subscribe calls fn, one call at a time and in the order they were
// published by each publisher, with the data of every Publish on topic.
// After unsubscribe returns no call starts.
func (r *Relay) Subscribe(topic string, fn func(data []byte)) (unsubscribe func(), err error) {
	if fn == nil {
		return nil, errors.New("cluster relay: nil handler")
	}
	var stopped atomic.Bool
	sub, err := r.nc.Subscribe(subject(topic), func(m *nats.Msg) {
		if stopped.Load() {
			return
		}
		data, ok := unframe(topic, m.Data)
		if !ok {
			r.log.Warn("cluster relay: a message of another topic on this one's subject", "topic", topic)
			return
		}
		fn(data)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster relay: subscribe to %q: %w", topic, err)
	}
	// The server knows of the subscription when the flush returns, so
	// that what another instance publishes from now on reaches it. While
	// NATS is unreachable the client subscribes once it is back.
	r.nc.FlushTimeout(subscribeWait)
	return func() {
		if stopped.Swap(true) {
			return
		}
		// The connection may be closed by now; the subscription is gone
		// with it then.
		sub.Unsubscribe()
	}, nil
}
