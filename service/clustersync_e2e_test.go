package service

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/status"
)

// clusterSyncNames are two instance names among which the spread gives
// IRC to the first and MQTT to the second: the one that changes a link
// or a block is then not the one that acts on it.
func clusterSyncNames() (ircHolder, mqttHolder string) {
	for i := 0; ; i++ {
		insts := []string{fmt.Sprintf("sync-a%d", i), fmt.Sprintf("sync-b%d", i)}
		h := cluster.Owner(cluster.LeaseName("libera"), insts)
		if m := cluster.Owner(cluster.LeaseName("devices"), insts); m != h {
			return h, m
		}
	}
}

// clusterConfig is w's config (IRC #room linked with MQTT sb/room) as
// instance of a cluster on the PostgreSQL at dsn and the NATS at natsURL.
func (w *world) clusterConfig(t *testing.T, dsn, natsURL, instance string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s/%s
store: %s
http: { listen: "127.0.0.1:0", api_token: %s }
cluster: { nats: [ %q ], instance: %s, lease_ttl: 2s }
networks:
  libera: { type: irc, server: %s, nick: switchboard, reconnect_max: 1s, flood: { burst: 50, interval: 10ms } }
  devices: { type: mqtt, broker: %s, client_id: sb-cluster-sync }
admins: [ "libera:alice!*@*" ]
links:
  lobby: [ "libera:%s", "devices:%s" ]
`, w.dir, instance, dsn, apiToken, natsURL, instance, w.irc.Addr, w.mqtt.URL, room, root)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// holds reports whether svc's /api/status says it holds network and has
// it up.
func holds(t *testing.T, svc *Service, network string) bool {
	st := getStatus(t, svc)
	if st.Cluster == nil || !slices.Contains(st.Cluster.Holds, network) {
		return false
	}
	return slices.ContainsFunc(st.Networks, func(n status.Network) bool { return n.Name == network && n.State == "up" })
}

// Issue 26: what the API and the chat commands change on one instance
// reaches the others at once. Two instances share PostgreSQL and NATS;
// one holds IRC, the other MQTT. A link created through the MQTT
// holder's API has the IRC holder join its channel and bridge it both
// ways; an IRC operator's block of a device, made on the IRC holder,
// is in the other's status within a moment and, once IRC moves there
// (the holder stops), keeps the device's messages out of the channel.
// A person put through the MQTT holder's API speaks on IRC from her own
// account (InspIRCd with Atheme, SASL), which the IRC holder connects.
// The periodic resync is pushed out of the test: only the notices can
// pass the changes on.
func TestClusterChangesReachEveryInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, nats-server, InspIRCd and Mosquitto")
	}
	defer func(d time.Duration) { resyncEvery = d }(resyncEvery)
	resyncEvery = time.Hour
	const password = "carol-secret-pw"
	services := testenv.Atheme(t)
	services.RegisterAccount(t, "carol", password)
	dsn, nats := testenv.Postgres(t), testenv.NATS(t)
	w := &world{irc: services.IRC, mqtt: testenv.Mosquitto(t), dir: t.TempDir()}
	alice := w.irc.Client(t, "alice") // an admin
	alice.Join(room)
	alice.Join(room2)

	ircName, mqttName := clusterSyncNames()
	ircSvc, stopIRC := runService(t, w.clusterConfig(t, dsn, nats.URL, ircName))
	mqttSvc, _ := runService(t, w.clusterConfig(t, dsn, nats.URL, mqttName))
	waitFor(t, ircName+" holding IRC and "+mqttName+" MQTT", func() bool {
		return holds(t, ircSvc, "libera") && holds(t, mqttSvc, "devices") && !holds(t, ircSvc, "devices") && !holds(t, mqttSvc, "libera")
	})

	// A link made through the MQTT holder's API.
	fresh := map[string]any{"name": "fresh", "rooms": []string{"libera:" + room2, "devices:" + root2}}
	joined := alice.Len()
	made := time.Now()
	if code, body := apiCall(t, "POST", "http://"+mqttSvc.HTTPAddr+"/api/links", apiToken, fresh); code != http.StatusCreated {
		t.Fatalf("create through %s: %d %s", mqttName, code, body)
	}
	if _, err := alice.WaitFrom(joined, patience, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && strings.EqualFold(l.Nick(), "switchboard") && strings.EqualFold(l.Params[0], room2)
	}); err != nil {
		t.Fatalf("the IRC holder did not join %s: %v", room2, err)
	}
	t.Logf("the IRC holder joined the new link's channel %v after the API call", time.Since(made).Round(time.Millisecond))
	if got := linkNames(t, "http://"+ircSvc.HTTPAddr); !slices.Contains(got, "fresh=libera:#new,devices:sb/new(runtime)") {
		t.Fatalf("the IRC holder's API lists the links %q", got)
	}
	w.publishTo(t, root2, "sensor-2", "hello new")
	alice.WaitText(patience, room2, "sensor-2[devices]", "hello new")
	sub := w.mqtt.Subscribe(t, root2+"/out/#", 1)
	alice.Say(room2, "hi from irc")
	waitPayload(t, sub, `"text":"hi from irc"`)

	// Links created at the same time through both instances' APIs: none
	// is lost, on either instance.
	var wg sync.WaitGroup
	want := []string{"fresh", "lobby"}
	for i, svc := range []*Service{ircSvc, mqttSvc} {
		for j := range 8 {
			name := fmt.Sprintf("burst-%d-%d", i, j)
			want = append(want, name)
			rooms := []string{fmt.Sprintf("devices:burst/%d/%d/a", i, j), fmt.Sprintf("devices:burst/%d/%d/b", i, j)}
			wg.Go(func() {
				if code, body := apiCall(t, "POST", "http://"+svc.HTTPAddr+"/api/links", apiToken, map[string]any{"name": name, "rooms": rooms}); code != http.StatusCreated {
					t.Errorf("create %s: %d %s", name, code, body)
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(want)
	for _, svc := range []*Service{ircSvc, mqttSvc} {
		waitFor(t, "every link on both instances", func() bool {
			var got []string
			for _, l := range linkNames(t, "http://"+svc.HTTPAddr) {
				got = append(got, l[:strings.Index(l, "=")])
			}
			slices.Sort(got)
			return slices.Equal(got, want)
		})
	}

	// A person put through the MQTT holder's API speaks on IRC from
	// their own account, which the IRC holder connects.
	carol := map[string]any{"home": "devices", "accounts": map[string]any{
		"libera": map[string]any{"id": "carol", "password": password}, "devices": "carols-phone",
	}}
	if code, body := apiCall(t, "PUT", "http://"+mqttSvc.HTTPAddr+"/api/people/carol", apiToken, carol); code != http.StatusCreated {
		t.Fatalf("put carol through %s: %d %s", mqttName, code, body)
	}
	waitFor(t, "carol in the IRC holder's API", func() bool {
		code, _ := apiCall(t, "GET", "http://"+ircSvc.HTTPAddr+"/api/people/carol", apiToken, nil)
		return code == http.StatusOK
	})
	w.publish(t, "carols-phone", "from carol's phone")
	if l := alice.WaitText(patience, room, "", "from carol's phone"); l.Nick() != "carol" {
		t.Errorf("carol's message came from %q, want her own nick carol", l.Nick())
	}

	// A block made on the IRC holder.
	command(t, alice, "!sb block devices:sensor-1", "Blocked devices:sensor-1 from libera:#room")
	blocked := time.Now()
	waitFor(t, "the block in the other instance's status", func() bool {
		return slices.ContainsFunc(getStatus(t, mqttSvc).Blocks, func(b status.Block) bool {
			return b.Room == "libera:"+room && b.Sender == "devices:sensor-1"
		})
	})
	t.Logf("the block reached the other instance in %v", time.Since(blocked).Round(time.Millisecond))

	// IRC moves to the other instance, which keeps sensor-1 out.
	stopIRC()
	waitFor(t, mqttName+" holding IRC", func() bool { return holds(t, mqttSvc, "libera") })
	w.publish(t, "sensor-1", "kept out")
	w.publish(t, "sensor-2", "let through")
	alice.WaitText(patience, room, "sensor-2[devices]", "let through")
	waitFor(t, "sensor-1's message on the failed list", func() bool {
		return slices.ContainsFunc(failedFrom(t, "http://"+mqttSvc.HTTPAddr, "devices:sensor-1"), func(f httpapi.Failed) bool {
			return strings.Contains(f.Reason, "blocked from #room on libera by alice")
		})
	})
	for _, l := range messages(alice, "") {
		if strings.Contains(l, "kept out") {
			t.Fatalf("a blocked device's message reached the channel: %q", l)
		}
	}
}
