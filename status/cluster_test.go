package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/cluster"
)

type fakeCluster struct{ snap any }

func (fakeCluster) Instance() string               { return "sb-2" }
func (fakeCluster) Holds(network string) bool      { return network == "libera" }
func (f fakeCluster) Snapshot(context.Context) any { return f.snap }

// fakeNet is a network without Connected: always up.
type fakeNet struct{ adapters.Adapter }

// A network another instance holds is "elsewhere", not down: no problem
// for readiness. /status shows the instance, what it holds, and the
// cluster as NATS sees it.
func TestStatusInCluster(t *testing.T) {
	o := New(0, "v1", "c1")
	o.AddNetwork("libera", "irc", fakeNet{})
	o.AddNetwork("devices", "mqtt", fakeNet{})
	snap := cluster.Snapshot{Instances: []cluster.Member{{Name: "sb-1", Age: 0.5, Leases: []string{"network/devices"}}, {Name: "sb-2", Leases: []string{"network/libera"}}},
		Leases: []cluster.LeaseState{{Name: "network/devices", Holder: "sb-1", Token: 7}, {Name: "network/libera", Holder: "sb-2", Token: 9}}}
	o.SetCluster(fakeCluster{snap})
	st := o.Status(context.Background())
	if st.Cluster == nil || st.Cluster.Instance != "sb-2" || strings.Join(st.Cluster.Holds, ",") != "libera" {
		t.Fatalf("cluster %+v", st.Cluster)
	}
	for _, n := range st.Networks {
		want := map[string]string{"libera": "up", "devices": "elsewhere"}[n.Name]
		if n.State != want {
			t.Errorf("%s: %s, want %s", n.Name, n.State, want)
		}
	}
	for _, p := range st.Problems {
		if strings.Contains(p, "devices") {
			t.Errorf("problem for a network held elsewhere: %s", p)
		}
	}
	mux := http.NewServeMux()
	o.Routes(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	page := rec.Body.String()
	for _, want := range []string{`<strong id="instance">sb-2</strong>`, `<span id="holds">libera</span>`,
		`data-lease="network/devices" data-holder="sb-1"`, `token 9`, `data-instance="sb-1"`, `data-state="elsewhere"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/status lacks %s:\n%s", want, page)
		}
	}
	// NATS not answering: said so.
	o.SetCluster(fakeCluster{nil})
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	if !strings.Contains(rec.Body.String(), "NATS did not answer") {
		t.Errorf("/status without a snapshot does not say NATS did not answer")
	}
}
