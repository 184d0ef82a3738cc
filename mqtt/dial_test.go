package mqtt

import (
	"net/url"
	"testing"
)

func TestBufferedReads(t *testing.T) {
	for _, tc := range []struct {
		broker, proxy string
		want          bool
	}{
		{"tcp://127.0.0.1:1883", "", true},
		{"mqtt://127.0.0.1:1883", "", true},
		{"tcp://127.0.0.1:1883", "socks5://127.0.0.1:1080", false}, // paho dials through the proxy
		{"ssl://127.0.0.1:8883", "", false},                        // TLS buffers already
		{"ws://127.0.0.1:9001/mqtt", "", false},
	} {
		t.Setenv("all_proxy", tc.proxy)
		u, err := url.Parse(tc.broker)
		if err != nil {
			t.Fatal(err)
		}
		if got := bufferedReads(u); got != tc.want {
			t.Errorf("%s with all_proxy=%q: buffered %v, want %v", tc.broker, tc.proxy, got, tc.want)
		}
	}
}
