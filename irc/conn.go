package irc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/internal/fence"
	"github.com/switchboard-chat/switchboard/internal/quickack"
)

var (
	errNotConnected = fmt.Errorf("irc: %w", bridge.ErrNotConnected)
	errDisconnected = errors.New("irc: connection lost before the server confirmed the line")
	errNoConfirm    = errors.New("irc: server did not confirm the line in time")
	errJoinTimeout  = errors.New("irc: server did not confirm the join in time")
)

const (
	dialTimeout     = 30 * time.Second
	regTimeout      = 30 * time.Second // registration, and ircevent's ping tick
	keepAlive       = 2 * time.Minute
	confirmTimeout  = 30 * time.Second
	joinTimeout     = 30 * time.Second
	backoffBase     = time.Second // the first reconnect's wait, doubling up to reconnect_max
	maxNickAttempts = 30
)

// connConfig describes one IRC connection: the bot's or a puppet's.
type connConfig struct {
	label      string // for logs
	server     string
	useTLS     bool
	skipVerify bool
	nick       string
	user       string
	realname   string
	password   string
	sasl       *SASL
	// saslRequired refuses to register without a SASL login (a person's
	// own connection must never speak under their nick unauthenticated).
	saslRequired bool
	caps         []string
	maxLineLen   int
	flood        Flood
	reconnectMax time.Duration
	// fence refuses to dial, and to write, once this instance no longer
	// holds the network (cluster mode; nil otherwise).
	fence *fence.Fence
	// sourceAddr is the local IP the connection binds to (source_address);
	// nil for the system's choice.
	sourceAddr net.IP
	// shard is the shard the connection belongs to (adapters.Sharded: 0
	// for the bot); shardFences, when sharded, each shard's fence, which
	// becomes the connection's.
	shard       int
	shardFences []*fence.Fence
	// gate, when set, waits before each dial (after the backoff) until
	// the connection is to run: the bot, while this instance does not
	// hold shard 0.
	gate func(ctx context.Context) error
	// altNick gives the deterministic alternatives to base when the server
	// refuses it (attempt 0, 1, 2, ...), at most maxLen bytes long.
	altNick func(base string, maxLen, attempt int) string
	// nickLen is the server's NICKLEN, or a guess before it is known.
	nickLen func() int
	// fallbackNick replaces a nick the server finds erroneous.
	fallbackNick func() string
	casemap      func() caseMapping
	onUp         func(*conn) // registered; runs in the read loop
	onDown       func(*conn) // registered connection lost; runs in the read loop
	log          *slog.Logger
	clock        clock

	// onHistory takes a channel's join playback (catchup.go); without
	// it the playback is dropped.
	onHistory func(channel string, lines []*ircevent.Batch)
	// onJoined runs in the read loop when the server confirms one of
	// our joins (chathistory.go).
	onJoined func(k *conn, channel string)
}

// capSet is what the server acknowledged on the current connection.
type capSet struct {
	echo, labels, tags bool
	history            bool // draft/chathistory, with labeled-response to tell its replies apart
}

// pending is a line waiting for the server's confirmation.
type pending struct {
	target string
	line   []byte // as written to the socket (no-echo mode)
	ch     chan lineResult
}

type lineResult struct {
	msgid string
	err   error
}

func (p *pending) resolve(r lineResult) {
	select {
	case p.ch <- r:
	default:
	}
}

type joinOp struct {
	done chan struct{}
	err  error
}

// conn is one IRC connection. ircevent does the protocol work (caps, SASL,
// ISUPPORT, PING, reconnect loop); conn adds what a bridge needs on top:
// flood control, confirmed delivery, join tracking, deterministic nick
// fallbacks and a dial with backoff and TLS.
type conn struct {
	cfg    connConfig
	irc    *ircevent.Connection
	bucket *bucket
	// backoff paces reconnects; it starts over only once a registered
	// connection stayed up for backoff.DefaultStable.
	backoff *backoff.Backoff

	sem     chan struct{} // one delivery at a time, so lines of two messages never interleave
	orderMu sync.Mutex    // queueing a line and writing it, so queue order is wire order

	finished chan struct{} // closed when the connection is gone for good
	finOnce  sync.Once

	mu          sync.Mutex
	dialCtx     context.Context
	sock        net.Conn
	up          bool
	dead        chan struct{} // closed when the current connection ends
	caps        capSet
	userHost    string
	chans       map[string]string // folded name -> name
	joins       map[string]*joinOp
	echoes      []*pending // echo-message without labels: FIFO
	writes      []*pending // no echo-message: confirmed once written
	nickBase    string
	nickWant    string
	nickAttempt int
	nickShort   bool // the server found a nick erroneous: try RFC-length ones
	attempt     int  // dials so far; the first does not wait
	hooked      bool
	quitting    bool
	saslFailure string // the server's last SASL refusal (904/905)
	single      bool   // no reconnect loop: finished once disconnected
}

func newConn(cfg connConfig) *conn {
	if cfg.clock == nil {
		cfg.clock = realClock{}
	}
	if cfg.shard < len(cfg.shardFences) {
		// Sharded: the connection's shard's lease, checked by the same
		// fence as a network's (the adapter then has no UseFence).
		cfg.fence = cfg.shardFences[cfg.shard]
	}
	k := &conn{
		cfg:      cfg,
		bucket:   newBucket(cfg.flood.Burst, cfg.flood.Interval, cfg.clock),
		backoff:  &backoff.Backoff{Min: backoffBase, Max: cfg.reconnectMax, Clock: cfg.clock},
		sem:      make(chan struct{}, 1),
		finished: make(chan struct{}),
		dead:     make(chan struct{}),
		chans:    map[string]string{},
		joins:    map[string]*joinOp{},
		nickBase: cfg.nick,
		nickWant: cfg.nick,
	}
	close(k.dead)
	irc := &ircevent.Connection{
		Server:        cfg.server,
		Nick:          cfg.nick,
		User:          cfg.user,
		RealName:      cfg.realname,
		Password:      cfg.password,
		RequestCaps:   append([]string(nil), cfg.caps...),
		QuitMessage:   "Switchboard",
		Version:       "Switchboard",
		Timeout:       regTimeout,
		KeepAlive:     keepAlive,
		ReconnectFreq: time.Nanosecond, // our dial does the backoff
		MaxLineLen:    cfg.maxLineLen,
		DialContext:   k.dial,
		// ircevent logs through the standard logger; never in debug mode,
		// which would print PASS and AUTHENTICATE lines.
		Log: log.New(slogWriter{cfg.log}, "", 0),
	}
	if cfg.sasl != nil && cfg.sasl.User != "" {
		irc.SASLLogin = cfg.sasl.User
		irc.SASLPassword = cfg.sasl.Password
		// SASL is used when the server offers it; a server without it is
		// not an error. A refused login is (see onSASLFail).
		irc.SASLOptional = !cfg.saslRequired
	}
	k.irc = irc
	irc.AddBatchCallback(k.onBatch) // join playback: catchup.go
	irc.AddCallback("PRIVMSG", k.onEcho)
	irc.AddCallback("NOTICE", k.onEcho)
	irc.AddCallback("TAGMSG", k.onEcho)
	irc.AddCallback("JOIN", k.onJoin)
	irc.AddCallback("PART", k.onPart)
	irc.AddCallback("KICK", k.onKick)
	irc.AddCallback("CHGHOST", k.onChghost)
	irc.AddCallback("396", k.onVisibleHost)
	for _, code := range []string{"403", "405", "471", "473", "474", "475", "476", "477", "489"} {
		irc.AddCallback(code, k.onJoinError)
	}
	for _, code := range []string{"401", "404", "406", "412", "413", "414"} {
		irc.AddCallback(code, k.onSendError)
	}
	for _, code := range []string{"904", "905"} {
		irc.AddCallback(code, k.onSASLFail)
	}
	irc.AddConnectCallback(k.onRegistered)
	irc.AddDisconnectCallback(k.onDisconnect)
	return k
}

// slogWriter turns ircevent's log lines into slog records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("ircevent: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

func (k *conn) fold(s string) string { return k.cfg.casemap().fold(s) }

func (k *conn) isMe(nick string) bool {
	cur := k.irc.CurrentNick()
	return cur != "" && k.cfg.casemap().equal(nick, cur)
}

// nick is the nick the server knows us by ("" before registration).
func (k *conn) nick() string { return k.irc.CurrentNick() }

func (k *conn) isUp() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.up
}

func (k *conn) getUserHost() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.userHost
}

func (k *conn) inChannel(ch string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.chans[k.fold(ch)]
	return ok
}

// inOrJoining reports whether the connection is in ch or has asked to
// join it: a PART now takes it out either way (the server answers the
// JOIN first).
func (k *conn) inOrJoining(ch string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	f := k.fold(ch)
	_, in := k.chans[f]
	return in || k.joins[f] != nil
}

func (k *conn) channelCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.chans)
}

// dial is ircevent's DialContext: it waits out the reconnect backoff, then
// connects (with TLS when configured) with our own deadline, since the
// context ircevent passes expires before a long backoff would.
func (k *conn) dial(_ context.Context, network, addr string) (net.Conn, error) {
	k.mu.Lock()
	ctx := k.dialCtx
	var delay time.Duration
	if k.attempt > 0 {
		delay = k.backoff.Next()
	}
	k.attempt++
	hook := !k.hooked
	k.hooked = true
	k.nickBase, k.nickWant, k.nickAttempt, k.nickShort = k.cfg.nick, k.cfg.nick, 0, false
	k.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	if hook {
		// ircevent's own handler answers a taken nick with "nick_0",
		// "nick_1", ...; ours picks the deterministic alternatives
		// instead. ircevent installs its handlers in Connect, just before
		// dialing, so this is the first moment they can be replaced.
		for _, code := range []string{"432", "433", "437"} {
			k.irc.ClearCallback(code)
			k.irc.AddCallback(code, k.onNickError)
		}
	}
	// Every connection starts from the configured nick again.
	k.irc.SetNick(k.cfg.nick)
	if delay > 0 {
		k.cfg.log.Info("reconnecting after backoff", "delay", delay.Round(time.Millisecond))
		if !k.backoff.Sleep(ctx, delay, nil) {
			return nil, ctx.Err()
		}
	}
	// A fenced instance opens no connection (internal/fence). A dial
	// error, so that a puppet waits for the next delivery rather than
	// taking it for the server refusing puppets; the reconnect loop keeps
	// its backoff, so the bot tries again only slowly, until stopped.
	if k.cfg.gate != nil {
		if err := k.cfg.gate(ctx); err != nil {
			return nil, err
		}
	}
	if err := k.cfg.fence.CheckDial(network, addr); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	if k.cfg.sourceAddr != nil {
		d.LocalAddr = &net.TCPAddr{IP: k.cfg.sourceAddr}
	}
	c, err := d.DialContext(dctx, network, addr)
	if err != nil {
		return nil, err
	}
	c = quickack.Wrap(c)
	if k.cfg.useTLS {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(c, &tls.Config{
			ServerName:         host,
			InsecureSkipVerify: k.cfg.skipVerify,
			MinVersion:         tls.VersionTLS12,
		})
		if err := tc.HandshakeContext(dctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		c = tc
	}
	// The fence is under watchedConn: a refused line is not counted as
	// written.
	wc := &watchedConn{Conn: k.cfg.fence.Wrap(c), k: k}
	k.mu.Lock()
	k.sock = wc
	k.dead = make(chan struct{})
	k.up = false
	k.userHost = ""
	k.chans = map[string]string{}
	k.mu.Unlock()
	// A context canceled while we stored the socket would have found the
	// old one to close; close this one ourselves.
	if err := ctx.Err(); err != nil {
		wc.Close()
		return nil, err
	}
	return wc, nil
}

// watchedConn tells conn when its lines have been written, which is all
// the confirmation there is on a server without echo-message.
type watchedConn struct {
	net.Conn
	k *conn
}

func (w *watchedConn) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	if err == nil {
		w.k.wrote(b)
	}
	return n, err
}

func (k *conn) wrote(b []byte) {
	k.mu.Lock()
	if len(k.writes) == 0 || !bytes.Equal(k.writes[0].line, b) {
		k.mu.Unlock()
		return
	}
	p := k.writes[0]
	k.writes = k.writes[1:]
	k.mu.Unlock()
	p.resolve(lineResult{})
}

func (k *conn) closeSocket() {
	k.mu.Lock()
	s := k.sock
	k.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// run keeps the connection up until quit: the first connection, then
// ircevent's reconnect loop (our dial adds the backoff).
func (k *conn) run(ctx context.Context) {
	defer k.finish()
	k.mu.Lock()
	k.dialCtx = ctx
	k.mu.Unlock()
	for {
		err := k.irc.Connect()
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, ircevent.ClientHasQuit) || k.isQuitting() {
			return
		}
		k.cfg.log.Warn("connect failed", "server", k.cfg.server, "err", err)
	}
	k.irc.Loop()
}

// connectOnce connects without reconnecting (puppets): a puppet that
// loses its connection is dropped and made anew when next needed.
func (k *conn) connectOnce(ctx context.Context) error {
	k.mu.Lock()
	k.dialCtx = ctx
	k.attempt = 0
	k.single = true
	k.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- k.irc.Connect() }()
	select {
	case err := <-done:
		if err != nil {
			k.finish()
			return err
		}
		if k.markUp() && k.cfg.onUp != nil {
			k.cfg.onUp(k)
		}
		return nil
	case <-ctx.Done():
		k.closeSocket()
		if err := <-done; err == nil {
			// Registered just as we gave up: keep the connection, the
			// caller decides.
			return nil
		}
		k.finish()
		return ctx.Err()
	}
}

func (k *conn) finish() { k.finOnce.Do(func() { close(k.finished) }) }

func (k *conn) isQuitting() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.quitting
}

// quit sends QUIT (bypassing flood control: we are leaving) and stops
// reconnecting.
func (k *conn) quit() {
	k.mu.Lock()
	k.quitting = true
	k.mu.Unlock()
	k.irc.Quit()
}

func (k *conn) onRegistered(ircmsg.Message) {
	if k.markUp() && k.cfg.onUp != nil {
		k.cfg.onUp(k)
	}
}

// markUp records a completed registration, once per connection. Both the
// read loop (end of MOTD) and connectOnce (Connect returning) call it,
// since ircevent does not order the two.
func (k *conn) markUp() bool {
	caps := k.irc.AcknowledgedCaps()
	_, echo := caps["echo-message"]
	_, labels := caps["labeled-response"]
	_, batch := caps["batch"]
	_, tags := caps["message-tags"]
	_, history := caps[chatHistoryCap]
	k.mu.Lock()
	defer k.mu.Unlock()
	select {
	case <-k.dead:
		return false // already lost again
	default:
	}
	if k.up {
		return false
	}
	k.up = true
	k.backoff.Connected()
	k.caps = capSet{echo: echo, labels: labels && batch, tags: tags, history: history && labels && batch}
	return true
}

func (k *conn) onDisconnect(ircmsg.Message) {
	k.mu.Lock()
	wasUp := k.up
	k.up = false
	select {
	case <-k.dead:
	default:
		close(k.dead)
	}
	pend := append(k.echoes, k.writes...)
	k.echoes, k.writes = nil, nil
	joins := k.joins
	k.joins = map[string]*joinOp{}
	k.chans = map[string]string{}
	s := k.sock
	single := k.single
	k.mu.Unlock()
	for _, p := range pend {
		p.resolve(lineResult{err: errDisconnected})
	}
	for _, op := range joins {
		op.err = errDisconnected
		close(op.done)
	}
	// ircevent closes the socket only in its reconnect loop, which
	// puppets do not run.
	if s != nil {
		s.Close()
	}
	if wasUp && k.cfg.onDown != nil {
		k.cfg.onDown(k)
	}
	if single {
		k.finish()
	}
}

func (k *conn) onSASLFail(e ircmsg.Message) {
	k.mu.Lock()
	k.saslFailure = e.Command + " " + lastParam(e)
	k.mu.Unlock()
	if k.cfg.saslRequired {
		// The owner of a required login reports it, once (runPersonal).
		k.cfg.log.Debug("SASL authentication failed; disconnecting", "reply", e.Command, "text", lastParam(e))
	} else {
		k.cfg.log.Error("SASL authentication failed; disconnecting", "reply", e.Command, "text", lastParam(e))
	}
	k.closeSocket()
}

// saslRefused is the server's SASL refusal on this connection, if any.
func (k *conn) saslRefused() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.saslFailure
}

func (k *conn) onNickError(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	tried := e.Params[1]
	k.mu.Lock()
	if k.up && !k.cfg.casemap().equal(tried, k.nickWant) {
		// A reply to ircevent's periodic attempt to regain a nick we no
		// longer want: nothing to do.
		k.mu.Unlock()
		return
	}
	k.nickAttempt++
	n := k.nickAttempt
	switch {
	case e.Command == "432" && n == 1 && k.cfg.fallbackNick != nil:
		k.nickBase = k.cfg.fallbackNick()
		k.nickWant = k.nickBase
	default:
		if e.Command == "432" {
			// Too long, most likely, for a server whose NICKLEN we do not
			// know yet.
			k.nickShort = true
		}
		maxLen := 9
		if !k.nickShort && k.cfg.nickLen != nil {
			maxLen = k.cfg.nickLen()
		}
		k.nickWant = k.cfg.altNick(k.nickBase, maxLen, n-1)
	}
	next := k.nickWant
	up := k.up
	k.mu.Unlock()
	if n > maxNickAttempts {
		k.cfg.log.Error("no usable nick", "last", tried)
		if !up {
			k.closeSocket()
		}
		return
	}
	k.cfg.log.Info("nick unavailable, trying another", "nick", tried, "next", next, "reply", e.Command)
	// SetNick also makes it the nick ircevent tries to keep.
	k.irc.SetNick(next)
}

// rename asks the server for a new nick, falling back to its alternatives
// when taken.
func (k *conn) rename(ctx context.Context, nick string) error {
	if err := k.bucket.wait(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	k.nickBase, k.nickWant, k.nickAttempt = nick, nick, 0
	k.mu.Unlock()
	k.irc.SetNick(nick)
	return nil
}

func (k *conn) onEcho(e ircmsg.Message) {
	if !k.isMe(e.Nick()) {
		return
	}
	k.mu.Lock()
	if len(k.echoes) == 0 {
		k.mu.Unlock()
		return
	}
	p := k.echoes[0]
	k.echoes = k.echoes[1:]
	k.mu.Unlock()
	_, id := e.GetTag("msgid")
	p.resolve(lineResult{msgid: id})
}

func (k *conn) onSendError(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	k.failEchoHead(e)
}

// failEchoHead fails the oldest line awaiting its echo when the server
// refused it, so later echoes still match their lines.
func (k *conn) failEchoHead(e ircmsg.Message) bool {
	k.mu.Lock()
	if len(k.echoes) == 0 || !k.cfg.casemap().equal(k.echoes[0].target, e.Params[1]) {
		k.mu.Unlock()
		return false
	}
	p := k.echoes[0]
	k.echoes = k.echoes[1:]
	k.mu.Unlock()
	p.resolve(lineResult{err: &refusal{code: e.Command, text: lastParam(e)}})
	return true
}

// refusal is the server's numeric (or FAIL) answer to a line it did not
// pass on.
type refusal struct {
	code, text string
	join       bool // a JOIN's, not a line's
}

func (r *refusal) Error() string {
	if r.join {
		return r.code + " " + r.text
	}
	return "irc: server refused the line: " + r.code + " " + r.text
}

// noSuchNick reports whether err says the target of a line is not online
// (ERR_NOSUCHNICK).
func noSuchNick(err error) bool {
	var r *refusal
	return errors.As(err, &r) && r.code == "401"
}

func lastParam(e ircmsg.Message) string {
	if len(e.Params) == 0 {
		return ""
	}
	return e.Params[len(e.Params)-1]
}

func (k *conn) onJoin(e ircmsg.Message) {
	if len(e.Params) < 1 || !k.isMe(e.Nick()) {
		return
	}
	ch := e.Params[0]
	f := k.fold(ch)
	k.mu.Lock()
	if nuh, err := e.NUH(); err == nil && nuh.User != "" && nuh.Host != "" {
		// The exact user@host the server prefixes our lines with: the
		// line budget depends on it.
		k.userHost = nuh.User + "@" + nuh.Host
	}
	k.chans[f] = ch
	op := k.joins[f]
	delete(k.joins, f)
	k.mu.Unlock()
	if op != nil {
		close(op.done)
	}
	if k.cfg.onJoined != nil {
		k.cfg.onJoined(k, ch)
	}
}

func (k *conn) onJoinError(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	f := k.fold(e.Params[1])
	k.mu.Lock()
	op := k.joins[f]
	delete(k.joins, f)
	k.mu.Unlock()
	if op != nil {
		op.err = fmt.Errorf("irc: cannot join %s: %w", e.Params[1], &refusal{code: e.Command, text: lastParam(e), join: true})
		close(op.done)
		return
	}
	if e.Command == "403" {
		k.failEchoHead(e)
	}
}

func (k *conn) onPart(e ircmsg.Message) {
	if len(e.Params) < 1 || !k.isMe(e.Nick()) {
		return
	}
	k.mu.Lock()
	delete(k.chans, k.fold(e.Params[0]))
	k.mu.Unlock()
}

func (k *conn) onKick(e ircmsg.Message) {
	if len(e.Params) < 2 || !k.isMe(e.Params[1]) {
		return
	}
	k.cfg.log.Warn("kicked", "channel", e.Params[0], "by", e.Nick(), "reason", lastParam(e))
	k.mu.Lock()
	delete(k.chans, k.fold(e.Params[0]))
	k.mu.Unlock()
}

func (k *conn) onChghost(e ircmsg.Message) {
	if len(e.Params) < 2 || !k.isMe(e.Nick()) {
		return
	}
	k.mu.Lock()
	k.userHost = e.Params[0] + "@" + e.Params[1]
	k.mu.Unlock()
}

func (k *conn) onVisibleHost(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	k.mu.Lock()
	if at := strings.IndexByte(k.userHost, '@'); at >= 0 {
		k.userHost = k.userHost[:at+1] + e.Params[1]
	}
	k.mu.Unlock()
}

// join joins a channel and waits for the server to confirm it.
func (k *conn) join(ctx context.Context, ch string) error {
	ops, err := k.startJoins(ctx, []string{ch})
	if err != nil {
		return err
	}
	return k.waitJoin(ctx, ops[0])
}

// joinAll joins many channels with as few JOIN lines as fit, and waits
// for each; it returns the channels that failed.
func (k *conn) joinAll(ctx context.Context, chans []string) map[string]error {
	failed := map[string]error{}
	ops, err := k.startJoins(ctx, chans)
	if err != nil {
		for _, ch := range chans {
			failed[ch] = err
		}
		return failed
	}
	for i, op := range ops {
		if err := k.waitJoin(ctx, op); err != nil {
			failed[chans[i]] = err
		}
	}
	return failed
}

type joinWait struct {
	op   *joinOp
	dead chan struct{}
	f    string
}

func (k *conn) startJoins(ctx context.Context, chans []string) ([]joinWait, error) {
	k.mu.Lock()
	if !k.up {
		k.mu.Unlock()
		return nil, errNotConnected
	}
	dead := k.dead
	ops := make([]joinWait, len(chans))
	var send []string
	for i, ch := range chans {
		f := k.fold(ch)
		op := k.joins[f]
		if _, in := k.chans[f]; in {
			op = &joinOp{done: make(chan struct{})}
			close(op.done)
		} else if op == nil {
			op = &joinOp{done: make(chan struct{})}
			k.joins[f] = op
			send = append(send, ch)
		}
		ops[i] = joinWait{op: op, dead: dead, f: f}
	}
	k.mu.Unlock()
	// "JOIN #a,#b,#c": one line for many channels, well within any
	// server's line length.
	for len(send) > 0 {
		n, size := 0, 0
		for n < len(send) && (n == 0 || size+1+len(send[n]) <= 400) {
			size += 1 + len(send[n])
			n++
		}
		line := strings.Join(send[:n], ",")
		err := k.bucket.wait(ctx)
		if err == nil {
			err = k.irc.Send("JOIN", line)
		}
		if err != nil {
			for _, ch := range send {
				k.endJoin(k.fold(ch), err)
			}
			return nil, err
		}
		send = send[n:]
	}
	return ops, nil
}

func (k *conn) endJoin(f string, err error) {
	k.mu.Lock()
	op := k.joins[f]
	delete(k.joins, f)
	k.mu.Unlock()
	if op != nil {
		op.err = err
		close(op.done)
	}
}

func (k *conn) waitJoin(ctx context.Context, w joinWait) error {
	t, stop := k.cfg.clock.After(joinTimeout)
	defer stop()
	select {
	case <-w.op.done:
		return w.op.err
	case <-w.dead:
		return errDisconnected
	case <-ctx.Done():
		return ctx.Err()
	case <-t:
		k.endJoin(w.f, errJoinTimeout)
		return errJoinTimeout
	}
}

// part leaves a channel; it does not wait for the server, and counts the
// channel as left at once.
func (k *conn) part(ctx context.Context, ch, reason string) error {
	if err := k.bucket.wait(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.chans, k.fold(ch))
	k.mu.Unlock()
	if reason == "" {
		return k.irc.Send("PART", ch)
	}
	return k.irc.Send("PART", ch, reason)
}

// acquire takes the connection for one delivery.
func (k *conn) acquire(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *conn) release() { <-k.sem }

// submit sends one PRIVMSG, NOTICE or TAGMSG (after waiting for a flood
// token) and returns where its confirmation will arrive: the server's
// labeled response where offered (it names the line exactly, errors
// included), else its echo (in order), else the socket write. The line
// carries the client tags in tags (see tags.go) where the server relays
// them; a TAGMSG has no text, and without message-tags it is not sent
// at all (plain clients would never see it).
func (k *conn) submit(ctx context.Context, command, target, text string, tags map[string]string) (<-chan lineResult, <-chan struct{}, error) {
	if err := k.bucket.wait(ctx); err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	up, caps, dead := k.up, k.caps, k.dead
	k.mu.Unlock()
	if !up {
		return nil, nil, errNotConnected
	}
	p := &pending{target: target, ch: make(chan lineResult, 1)}
	params := []string{target, text}
	if command == "TAGMSG" {
		if !caps.tags {
			p.resolve(lineResult{})
			return p.ch, dead, nil
		}
		params = params[:1]
	}
	if caps.tags {
		tags = withHopTag(tags)
	} else {
		tags = nil
	}
	if caps.labels {
		err := k.irc.SendWithLabel(func(b *ircevent.Batch) { p.resolve(labelResult(b)) }, tags, command, params...)
		return p.ch, dead, err
	}
	msg := ircmsg.MakeMessage(tags, "", command, params...)
	line, err := msg.LineBytesStrict(true, k.irc.MaxLineLen)
	if err != nil {
		return nil, nil, err
	}
	p.line = line
	k.orderMu.Lock()
	defer k.orderMu.Unlock()
	k.mu.Lock()
	if caps.echo {
		k.echoes = append(k.echoes, p)
	} else {
		k.writes = append(k.writes, p)
	}
	k.mu.Unlock()
	if err := k.irc.SendIRCMessage(msg); err != nil {
		k.mu.Lock()
		k.echoes = removePending(k.echoes, p)
		k.writes = removePending(k.writes, p)
		k.mu.Unlock()
		return nil, nil, err
	}
	return p.ch, dead, nil
}

func removePending(list []*pending, p *pending) []*pending {
	for i, q := range list {
		if q == p {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// labelResult reads the server's labeled response to a PRIVMSG, NOTICE or TAGMSG:
// its echo (with the msgid), an ACK, or an error numeric.
func labelResult(b *ircevent.Batch) lineResult {
	if b == nil {
		return lineResult{err: errNoConfirm}
	}
	var res *lineResult
	var walk func(*ircevent.Batch)
	walk = func(b *ircevent.Batch) {
		if res != nil {
			return
		}
		switch c := b.Command; {
		case c == "PRIVMSG" || c == "NOTICE" || c == "TAGMSG":
			_, id := b.GetTag("msgid")
			res = &lineResult{msgid: id}
		case c == "FAIL" || len(c) == 3 && (c[0] == '4' || c[0] == '5'):
			res = &lineResult{err: &refusal{code: c, text: lastParam(b.Message)}}
		}
		for _, it := range b.Items {
			walk(it)
		}
	}
	walk(b)
	if res == nil {
		return lineResult{} // ACK: accepted, no echo
	}
	return *res
}

// await waits for a submitted line's confirmation.
func (k *conn) await(ctx context.Context, ch <-chan lineResult, dead <-chan struct{}) lineResult {
	t, stop := k.cfg.clock.After(confirmTimeout)
	defer stop()
	select {
	case r := <-ch:
		return r
	case <-dead:
		select {
		case r := <-ch:
			return r
		default:
			return lineResult{err: errDisconnected}
		}
	case <-ctx.Done():
		return lineResult{err: ctx.Err()}
	case <-t:
		return lineResult{err: errNoConfirm}
	}
}
