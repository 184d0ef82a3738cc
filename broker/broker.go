// Package broker is the embedded MQTT broker: nats-server's MQTT listener,
// backed by JetStream in data_dir/broker, which lets the bridge's own
// clients in first and devices once the bridge has subscribed its rooms.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/listenerr"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// The embedded MQTT broker is nats-server's MQTT listener, backed by
// JetStream in data_dir/broker. It acknowledges a device's QoS 1 PUBLISH
// only once JetStream has stored the message (server/mqtt.go,
// mqttPipelineStoreAndPubAck: the PUBACK waits for the stream's ack), and
// a subscriber's session is a durable JetStream consumer, so what the
// broker acknowledged survives a crash of Switchboard and reaches
// Switchboard's own session after the restart.

// brokerDir is the embedded broker's directory in data_dir.
const brokerDir = "broker"

// brokerSyncAlways makes JetStream fsync every message it stores before
// the PUBACK, as Switchboard's own store syncs its commits before
// acknowledging (sqlite_synchronous: full): what a device was told is
// stored survives a power loss, not just a crash of the process.
// (A variable for BenchmarkBrokerSync.)
var brokerSyncAlways = true

// Credential is what the bridge's own MQTT client presents to the
// embedded broker; it alone is let in before the broker opens to devices.
type Credential struct{ user, pass string }

// Credentials gives an MQTT network on the embedded broker the
// credentials its client connects with: those configured, or, when none
// are (the embedded broker checks no passwords), a random per-start pair
// that only Switchboard knows. The returned config is a copy; cfg is left
// as it was, so a reload does not see a change.
func Credentials(n *mqtt.Config) (*mqtt.Config, Credential, error) {
	m := *n
	if u, err := url.Parse(m.Broker); err == nil && u.User != nil {
		// The URL's user info is what the client sends (paho prefers it).
		p, _ := u.User.Password()
		return &m, Credential{u.User.Username(), p}, nil
	}
	if m.Username == "" && m.Password == "" {
		c, err := randomCredential("switchboard")
		if err != nil {
			return nil, Credential{}, err
		}
		m.Username, m.Password = c.user, c.pass
	}
	return &m, Credential{m.Username, m.Password}, nil
}

// randomCredential is user with a password nobody can guess.
func randomCredential(user string) (Credential, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return Credential{}, err
	}
	return Credential{user, fmt.Sprintf("%x", b)}, nil
}

// Broker is a running embedded broker.
type Broker struct {
	srv    *server.Server
	addr   string
	self   Credential // Switchboard's in-process NATS connection
	nc     *nats.Conn // that connection, for the JetStream API
	log    *slog.Logger
	lock   *os.File // held while the broker runs: one Switchboard per data_dir
	open   func()
	closed chan struct{} // closed by close
}

// The stream nats-server's MQTT sessions keep QoS 1 and 2 messages in
// (its mqttStreamName), and the in-flight limit of one session over all
// its subscriptions (MQTTOpts.MaxAckPending). nats-server also gives
// every new QoS 1 subscription that many, and refuses a subscription that
// would take a session's sum past 65,535: 256 (not its default 1,024)
// lets a client, such as Switchboard's for its rooms, have about 250
// subscriptions instead of 63, and is still far more than Switchboard
// keeps in flight (it acknowledges within a sync, 20 ms).
const (
	mqttMsgsStream    = "$MQTT_msgs"
	mqttSessionWindow = 256
)

// Start runs the embedded MQTT broker on listen with its store in
// dataDir/broker. Devices are turned away until the returned broker's open
// is called, except clients presenting one of the bridge's credentials
// (see deviceGate).
func Start(listen, dataDir string, bridge []Credential, log *slog.Logger) (_ *Broker, err error) {
	log = log.With("component", "broker")
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("broker.listen: %q is not host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker.listen: %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	dir := filepath.Join(dataDir, brokerDir)
	fresh := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		fresh = true
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: %s is in use by another Switchboard (%w); give each its own data_dir", dir, err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	if old := filepath.Join(dataDir, "broker.db"); fresh {
		if _, err := os.Stat(old); err == nil {
			// Said once: at the first start on the new store.
			log.Warn("broker.db of the previous embedded broker (mochi) is left as it was and no longer read: "+
				"sessions and messages it still queued are not carried over; devices subscribe again when they reconnect; delete it when you no longer need it",
				"path", old)
		}
	}

	self, err := randomCredential("switchboard-internal")
	if err != nil {
		return nil, err
	}
	gate := &deviceGate{bridge: append([]Credential{self}, bridge...), log: log}
	nl := &natsLog{log: log}
	opts := &server.Options{
		ServerName: "switchboard",
		// No NATS client port: the broker speaks MQTT only. Switchboard
		// reaches JetStream through an in-process connection.
		DontListen:                 true,
		NoSigs:                     true,
		JetStream:                  true,
		StoreDir:                   dir,
		SyncAlways:                 brokerSyncAlways,
		CustomClientAuthentication: gate,
		MQTT: server.MQTTOpts{
			Host:          host,
			Port:          port,
			MaxAckPending: mqttSessionWindow,
		},
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	ready := false
	for deadline := time.Now().Add(30 * time.Second); !ready && nl.fatalErr() == nil && time.Now().Before(deadline); {
		ready = srv.ReadyForConnections(100 * time.Millisecond)
	}
	if !ready {
		srv.Shutdown()
		srv.WaitForShutdown()
		if err := nl.fatalErr(); err != nil {
			var op *net.OpError
			if errors.As(err, &op) {
				return nil, listenerr.Wrap("broker.listen", listen, err)
			}
			return nil, fmt.Errorf("broker: %w", err)
		}
		return nil, errors.New("broker: did not start within 30s")
	}
	// nats-server writes the port it got for ":0" into the options.
	addr := net.JoinHostPort(host, strconv.Itoa(opts.MQTT.Port))
	b := &Broker{srv: srv, addr: addr, lock: lock, open: gate.openUp, self: self, log: log, closed: make(chan struct{})}
	if err := b.connect(); err != nil {
		b.close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.redeliverPending(); err != nil {
		b.close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.balanceWindows(); err != nil {
		b.close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	log.Info("embedded MQTT broker listening", "addr", addr, "store", dir)
	return b, nil
}

// redeliverPending resets every subscriber's JetStream consumer to its
// acknowledgement floor, before anyone connects. A consumer that was
// mid-delivery when Switchboard died holds those messages as pending, and
// JetStream would resend them only after the ack wait (30 s), behind
// everything published since; reset, it sends them again at once and in
// order. A message acknowledged in the last 100 ms before a crash (the
// consumer store writes its state at most ten times a second) comes again.
func (b *Broker) redeliverPending() error {
	names, err := b.consumers()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := b.api(fmt.Sprintf("$JS.API.CONSUMER.RESET.%s.%s", mqttMsgsStream, name), nil, nil); err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
	}
	return nil
}

// connect opens Switchboard's in-process connection to the broker.
func (b *Broker) connect() error {
	nc, err := nats.Connect("", nats.InProcessServer(b.srv), nats.UserInfo(b.self.user, b.self.pass),
		nats.Name("switchboard"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("in-process connection: %w", err)
	}
	b.nc = nc
	return nil
}

// api makes a JetStream API request and decodes its answer into resp
// (if not nil); an error answer is the error.
func (b *Broker) api(subject string, req, resp any) error {
	var data []byte
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			return err
		}
	}
	msg, err := b.nc.Request(subject, data, 10*time.Second)
	if err != nil {
		return err
	}
	var base server.ApiResponse
	if err := json.Unmarshal(msg.Data, &base); err != nil {
		return err
	}
	if base.Error != nil {
		return base.Error
	}
	if resp == nil {
		return nil
	}
	return json.Unmarshal(msg.Data, resp)
}

// consumers lists the MQTT sessions' consumers of QoS 1 and 2 messages,
// one per subscription of a session.
func (b *Broker) consumers() ([]string, error) {
	var names []string
	for offset := 0; ; {
		var resp server.JSApiConsumerNamesResponse
		err := b.api("$JS.API.CONSUMER.NAMES."+mqttMsgsStream, server.JSApiConsumersRequest{ApiPagedRequest: server.ApiPagedRequest{Offset: offset}}, &resp)
		if server.IsNatsErr(err, server.JSStreamNotFoundErr) {
			return nil, nil // no MQTT client has connected yet
		}
		if err != nil {
			return nil, fmt.Errorf("list consumers: %w", err)
		}
		names = append(names, resp.Consumers...)
		offset += len(resp.Consumers)
		if len(resp.Consumers) == 0 || offset >= resp.Total {
			return names, nil
		}
	}
}

// balanceWindows shares each MQTT session's in-flight window among its
// subscriptions. nats-server lets each subscription's consumer have up to
// mqttSessionWindow messages unacknowledged, but a session as a whole
// too, and what a consumer pushes past the session's window it holds
// back for the ack wait (30 s): with a backlog in several rooms of one of
// Switchboard's networks (after a restart), messages would come 30 s
// late and after newer ones of their room. With the windows of a
// session's consumers summing to the session's, none is held back. It
// runs at start, and again whenever a consumer comes or goes.
func (b *Broker) balanceWindows() error {
	if err := b.balance(nil); err != nil {
		return err
	}
	// A client subscribing to many topics at once makes as many
	// consumers: one balance of its session serves them all.
	var mu sync.Mutex
	changed := map[string]bool{}
	kick := make(chan struct{}, 1)
	for _, event := range []string{"CREATED", "DELETED"} {
		_, err := b.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER."+event+"."+mqttMsgsStream+".*", func(m *nats.Msg) {
			mu.Lock()
			changed[sessionOf(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])] = true
			mu.Unlock()
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return err
		}
	}
	go func() {
		for {
			select {
			case <-kick:
			case <-b.closed:
				return
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-b.closed:
				return
			}
			mu.Lock()
			sessions := changed
			changed = map[string]bool{}
			mu.Unlock()
			if err := b.balance(sessions); err != nil && !b.nc.IsClosed() {
				b.log.Error("sharing a session's in-flight window among its subscriptions", "err", err)
			}
		}
	}()
	return nil
}

// sessionOf is the session a consumer belongs to: nats-server names a
// session's consumers <session hash>_<nuid>.
func sessionOf(consumer string) string {
	return consumer[:max(0, strings.LastIndexByte(consumer, '_'))]
}

// balance balances the given sessions' windows, or all with nil.
func (b *Broker) balance(only map[string]bool) error {
	names, err := b.consumers()
	if err != nil {
		return err
	}
	sessions := map[string][]string{}
	for _, name := range names {
		if sess := sessionOf(name); sess != "" && (only == nil || only[sess]) {
			sessions[sess] = append(sessions[sess], name)
		}
	}
	for _, cons := range sessions {
		want := max(1, mqttSessionWindow/len(cons))
		for _, name := range cons {
			var info server.JSApiConsumerInfoResponse
			if err := b.api(fmt.Sprintf("$JS.API.CONSUMER.INFO.%s.%s", mqttMsgsStream, name), nil, &info); err != nil {
				if server.IsNatsErr(err, server.JSConsumerNotFoundErr) {
					continue // gone meanwhile; its advisory balances again
				}
				return fmt.Errorf("consumer %s: %w", name, err)
			}
			if info.ConsumerInfo == nil || info.Config.MaxAckPending == want {
				continue
			}
			cfg := info.Config
			cfg.MaxAckPending = want
			req := server.CreateConsumerRequest{Stream: mqttMsgsStream, Config: *cfg, Action: server.ActionUpdate}
			err := b.api(fmt.Sprintf("$JS.API.CONSUMER.CREATE.%s.%s", mqttMsgsStream, name), req, nil)
			if err != nil && !server.IsNatsErr(err, server.JSConsumerNotFoundErr) {
				return fmt.Errorf("consumer %s: %w", name, err)
			}
		}
	}
	return nil
}

// Open lets devices onto the broker: once the bridge's networks on it
// have subscribed the rooms they joined.
func (b *Broker) Open() { b.open() }

// Addr is where the broker listens for MQTT clients.
func (b *Broker) Addr() string { return b.addr }

// close shuts the broker down; JetStream writes its state on the way.
func (b *Broker) close() {
	close(b.closed)
	if b.nc != nil {
		b.nc.Close()
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	b.lock.Close()
}

// brokerCloseTimeout bounds how long stopping waits for the broker.
const brokerCloseTimeout = 5 * time.Second

// Close closes the embedded broker, giving up after
// brokerCloseTimeout or when ctx ends, so that stopping never hangs on
// it. What the broker acknowledged is in its store already.
func Close(ctx context.Context, b *Broker, log *slog.Logger) {
	closeWithin(ctx, b.close, log)
}

func closeWithin(ctx context.Context, close func(), log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		close()
		done <- struct{}{}
	}()
	ctx, cancel := context.WithTimeout(ctx, brokerCloseTimeout)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		log.Warn("the embedded broker did not stop in time; going on without it", "err", ctx.Err())
	}
}

// deviceGate keeps devices off the embedded broker until the bridge's own
// clients have subscribed their rooms. A broker drops what is published
// to a topic nobody subscribes to, and on a fresh data_dir the bridge has
// no session yet to queue it in: a device that got in first would have
// its first messages acknowledged and lost. A device turned away is
// disconnected (nats-server queues a CONNACK "not authorized" first) and
// retries, as after any broker restart.
type deviceGate struct {
	bridge []Credential
	log    *slog.Logger
	open   atomic.Bool
}

// Check admits a client. MQTT clients are of kind CLIENT too, as is
// Switchboard's own in-process NATS connection (there is no NATS
// listener), which presents the first of g.bridge.
func (g *deviceGate) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	if g.open.Load() {
		return true
	}
	o := c.GetOpts()
	for _, b := range g.bridge {
		if subtle.ConstantTimeCompare([]byte(o.Username), []byte(b.user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(o.Password), []byte(b.pass)) == 1 {
			return true
		}
	}
	return false
}

func (g *deviceGate) openUp() {
	if !g.open.Swap(true) {
		g.log.Info("broker open to devices: the bridge has subscribed its rooms")
	}
}

// natsLog routes nats-server's log to slog. Its notices (banner, JetStream
// settings) are debug lines here; its warnings and errors stay so, but for
// the store's recovery after a crash and the authentication errors of
// devices the gate turns away, which is the gate doing its job.
type natsLog struct {
	log   *slog.Logger
	mu    sync.Mutex
	fatal error
}

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if _, rest, ok := strings.Cut(msg, "] "); ok && strings.HasPrefix(msg, "Filestore [") &&
		(strings.HasPrefix(rest, "Stream state ") || strings.HasPrefix(rest, "Recovering stream state from index")) {
		// After a crash a stream's index file is behind its message files,
		// and JetStream rebuilds it from the messages: what it is built to
		// do. Trouble with the messages themselves stays a warning.
		l.log.Info(msg)
		return
	}
	l.log.Warn(msg)
}
func (l *natsLog) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

func (l *natsLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, server.ErrAuthentication.Error()) {
		l.log.Debug(msg)
		return
	}
	l.log.Error(msg)
}

// Fatalf is what nats-server says when it cannot go on (a port in use);
// Start reports it.
func (l *natsLog) Fatalf(format string, v ...any) {
	err := errors.New(fmt.Sprintf(format, v...))
	for _, a := range v {
		if e, ok := a.(error); ok {
			err = e // the cause itself, for listenerr.Wrap
			break
		}
	}
	l.mu.Lock()
	if l.fatal == nil {
		l.fatal = err
	}
	l.mu.Unlock()
	l.log.Error(fmt.Sprintf(format, v...))
}

func (l *natsLog) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// onBroker reports whether an MQTT network's broker URL points at the
// embedded broker listening on listen.
func onBroker(brokerURL, listen string) bool {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port != u.Port() {
		return false
	}
	if host == u.Hostname() {
		return true
	}
	// A broker on every address (":1883", "0.0.0.0:1883") is reachable on loopback.
	ip := net.ParseIP(host)
	unspecified := host == "" || ip != nil && ip.IsUnspecified()
	uip := net.ParseIP(u.Hostname())
	return unspecified && (u.Hostname() == "localhost" || uip != nil && uip.IsLoopback())
}

// Networks finds the MQTT networks whose broker is the embedded one on
// listen, and gives each the credentials it is let in by before devices
// are (see Credentials): copies of their configs, by name, to start their
// adapters with, and the credentials to start the broker with.
func Networks(cfg *config.Config, listen string) (map[string]*config.Network, []Credential, error) {
	nets := map[string]*config.Network{}
	var creds []Credential
	for name, n := range cfg.Networks {
		if mc, ok := n.Section.(*mqtt.Config); ok && mc != nil && onBroker(mc.Broker, listen) {
			m, c, err := Credentials(mc)
			if err != nil {
				return nil, nil, err
			}
			nc := *n
			nc.Section = m // with the credentials the embedded broker knows it by
			nets[name], creds = &nc, append(creds, c)
		}
	}
	return nets, creds, nil
}
