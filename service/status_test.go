package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/status"
)

// startService starts Switchboard without waiting for its networks and
// stops it when the test ends.
func startService(t *testing.T, cfg *config.Config) *Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	svc, err := Start(ctx, cfg, testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		svc.Stop(ctx)
	})
	return svc
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// metric finds the value of one series ("name{labels}", labels in the
// order the exposition format writes them: sorted) in a scrape.
func metric(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// waitMetrics scrapes /metrics until every series has at least its value.
func waitMetrics(t *testing.T, svc *Service, want map[string]float64) string {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		code, body := httpGet(t, "http://"+svc.HTTPAddr+"/metrics")
		missing := ""
		for series, min := range want {
			if v, ok := metric(body, series); code != 200 || !ok || v < min {
				missing = fmt.Sprintf("%s = %v (found %v, status %d), want at least %v", series, v, ok, code, min)
				break
			}
		}
		if missing == "" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %s\n%s", missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getStatus(t *testing.T, svc *Service) status.Status {
	t.Helper()
	code, body := httpGet(t, "http://"+svc.HTTPAddr+"/api/status")
	if code != 200 {
		t.Fatalf("/api/status: %d %s", code, body)
	}
	var st status.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/api/status: %v\n%s", err, body)
	}
	return st
}

// A message bridged from MQTT to IRC moves the received and delivered
// counters and the latency histogram; /api/status shows both networks up.
func TestMetricsAfterBridgedMessage(t *testing.T) {
	w := newWorld(t)
	svc := startService(t, w.config(t, "puppet"))
	waitReady(t, svc)
	alice := w.human(t, "alice")
	w.publish(t, "sensor-1", "\xff not UTF-8")
	w.publish(t, "sensor-1", "hello")
	alice.WaitText(patience, room, "sensor-1[devices]", "hello")
	body := waitMetrics(t, svc, map[string]float64{
		`switchboard_inbound_dropped_total{network="devices",reason="malformed"}`: 1,
		`switchboard_puppets{network="libera"}`:                                   1,
		`switchboard_store_operation_seconds_count{op="accept"}`:                  1,
		`switchboard_events_received_total{network="devices",type="message"}`:     1,
		`switchboard_events_delivered_total{network="libera",type="message"}`:     1,
		`switchboard_relay_latency_seconds_count{network="libera"}`:               1,
		`switchboard_network_up{network="libera"}`:                                1,
		`switchboard_network_up{network="devices"}`:                               1,
	})
	for _, series := range []string{
		`switchboard_store_up`,
		`switchboard_delivery_retries_total{network="libera"}`,
		`switchboard_delivery_failures_total{network="libera"}`,
	} {
		if _, ok := metric(body, series); !ok {
			t.Errorf("no series %s in\n%s", series, body)
		}
	}
	if n, ok := metric(body, `switchboard_store_size_bytes`); !ok || n < 4096 {
		t.Errorf("switchboard_store_size_bytes %v (%v), want the SQLite file's size", n, ok)
	}
	st := getStatus(t, svc)
	if st.Store.SizeBytes == nil || *st.Store.SizeBytes < 4096 {
		t.Errorf("status store %+v, want the SQLite file's size", st.Store)
	}
	if len(st.Networks) != 2 || st.Networks[0].Name != "devices" || st.Networks[0].State != "up" ||
		st.Networks[1].Name != "libera" || st.Networks[1].State != "up" || st.Networks[1].Type != "irc" {
		t.Errorf("networks %+v, want devices and libera up", st.Networks)
	}
	if len(st.Links) != 1 || st.Links[0].Name != "lobby" || len(st.Links[0].Rooms) != 2 || !st.Ready {
		t.Errorf("status %+v, want ready with link lobby of two rooms", st)
	}
	if code, body := httpGet(t, "http://"+svc.HTTPAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
}

// deadConfig has an MQTT network that connects and an IRC network
// pointing at a closed port.
func deadConfig(t *testing.T, mqttURL, listen, grace string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q, ready_grace: %s }
networks:
  dead:
    type: irc
    server: 127.0.0.1:%d
    nick: switchboard
    reconnect_max: 1s
  devices:
    type: mqtt
    broker: %s
    client_id: switchboard-ops
links:
  lobby: [ "dead:#room", "devices:%s" ]
`, t.TempDir(), listen, grace, testenv.FreePort(t), mqttURL, root)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A network that cannot connect is down in /metrics and /api/status, and
// fails /readyz once the grace has passed, not before.
func TestDownNetworkFailsReadinessAfterGrace(t *testing.T) {
	broker := testenv.Mosquitto(t)
	const grace = 2 * time.Second
	began := time.Now()
	svc := startService(t, deadConfig(t, broker.URL, "127.0.0.1:0", grace.String()))
	waitMetrics(t, svc, map[string]float64{`switchboard_network_up{network="devices"}`: 1})
	body := waitMetrics(t, svc, map[string]float64{`switchboard_network_up{network="dead"}`: 0})
	if v, _ := metric(body, `switchboard_network_up{network="dead"}`); v != 0 {
		t.Errorf("switchboard_network_up{network=\"dead\"} = %v, want 0", v)
	}
	st := getStatus(t, svc)
	states := map[string]string{}
	for _, n := range st.Networks {
		states[n.Name] = n.State
	}
	if states["dead"] != "down" || states["devices"] != "up" {
		t.Errorf("states %v, want dead down and devices up", states)
	}
	deadline := time.Now().Add(patience)
	for {
		code, body := httpGet(t, "http://"+svc.HTTPAddr+"/readyz")
		if code == http.StatusServiceUnavailable {
			if since := time.Since(began); since < grace {
				t.Errorf("/readyz failed after %v, before the grace of %v", since, grace)
			}
			if !strings.Contains(body, "networks.dead") || strings.Contains(body, "networks.devices") {
				t.Errorf("/readyz says %q, want networks.dead only", body)
			}
			break
		}
		if code != 200 {
			t.Fatalf("/readyz: %d %s", code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after %v", code, patience)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := getStatus(t, svc); st.Ready || len(st.Problems) != 1 {
		t.Errorf("status ready %v, problems %q; want one problem", st.Ready, st.Problems)
	}
}

// A headless Chromium loads /status and sees every network with its state
// and the dead one's connection failure.
// The page has no script and loads nothing else; Chromium runs with the
// flags of TestBrowserChatPage, a proxy that does not exist and a resolver
// that resolves nothing, so it cannot reach beyond the loopback interface.
func TestStatusPageInBrowser(t *testing.T) {
	chromium := testenv.Need(t, "chromium")
	broker := testenv.Mosquitto(t)
	svc := startService(t, deadConfig(t, broker.URL, "127.0.0.1:0", "30s"))
	waitMetrics(t, svc, map[string]float64{`switchboard_network_up{network="devices"}`: 1})
	waitStatus(t, svc, "dead's connection failure", func(st status.Status) bool { return networkOf(st, "dead").LastError != nil })

	// A proxy that does not exist and a resolver that resolves nothing:
	// nothing can leave the loopback interface.
	browser := headlessChromium(t, chromium,
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"))
	ctx, cancel := context.WithTimeout(browser, patience)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate("http://"+svc.HTTPAddr+"/status"),
		chromedp.WaitVisible(chromedp.ID("networks")),
	); err != nil {
		t.Fatalf("loading /status: %v", err)
	}
	type shownNetwork struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	nets, err := chromedp.Run(ctx, chromedp.Evaluate[[]shownNetwork](`[...document.querySelectorAll("#networks li.network")].map((li) => ({
		name: li.querySelector(".name").textContent, state: li.querySelector(".state").textContent }))`))
	if err != nil {
		t.Fatalf("reading the networks: %v", err)
	}
	want := []shownNetwork{{"dead", "down"}, {"devices", "up"}}
	if fmt.Sprint(nets) != fmt.Sprint(want) {
		t.Errorf("the page shows networks %+v, want %+v", nets, want)
	}
	rooms, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#links li.room .room-name")].map((e) => e.textContent)`))
	if err != nil || fmt.Sprint(rooms) != fmt.Sprint([]string{"dead:#room", "devices:" + root}) {
		t.Errorf("the page shows rooms %q (%v)", rooms, err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#networks li[data-network="dead"] .error .message').textContent`))
	if err != nil || !strings.Contains(shown, "connect failed") || !strings.Contains(shown, "connection refused") {
		t.Errorf("the page shows dead's last error as %q (%v)", shown, err)
	}
	depth, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("depth").textContent`))
	if err != nil || depth == "" {
		t.Errorf("outbox depth %q (%v)", depth, err)
	}
	// Readable on a phone: nothing wider than the viewport.
	if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || wide {
		t.Errorf("the page scrolls sideways on a phone (%v)", err)
	}
}

// waitStatus polls /api/status until ok holds.
func waitStatus(t *testing.T, svc *Service, what string, ok func(status.Status) bool) status.Status {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		st := getStatus(t, svc)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/status never showed %s: %+v", what, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func networkOf(st status.Status, name string) status.Network {
	for _, n := range st.Networks {
		if n.Name == name {
			return n
		}
	}
	return status.Network{}
}

func linkRoom(st status.Status, name string) status.Room {
	for _, l := range st.Links {
		for _, r := range l.Rooms {
			if r.Room == name {
				return r
			}
		}
	}
	return status.Room{}
}

// What an operator sees of an IRC server that is down: the adapter's
// connection failure as libera's last error in /api/status and on
// /status, and a message from MQTT waiting for #room in the per-room
// outbox gauges, older at every scrape, until the server is back and the
// gauges drop it.
func TestDownNetworkErrorAndQueueShown(t *testing.T) {
	w := newWorld(t)
	w.irc.Process.Stop()
	svc := startService(t, w.config(t, "puppet"))

	st := waitStatus(t, svc, "libera's connection failure", func(st status.Status) bool {
		le := networkOf(st, "libera").LastError
		return le != nil && strings.Contains(le.Message, "connect failed") && strings.Contains(le.Message, "connection refused")
	})
	le := networkOf(st, "libera").LastError
	if age := time.Since(le.Time); age < 0 || age > patience {
		t.Errorf("last error at %v, not just now", le.Time)
	}
	if networkOf(st, "libera").State != "down" || networkOf(st, "devices").LastError != nil {
		t.Errorf("networks %+v, want libera down and no error for devices", st.Networks)
	}
	_, page := httpGet(t, "http://"+svc.HTTPAddr+"/status")
	if !strings.Contains(page, "connect failed") || !strings.Contains(page, "connection refused") {
		t.Errorf("/status does not show libera's error:\n%s", page)
	}

	waitMetrics(t, svc, map[string]float64{`switchboard_network_up{network="devices"}`: 1})
	w.publish(t, "sensor-1", "while IRC is down")
	const depth, age = `switchboard_outbox_depth{network="libera",room="#room"}`, `switchboard_outbox_oldest_age_seconds{network="libera",room="#room"}`
	body := waitMetrics(t, svc, map[string]float64{depth: 1})
	first, _ := metric(body, age)
	time.Sleep(1500 * time.Millisecond)
	body = waitMetrics(t, svc, map[string]float64{depth: 1})
	if later, ok := metric(body, age); !ok || later < first+1 {
		t.Errorf("%s went from %v to %v (found %v) in 1.5s, want it to grow", age, first, later, ok)
	}
	if _, ok := metric(body, `switchboard_outbox_depth{network="devices",room="sb/room"}`); ok {
		t.Errorf("a series for a room with nothing waiting:\n%s", body)
	}
	st = getStatus(t, svc)
	if r := linkRoom(st, "libera:#room"); r.Depth != 1 || r.Oldest == nil || r.Age == nil || *r.Age < 1 {
		t.Errorf("/api/status room libera:#room %+v, want one delivery waiting over a second", r)
	}
	if st.Outbox.Depth != 1 || len(st.Outbox.Rooms) != 1 {
		t.Errorf("/api/status outbox %+v, want one delivery for one room", st.Outbox)
	}
	if _, page := httpGet(t, "http://"+svc.HTTPAddr+"/status"); !strings.Contains(page, "1 waiting, oldest") {
		t.Errorf("/status does not show the waiting delivery:\n%s", page)
	}

	w.irc.Process.Start(t)
	waitMetrics(t, svc, map[string]float64{`switchboard_events_delivered_total{network="libera",type="message"}`: 1})
	deadline := time.Now().Add(patience)
	for {
		_, body := httpGet(t, "http://"+svc.HTTPAddr+"/metrics")
		_, queued := metric(body, depth)
		_, aged := metric(body, age)
		if !queued && !aged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still queued after the delivery:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := linkRoom(getStatus(t, svc), "libera:#room"); r.Depth != 0 || r.Oldest != nil {
		t.Errorf("/api/status room libera:#room %+v after the delivery, want nothing waiting", r)
	}
}
