package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

// A port already in use is a clear error naming the key that moves it.
func TestPortInUseNamesTheKey(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, c := range []struct{ key, yaml string }{
		{"http.listen", fmt.Sprintf("http: { listen: %q }\n", addr)},
		{"broker.listen", fmt.Sprintf("http: { listen: \"127.0.0.1:0\" }\nbroker: { listen: %q }\n", addr)},
	} {
		t.Run(c.key, func(t *testing.T) {
			cfg, err := config.Parse([]byte("data_dir: " + t.TempDir() + "\n" + c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			svc, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				svc.Stop(context.Background())
				t.Fatal("started on a port in use")
			}
			if !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "already in use") {
				t.Errorf("error %q does not say %s is in use", err, c.key)
			}
		})
	}
}
