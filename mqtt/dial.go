package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// opener is paho's connection opener (SetCustomOpenConnectionFn) when the
// adapter needs its own: a read buffer on plain TCP (bufferedReads), the
// cluster fence on every scheme (UseFence: no dial, and no write, once
// this instance no longer holds the network; internal/fence). nil leaves
// the dialing to paho.
func (a *Adapter) opener() paho.OpenConnectionFunc {
	buffered := bufferedReads(a.broker)
	if a.fence == nil && !buffered {
		return nil
	}
	return func(broker *url.URL, o paho.ClientOptions) (net.Conn, error) {
		// A fenced instance opens no connection (internal/fence); run's
		// backoff paces the retries until the adapter is stopped.
		if err := a.fence.CheckDial("tcp", broker.Host); err != nil {
			return nil, err
		}
		var c net.Conn
		var err error
		if buffered {
			c, err = dialBuffered(broker, o)
		} else {
			c, err = dialAsPaho(broker, o)
		}
		if err != nil {
			return nil, err
		}
		return a.fence.Wrap(c), nil
	}
}

// bufferedReads tells whether paho's connection to broker should get a
// read buffer (see dialBuffered): plain TCP with no proxy to go through.
// TLS buffers whole records already, and websockets and proxies are left
// to dialAsPaho.
func bufferedReads(broker *url.URL) bool {
	switch broker.Scheme {
	case "tcp", "mqtt":
		return os.Getenv("all_proxy") == "" && os.Getenv("ALL_PROXY") == ""
	}
	return false
}

// dialBuffered opens a TCP connection to the broker with a read buffer.
// paho reads each packet's fixed header a byte at a time, a system call
// each; from a buffer one call serves the packet, and any after it.
func dialBuffered(broker *url.URL, o paho.ClientOptions) (net.Conn, error) {
	c, err := dialer(o).Dial("tcp", broker.Host)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReader(c)}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func dialer(o paho.ClientOptions) *net.Dialer {
	if o.Dialer != nil {
		return o.Dialer
	}
	return &net.Dialer{Timeout: o.ConnectTimeout}
}

// dialAsPaho opens the connection as paho v1.5.1 does when it dials
// itself (its openConnection, which it does not export), for the
// schemes config accepts: websockets through paho's NewWebsocket, TCP and
// TLS through the proxy in all_proxy if any. One difference: TLS through
// a proxy gets the broker's host name to verify, where paho, given no
// TLS config, fails the handshake.
func dialAsPaho(broker *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := dialer(o)
	switch broker.Scheme {
	case "ws", "wss":
		u := *broker // gorilla/websocket refuses URLs with user info
		u.User = nil
		return paho.NewWebsocket(u.String(), o.TLSConfig, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "mqtt", "tcp":
		return proxy.FromEnvironmentUsing(d).Dial("tcp", broker.Host)
	case "ssl", "tls", "mqtts":
		if os.Getenv("all_proxy") == "" {
			return tls.DialWithDialer(d, "tcp", broker.Host, o.TLSConfig)
		}
		c, err := proxy.FromEnvironmentUsing(d).Dial("tcp", broker.Host)
		if err != nil {
			return nil, err
		}
		cfg := o.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg.ServerName = broker.Hostname()
		}
		tc := tls.Client(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	return nil, errors.New("mqtt: unknown broker scheme " + broker.Scheme)
}
