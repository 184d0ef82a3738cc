// Package mqtt is the MQTT adapter. A room is a topic root R: devices
// publish chat lines to R/in/<device id> (plain UTF-8 text, or a JSON
// object, see ParsePayload) and Switchboard publishes every bridged event as
// JSON (see OutEvent) to R/out/<origin network>/<sender id>.
//
// Delivery is at least once in both directions. The adapter keeps a
// persistent session (clean session off, stable client id, QoS 1), so the
// broker holds messages for it while it is away, and it acknowledges an
// inbound message only after the router has committed it. Redeliveries
// carry the same device message id ("id" in JSON) and are deduplicated by
// the store; plain text has no id and may, rarely, arrive twice.
package mqtt

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/internal/fence"
)

//go:embed example.yaml
var example string

func init() {
	adapters.Register(adapters.Type{
		NetworkType: config.NetworkType{
			Name:    "mqtt",
			Config:  func() config.Section { return new(Config) },
			Example: example,
			Rooms:   "MQTT rooms are topic roots (no + or # wildcards, no leading or trailing /, not starting with $).",
			// A device may be its person's home (a person with only a
			// phone that posts has nowhere else), but MQTT has no direct
			// messages: the router fails those for good.
			Accounts: &config.AccountRules{HomeNote: "mqtt has no direct messages: what is written to their accounts that Switchboard holds elsewhere, and Switchboard's notices, cannot reach them there"},
		},
		New: New,
	})
}

const (
	qos = 1
	// DefaultMaxPayload is used when max_payload is not set.
	DefaultMaxPayload = 65536
	// defaultMaxQueuedQoS0 bounds the inbound queue for QoS 0 messages,
	// which the broker does not flow-control (QoS 1 is bounded by its
	// in-flight window). Past it QoS 0 messages are dropped, as QoS 0
	// allows.
	defaultMaxQueuedQoS0 = 1024
)

// Drop reasons counted by Dropped.
const (
	DropMalformed = "malformed" // invalid UTF-8, empty, JSON that does not parse, or a bad object
	DropOversize  = "oversize"  // larger than max_payload
	DropLoop      = "loop"      // JSON marked "via": "switchboard"
	DropRetained  = "retained"  // a retained message replayed on (re)subscribe
	DropTopic     = "topic"     // not of the form R/in/<device>
	DropOverflow  = "overflow"  // QoS 0 while the inbound queue is full
	DropLeft      = "left"      // for a room left since (see Leave)
)

// Adapter bridges the rooms of one MQTT broker.
type Adapter struct {
	name       string
	broker     *url.URL
	clientID   string
	username   string
	password   string
	maxPayload int
	log        *slog.Logger
	timeouts   timeouts
	// fence (cluster mode) is checked before every dial and every write
	// to the broker (see opener). Set before Start, then read only.
	fence *fence.Fence

	mu    sync.Mutex
	rooms map[string]bool
	// left holds the rooms left and not joined again: the broker's
	// session may still hold their subscription (left while
	// disconnected, or an UNSUBSCRIBE crossing a reconnect), and their
	// messages may already be queued here.
	left   map[string]bool
	client paho.Client // the newest, connected or still connecting; Stop disconnects it
	live   *conn       // the open connection, nil while there is none
	// subscribed: live is open and has subscribed every joined room.
	subscribed atomic.Bool
	in         bridge.Inbound
	ctx        context.Context // lives from Start to Stop
	cancel     context.CancelFunc
	started    bool
	stopped    bool
	wg         sync.WaitGroup // our goroutines, including paho callbacks in progress
	dropped    map[string]uint64
	drops      brokerDrops

	// gen counts connections. A QoS 1 message received on an earlier
	// connection can no longer be acknowledged (paho drops acks for a dead
	// connection) and the broker will send it again on the new one, so it
	// is skipped instead of being accepted twice.
	gen atomic.Uint64

	qmu     sync.Mutex
	queue   []received
	maxQoS0 int
	wake    chan struct{}

	// acks holds messages accepted and not yet acknowledged, in the order
	// they came; ackInOrder sends their PUBACKs once they are on disk.
	acks  chan pendingAck
	acked atomic.Uint64 // acknowledgements sent, for tests
}

// pendingAck is a message waiting for its acknowledgement.
type pendingAck struct {
	r received
	// durable returns once the message's commit is on disk; nil for a
	// message dropped on purpose, acknowledged as soon as its turn comes.
	durable func(now bool) error
}

// maxUnacked bounds the messages accepted ahead of their acknowledgement;
// brokers keep far fewer in flight to one client.
const maxUnacked = 1024

type received struct {
	msg paho.Message
	gen uint64
}

// New builds an MQTT adapter from its network config.
func New(name string, n *config.Network, log *slog.Logger) (adapters.Adapter, error) {
	var m *Config
	if n != nil {
		m, _ = n.Section.(*Config)
	}
	if m == nil {
		return nil, fmt.Errorf("networks.%s: no mqtt settings", name)
	}
	// The same check as loading the config, for a network built in code.
	if err := checkBrokerURL(m.Broker); err != nil {
		return nil, fmt.Errorf("networks.%s.broker: %w", name, err)
	}
	u, err := url.Parse(m.Broker)
	if err != nil {
		return nil, fmt.Errorf("networks.%s.broker: not a URL", name)
	}
	if m.MaxPayload < 0 {
		return nil, fmt.Errorf("networks.%s.max_payload: negative", name)
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Adapter{
		name:       name,
		broker:     u,
		clientID:   m.ClientID,
		username:   m.Username,
		password:   m.Password,
		maxPayload: m.MaxPayload,
		log:        log,
		timeouts:   defaultTimeouts,
		rooms:      map[string]bool{},
		left:       map[string]bool{},
		dropped:    map[string]uint64{},
		wake:       make(chan struct{}, 1),
		acks:       make(chan pendingAck, maxUnacked),
		maxQoS0:    defaultMaxQueuedQoS0,
	}
	if a.clientID == "" {
		a.clientID = "switchboard-" + name
	}
	if a.maxPayload == 0 {
		a.maxPayload = DefaultMaxPayload
	}
	return a, nil
}

func (a *Adapter) Network() string { return a.name }

// Connected reports whether the broker connection is up right now.
// Connected reports a connection whose subscriptions are in place: from
// then on nothing a device publishes to a joined room passes us by.
func (a *Adapter) Connected() bool { return a.subscribed.Load() }

// conn is one broker connection with a paho client of its own. paho keeps
// per-client state across reconnects (message ids, tokens, its store) and
// on resuming it completes the tokens of stored publishes as if they were
// acknowledged, racing new publishes for the same ids (a close of a closed
// channel in paho v1.5.1). A fresh client per connection carries nothing
// of a dead connection into the next; the router's outbox is the queue
// that survives.
type conn struct {
	client paho.Client
	gen    uint64
	lost   chan struct{} // closed when the connection drops
}

func (c *conn) isLost() bool {
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}

// liveConn returns the open connection, or nil.
func (a *Adapter) liveConn() *conn {
	a.mu.Lock()
	c, stopped := a.live, a.stopped
	a.mu.Unlock()
	if c == nil || stopped || c.isLost() {
		return nil
	}
	return c
}

// Dropped counts the inbound messages dropped on purpose, by reason
// (the Drop constants).
func (a *Adapter) Dropped() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.dropped)
}

// UseFence implements adapters.Fenced: the connection checks may before
// each dial and each write to its socket (internal/fence).
func (a *Adapter) UseFence(may func() bool) { a.fence = fence.New(may, a.log) }

// Start connects in the background and keeps reconnecting until Stop.
func (a *Adapter) Start(ctx context.Context, in bridge.Inbound) error {
	if in == nil {
		return errors.New("mqtt: Start without an Inbound")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started || a.stopped {
		return errors.New("mqtt: adapter started twice or after Stop")
	}
	a.started = true
	a.in = in
	// The adapter outlives the Start call; only Stop ends it.
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.wg.Add(3)
	go a.deliverInbound(a.ctx)
	go a.ackInOrder(a.ctx)
	go a.run(a.ctx)
	return nil
}

func (a *Adapter) options(c *conn) *paho.ClientOptions {
	t := a.timeouts
	lost := sync.OnceFunc(func() { close(c.lost) })
	o := paho.NewClientOptions().
		AddBroker(a.broker.String()).
		SetClientID(a.clientID).
		SetCleanSession(false).
		SetOrderMatters(true).
		// We ack ourselves, once the router has committed the message.
		SetAutoAckDisabled(true).
		// run reconnects with a new client; see conn.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetStore(noStore{}).
		SetConnectTimeout(t.connect).
		SetKeepAlive(t.keepAlive).
		SetPingTimeout(t.pingTimeout).
		// Bounds how long a Publish call can block on a stuck connection
		// before we get to wait on its token with the caller's context.
		SetWriteTimeout(t.write).
		// The broker may deliver queued session messages before our
		// SUBSCRIBEs are answered, and on topics of rooms not joined yet;
		// one default handler takes everything.
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { a.onPublish(m, c.gen) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			a.log.Warn("mqtt: connection lost, reconnecting", "broker", a.broker.Redacted(), "err", err)
			lost()
		})
	if open := a.opener(); open != nil {
		o.SetCustomOpenConnectionFn(open)
	}
	if a.username != "" {
		o.SetUsername(a.username)
	}
	if a.password != "" {
		o.SetPassword(a.password)
	}
	return o
}

// run connects, serves the connection until it drops, and connects again,
// with backoff between attempts, until Stop. A broker that accepts the
// connection and drops it soon after is not connected to again at once:
// the backoff starts over only after a connection stayed up.
func (a *Adapter) run(ctx context.Context) {
	defer a.wg.Done()
	b := backoff.New(a.timeouts.connectRetryMin, a.timeouts.connectRetryMax)
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			d := b.Next()
			a.log.Info("mqtt: connecting again after backoff", "broker", a.broker.Redacted(), "delay", d.Round(time.Millisecond))
			if !b.Sleep(ctx, d, nil) {
				return
			}
		}
		c := &conn{gen: a.gen.Add(1), lost: make(chan struct{})}
		c.client = paho.NewClient(a.options(c))
		a.mu.Lock()
		if a.stopped {
			a.mu.Unlock()
			return
		}
		a.client = c.client
		a.mu.Unlock()
		tok := c.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		if err := tok.Error(); err != nil {
			a.log.Warn("mqtt: cannot connect", "broker", a.broker.Redacted(), "err", err)
			continue
		}
		b.Connected()
		a.serve(ctx, c)
	}
}

// serve makes c the live connection until it drops or Stop. Publishing
// starts only here, after paho's Connect has finished with the client.
func (a *Adapter) serve(ctx context.Context, c *conn) {
	a.mu.Lock()
	a.live = c
	a.mu.Unlock()
	defer func() {
		a.subscribed.Store(false)
		a.mu.Lock()
		a.live = nil
		a.mu.Unlock()
	}()
	// The session normally keeps our subscriptions, but a broker that lost
	// its state would not; subscribing again is harmless.
	if err := a.subscribe(ctx, c.client, a.roomList()...); err != nil {
		a.log.Warn("mqtt: subscribe failed", "err", err)
	}
	if err := a.unsubscribe(ctx, c.client, a.leftList()...); err != nil {
		a.log.Warn("mqtt: unsubscribe failed", "err", err)
	}
	if c.isLost() || ctx.Err() != nil {
		return
	}
	a.subscribed.Store(true)
	a.log.Info("mqtt: connected", "broker", a.broker.Redacted(), "client_id", a.clientID)
	a.in.Online(a.name)
	a.watchBrokerDrops(ctx, c.client)
	select {
	case <-c.lost:
	case <-ctx.Done():
	}
}

// noStore keeps nothing: paho's store would be a second, in-memory outbox
// (see conn), and the broker redelivers unacknowledged inbound messages of
// our persistent session on its own.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}

func (a *Adapter) roomList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var rooms []string
	for r := range a.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// Join subscribes to R/in/+. Rooms are remembered and subscribed again
// after every reconnect; while disconnected, Join only remembers.
func (a *Adapter) Join(ctx context.Context, room string) error {
	if err := ValidRoom(room); err != nil {
		return fmt.Errorf("mqtt: room %q: %w", room, err)
	}
	a.mu.Lock()
	a.rooms[room] = true
	delete(a.left, room)
	a.mu.Unlock()
	// Either the connection is already open here, or it opens later and
	// serve, which lists the rooms after that, subscribes this one.
	c := a.liveConn()
	if c == nil {
		return nil
	}
	return a.subscribe(ctx, c.client, room)
}

func (a *Adapter) leftList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var rooms []string
	for r := range a.left {
		rooms = append(rooms, r)
	}
	return rooms
}

// Leave unsubscribes R/in/+ and forgets the room: it is not subscribed
// again on reconnect, and what devices publish there from now on is
// dropped, even if the broker still delivers it.
func (a *Adapter) Leave(ctx context.Context, room string) error {
	if err := ValidRoom(room); err != nil {
		return fmt.Errorf("mqtt: room %q: %w", room, err)
	}
	a.mu.Lock()
	delete(a.rooms, room)
	a.left[room] = true
	a.mu.Unlock()
	// While disconnected, serve unsubscribes it on the next connection.
	c := a.liveConn()
	if c == nil {
		return nil
	}
	return a.unsubscribe(ctx, c.client, room)
}

func (a *Adapter) hasLeft(room string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.left[room]
}

func (a *Adapter) unsubscribe(ctx context.Context, c paho.Client, rooms ...string) error {
	if len(rooms) == 0 {
		return nil
	}
	var filters []string
	for _, r := range rooms {
		filters = append(filters, inFilter(r))
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeouts.subscribe)
	defer cancel()
	if _, err := await(ctx, func() paho.Token { return c.Unsubscribe(filters...) }); err != nil {
		return fmt.Errorf("mqtt: unsubscribe: %w", err)
	}
	return nil
}

// await makes a paho call and waits for its token, giving up when ctx
// ends. The call runs on a goroutine of its own: paho may block in it for
// up to the write timeout, handing its packet to a connection that has
// just died, and that must not hold up a reconnect or Stop.
func await(ctx context.Context, call func() paho.Token) (paho.Token, error) {
	made := make(chan paho.Token, 1)
	go func() { made <- call() }()
	var tok paho.Token
	select {
	case tok = <-made:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-tok.Done():
		return tok, tok.Error()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a *Adapter) subscribe(ctx context.Context, c paho.Client, rooms ...string) error {
	if len(rooms) == 0 {
		return nil
	}
	filters := map[string]byte{}
	for _, r := range rooms {
		filters[inFilter(r)] = qos
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeouts.subscribe)
	defer cancel()
	// A nil callback leaves routing to the default handler.
	tok, err := await(ctx, func() paho.Token { return c.SubscribeMultiple(filters, nil) })
	if err != nil {
		return fmt.Errorf("mqtt: subscribe: %w", err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, granted := range st.Result() {
			if granted == 0x80 {
				return fmt.Errorf("mqtt: broker refused subscription to %s", f)
			}
		}
	}
	return nil
}

// onPublish is paho's message handler and only queues. paho calls it on
// its dispatcher goroutine (OrderMatters); while it blocks, further
// inbound PUBLISHes pile up in paho's unbuffered hand-offs until, a few
// messages later, the connection reader itself blocks, and with it the
// PUBACKs our Sends wait for and the PINGRESPs the keepalive waits for.
// A reconnect would wait for the handler as well. So a slow Accept must
// not run here.
func (a *Adapter) onPublish(m paho.Message, gen uint64) {
	a.qmu.Lock()
	if m.Qos() == 0 && len(a.queue) >= a.maxQoS0 {
		a.qmu.Unlock()
		a.drop(m, DropOverflow, "inbound queue full")
		return
	}
	a.queue = append(a.queue, received{msg: m, gen: gen})
	a.qmu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Adapter) next(ctx context.Context) (received, bool) {
	for {
		a.qmu.Lock()
		if len(a.queue) > 0 {
			r := a.queue[0]
			a.queue[0] = received{}
			a.queue = a.queue[1:]
			a.qmu.Unlock()
			return r, true
		}
		a.qmu.Unlock()
		select {
		case <-a.wake:
		case <-ctx.Done():
			return received{}, false
		}
	}
}

// deliverInbound hands messages to the router one at a time, in the order
// the broker sent them, and queues each for its acknowledgement once
// committed: the next is taken while the disk syncs, so that one sync
// serves many messages.
func (a *Adapter) deliverInbound(ctx context.Context) {
	defer a.wg.Done()
	defer close(a.acks)
	for {
		r, ok := a.next(ctx)
		if !ok {
			return
		}
		a.handle(ctx, r)
	}
}

func (a *Adapter) stale(r received) bool {
	return r.msg.Qos() > 0 && r.gen != a.gen.Load()
}

func (a *Adapter) handle(ctx context.Context, r received) {
	m := r.msg
	if a.stale(r) {
		a.log.Debug("mqtt: skipping message from a closed connection; the broker resends it", "topic", m.Topic())
		return
	}
	ev, reason, detail := a.parse(m)
	if reason != "" {
		// Dropping is deliberate: acknowledge so the broker stops resending.
		a.drop(m, reason, detail)
		a.queueAck(ctx, pendingAck{r: r})
		return
	}
	a.retry(ctx, r, "accept", a.timeouts.accept, func(ctx context.Context) error {
		durable, err := bridge.Commit(ctx, a.in, ev)
		if err == nil {
			a.queueAck(ctx, pendingAck{r, durable})
		}
		return err
	})
}

// retry runs step until it succeeds, the adapter stops or the message's
// connection closes (the broker then resends it), with backoff. Each
// attempt gets timeout, if not 0.
func (a *Adapter) retry(ctx context.Context, r received, what string, timeout time.Duration, step func(context.Context) error) bool {
	b := backoff.New(a.timeouts.acceptRetryMin, a.timeouts.acceptRetryMax)
	for attempt := 1; ; attempt++ {
		var err error
		if timeout > 0 {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			err = step(sctx)
			cancel()
		} else {
			err = step(ctx)
		}
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false // stopped: unacknowledged, so the broker keeps it for the next session
		}
		if a.stale(r) {
			a.log.Info("mqtt: connection changed while retrying; the broker resends the message", "topic", r.msg.Topic())
			return false
		}
		d := b.Next()
		a.log.Warn("mqtt: "+what+" failed, retrying", "topic", r.msg.Topic(), "attempt", attempt, "retry_in", d, "err", err)
		if !b.Sleep(ctx, d, nil) {
			return false
		}
	}
}

func (a *Adapter) queueAck(ctx context.Context, p pendingAck) {
	select {
	case a.acks <- p:
	case <-ctx.Done(): // unacknowledged: the broker resends it
	}
}

// ackInOrder acknowledges the accepted messages once their commits are on
// disk, in the order they came (MQTT 3.1.1 §4.6 asks PUBACKs in order).
// At Stop it goes on until deliverInbound ends, so that what was
// committed is acknowledged before the DISCONNECT.
func (a *Adapter) ackInOrder(ctx context.Context) {
	defer a.wg.Done()
	for p := range a.acks {
		// At Stop each still gets one wait for its sync. The wait takes no
		// context (it ends with the sync), so it gets no per-attempt timeout.
		if p.durable != nil && !a.retry(ctx, p.r, "sync", 0, func(context.Context) error { return p.durable(false) }) {
			continue
		}
		if !a.stale(p.r) {
			a.ack(p.r.msg)
		}
	}
}

func (a *Adapter) ack(m paho.Message) {
	m.Ack()
	a.acked.Add(1)
}

func (a *Adapter) drop(m paho.Message, reason, detail string) {
	a.mu.Lock()
	a.dropped[reason]++
	a.mu.Unlock()
	a.log.Warn("mqtt: dropped inbound message", "topic", m.Topic(), "reason", reason, "detail", detail, "bytes", len(m.Payload()))
}

// parse turns a received message into an event, or says why it is dropped.
func (a *Adapter) parse(m paho.Message) (ev *bridge.Message, reason, detail string) {
	room, device, ok := splitInTopic(m.Topic())
	if !ok {
		return nil, DropTopic, "not a R/in/<device> topic"
	}
	if a.hasLeft(room) {
		return nil, DropLeft, "room left"
	}
	if device == "" {
		return nil, DropMalformed, "empty device id"
	}
	if m.Retained() {
		// A retained message is state replayed on every subscribe, not a
		// new line of chat.
		return nil, DropRetained, "retained message"
	}
	if len(m.Payload()) > a.maxPayload {
		return nil, DropOversize, fmt.Sprintf("larger than %d bytes", a.maxPayload)
	}
	p, err := ParsePayload(m.Payload())
	switch {
	case errors.Is(err, ErrLoop):
		return nil, DropLoop, `"via": "switchboard"`
	case err != nil:
		return nil, DropMalformed, err.Error()
	}
	name := p.Name
	if name == "" {
		name = device
	}
	remote := ""
	if p.ID != "" {
		remote = device + "/" + p.ID
	}
	return &bridge.Message{
		Header: bridge.Header{
			ID:     bridge.NewEventID(),
			Origin: bridge.Origin{Network: a.name, Room: room, RemoteID: remote},
			// The device id is the topic's, which the broker's ACL
			// guards: the same trust the admins list puts in it.
			Sender: bridge.Sender{Network: a.name, ID: device, Name: name, Authenticated: true},
			Time:   time.Now(),
		},
		Text:    p.Text,
		ReplyTo: bridge.Ref{Event: bridge.EventID(p.ReplyTo)},
	}, "", ""
}

// Stop ends the connection cleanly: our goroutines first, so that an
// acknowledgement in progress still goes out, then a DISCONNECT. Messages
// not yet accepted stay unacknowledged and the broker keeps them for the
// session.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	cancel, c := a.cancel, a.client
	a.mu.Unlock()
	if cancel == nil {
		return nil // never started
	}
	cancel()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("mqtt: stop: %w", ctx.Err())
	}
	quiesce := 250 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		quiesce = min(quiesce, max(time.Until(dl), time.Millisecond))
	}
	if c != nil {
		c.Disconnect(uint(quiesce / time.Millisecond))
	}
	a.log.Info("mqtt: disconnected", "broker", a.broker.Redacted())
	return err
}

var (
	_ adapters.Adapter           = (*Adapter)(nil)
	_ adapters.Connected         = (*Adapter)(nil)
	_ adapters.BrokerDropCounter = (*Adapter)(nil)
	_ adapters.Leaver            = (*Adapter)(nil)
	_ adapters.Fenced            = (*Adapter)(nil)
	_ bridge.BotSender           = (*Adapter)(nil)
	_ bridge.Replier             = (*Adapter)(nil)
	_ bridge.Editor              = (*Adapter)(nil)
	_ bridge.Deleter             = (*Adapter)(nil)
	_ bridge.Reactor             = (*Adapter)(nil)
	_ bridge.MemberRelayer       = (*Adapter)(nil)
	_ bridge.TopicSetter         = (*Adapter)(nil)
	_ bridge.TypingRelayer       = (*Adapter)(nil)
	_ bridge.PresenceRelayer     = (*Adapter)(nil)
)
