package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// WebRTCPeer is a Go WebRTC client of Switchboard's data-channel protocol:
// it POSTs an offer, opens the "chat" channel and records every frame.
// Its ICE runs on 127.0.0.1 only, without mDNS, so no packet leaves the
// host.
type WebRTCPeer struct {
	t        testing.TB
	pc       *webrtc.PeerConnection
	dc       *webrtc.DataChannel
	conn     *dropConn
	Base     string
	Location string // the session URL the POST answered with

	frames received[WebRTCFrame]
	closed chan struct{}
}

// WebRTCFrame is a frame Switchboard sent: an event (in the shape of MQTT
// out events) or a welcome or error frame. Raw is the JSON as received.
type WebRTCFrame struct {
	Raw     string `json:"-"`
	Type    string `json:"type"`
	ID      string `json:"id"`
	Network string `json:"network"`
	Room    string `json:"room"`
	Sender  struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Person string `json:"person"`
	} `json:"sender"`
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to"`
	EditOf  string `json:"edit_of"`
	Target  string `json:"target"`
	Key     string `json:"key"`
	Remove  bool   `json:"remove"`
	Reason  string `json:"reason"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Name    string `json:"name"`
	Person  string `json:"person"` // welcome: verified by a personal token
	Session string `json:"session"`
	Peers   []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Person string `json:"person"`
	} `json:"peers"`
	// Event is the message of a history frame, Edited the time of its
	// last edit; Count ends the history (history_end).
	Event  json.RawMessage `json:"event"`
	Edited string          `json:"edited"`
	Count  int             `json:"count"`
}

// WebRTCStatusError is a signaling request that was refused.
type WebRTCStatusError struct {
	Status int
	Body   string
}

func (e *WebRTCStatusError) Error() string {
	return fmt.Sprintf("signaling: HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// dropConn is a UDP socket that can stop working without telling anyone,
// as when a laptop's lid closes.
type dropConn struct {
	net.PacketConn
	dropped atomic.Bool
}

func (c *dropConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.dropped.Load() {
			return n, addr, err
		}
	}
}

func (c *dropConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.dropped.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// WebRTCAPI returns a pion API restricted to 127.0.0.1 on conn, with ICE
// timeouts short enough for tests.
func webrtcAPI(conn net.PacketConn) *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = quiet
	se.SetICEUDPMux(ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: quiet.NewLogger("udpmux")}))
	se.SetICETimeouts(2*time.Second, 4*time.Second, 500*time.Millisecond)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// DialWebRTC connects to base (http://host:port) in room, with a bearer
// token unless it is "", and waits for the channel to open. It does not
// say hello. The peer is closed when the test ends.
func DialWebRTC(t testing.TB, base, room, token string) (*WebRTCPeer, error) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return DialWebRTCHeader(t, base, room, h)
}

// DialWebRTCHeader is DialWebRTC with these headers on the offer (a
// personal token, say).
func DialWebRTCHeader(t testing.TB, base, room string, header http.Header) (*WebRTCPeer, error) {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	conn := &dropConn{PacketConn: udp}
	pc, err := webrtcAPI(conn).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		udp.Close()
		return nil, err
	}
	p := &WebRTCPeer{t: t, pc: pc, conn: conn, Base: base, closed: make(chan struct{})}
	t.Cleanup(func() { p.Close(); udp.Close() })
	dc, err := pc.CreateDataChannel("chat", nil)
	if err != nil {
		return nil, err
	}
	p.dc = dc
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		f := WebRTCFrame{Raw: string(m.Data)}
		json.Unmarshal(m.Data, &f)
		p.frames.add(f)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	<-gathered
	status, body, hdr, err := postSDP(base+"/webrtc/"+room, header, pc.LocalDescription().SDP)
	if err != nil {
		return nil, err
	}
	if status != http.StatusCreated {
		return nil, &WebRTCStatusError{Status: status, Body: body}
	}
	p.Location = hdr.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		return nil, err
	}
	select {
	case <-opened:
	case <-time.After(20 * time.Second):
		return nil, fmt.Errorf("data channel not open after 20s (ICE %s)", pc.ICEConnectionState())
	}
	return p, nil
}

// PostSDP posts an offer as application/sdp.
func PostSDP(url, token, offer string) (int, string, http.Header, error) {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return postSDP(url, h, offer)
}

func postSDP(url string, header http.Header, offer string) (int, string, http.Header, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		return 0, "", nil, err
	}
	if header != nil {
		req.Header = header.Clone()
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// MustDialWebRTC is DialWebRTC that fails the test on error, then says
// hello as name (with id unless "") and waits for the welcome.
func MustDialWebRTC(t testing.TB, base, room, token, name, id string) *WebRTCPeer {
	t.Helper()
	p, err := DialWebRTC(t, base, room, token)
	if err != nil {
		t.Fatalf("webrtc peer %s: %v", name, err)
	}
	p.Send(map[string]any{"type": "hello", "name": name, "id": id})
	p.Wait(t, 20*time.Second, "welcome", func(f WebRTCFrame) bool { return f.Type == "welcome" })
	return p
}

// Send sends a value as a JSON text frame.
func (p *WebRTCPeer) Send(v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	p.SendRaw(string(b))
}

// SendRaw sends a text frame as is.
func (p *WebRTCPeer) SendRaw(s string) {
	p.t.Helper()
	if err := p.dc.SendText(s); err != nil {
		p.t.Fatalf("webrtc send: %v", err)
	}
}

// Say sends a message frame.
func (p *WebRTCPeer) Say(text string) error {
	b, _ := json.Marshal(map[string]string{"type": "message", "text": text})
	return p.dc.SendText(string(b))
}

// Frames returns the frames received so far.
func (p *WebRTCPeer) Frames() []WebRTCFrame {
	return p.frames.all()
}

// WaitFor returns the first frame received (ever) that matches, waiting
// until ctx ends.
func (p *WebRTCPeer) WaitFor(ctx context.Context, match func(WebRTCFrame) bool) (WebRTCFrame, error) {
	return p.waitAfter(ctx, 0, match)
}

// Next returns the first matching frame from index from on, and the index
// after it; a reader that consumes frames in order passes it back.
func (p *WebRTCPeer) Next(ctx context.Context, from int, match func(WebRTCFrame) bool) (WebRTCFrame, int, error) {
	// ctx bounds the wait; the timeout only has to be longer.
	i, f, err := p.frames.waitIndex(from, 24*time.Hour, ctx.Done(), match)
	if err != nil {
		return WebRTCFrame{}, p.frames.count(), ctx.Err()
	}
	return f, i + 1, nil
}

func (p *WebRTCPeer) waitAfter(ctx context.Context, from int, match func(WebRTCFrame) bool) (WebRTCFrame, error) {
	f, _, err := p.Next(ctx, from, match)
	return f, err
}

// Wait is WaitFor that fails the test after d.
func (p *WebRTCPeer) Wait(t testing.TB, d time.Duration, what string, match func(WebRTCFrame) bool) WebRTCFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	f, err := p.WaitFor(ctx, match)
	if err != nil {
		var got []string
		for _, f := range p.Frames() {
			got = append(got, f.Raw)
		}
		t.Fatalf("webrtc peer never got %s: %v; frames:\n%s", what, err, strings.Join(got, "\n"))
	}
	return f
}

// Close closes the peer connection abruptly (no DELETE, no goodbye).
func (p *WebRTCPeer) Close() {
	p.pc.Close()
}

// Vanish makes the peer silently stop sending and receiving, as a peer
// whose network went away: Switchboard only notices by ICE timing out.
func (p *WebRTCPeer) Vanish() {
	p.conn.dropped.Store(true)
}

// Delete ends the session politely with DELETE on its Location.
func (p *WebRTCPeer) Delete(token string) (int, error) {
	req, err := http.NewRequest(http.MethodDelete, p.Base+p.Location, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
