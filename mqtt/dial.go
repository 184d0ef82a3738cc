package mqtt

import (
	"bufio"
	"net"
	"net/url"
	"os"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// bufferedReads tells whether paho's connection to broker should get a
// read buffer (see dialBuffered): plain TCP with no proxy to go through.
// TLS buffers whole records already, and websockets and proxies are left
// to paho's own dialing.
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
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	c, err := d.Dial("tcp", broker.Host)
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
