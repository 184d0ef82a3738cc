package service

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Until the service holds its networks through leases, two instances in
// cluster mode would both deliver everything: Start refuses it, before
// touching the store or any network.
func TestStartRefusesClusterMode(t *testing.T) {
	cfg, err := config.ParseEnv([]byte(`
data_dir: `+t.TempDir()+`
store: postgres://sb@127.0.0.1:1/sb
cluster: {nats: ["nats://127.0.0.1:1"], instance: sb-1}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Start(context.Background(), cfg, testenv.NewLog(t).Logger())
	if err == nil {
		svc.Stop(context.Background())
		t.Fatal("started in cluster mode")
	}
	if !strings.Contains(err.Error(), "cluster mode is not implemented yet") {
		t.Errorf("error %q does not say cluster mode is not there yet", err)
	}
}
