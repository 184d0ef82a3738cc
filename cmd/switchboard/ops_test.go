package main

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
)

// startService starts Switchboard without waiting for its networks and
// stops it when the test ends.
func startService(t *testing.T, cfg *config.Config) *service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	svc, err := start(ctx, cfg, testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		svc.stop(ctx)
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
func waitMetrics(t *testing.T, svc *service, want map[string]float64) string {
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

func getStatus(t *testing.T, svc *service) status {
	t.Helper()
	code, body := httpGet(t, "http://"+svc.HTTPAddr+"/api/status")
	if code != 200 {
		t.Fatalf("/api/status: %d %s", code, body)
	}
	var st status
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
	w.publish(t, "sensor-1", "hello")
	alice.WaitText(patience, room, "sensor-1[devices]", "hello")
	body := waitMetrics(t, svc, map[string]float64{
		`switchboard_events_received_total{network="devices",type="message"}`: 1,
		`switchboard_events_delivered_total{network="libera",type="message"}`: 1,
		`switchboard_relay_latency_seconds_count{network="libera"}`:           1,
		`switchboard_network_up{network="libera"}`:                            1,
		`switchboard_network_up{network="devices"}`:                           1,
	})
	for _, series := range []string{
		`switchboard_outbox_depth`,
		`switchboard_delivery_retries_total{network="libera"}`,
		`switchboard_delivery_failures_total{network="libera"}`,
	} {
		if _, ok := metric(body, series); !ok {
			t.Errorf("no series %s in\n%s", series, body)
		}
	}
	st := getStatus(t, svc)
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

// A headless Chromium loads /status and sees every network with its state.
// The page has no script and loads nothing else; Chromium runs with the
// flags of TestBrowserChatPage, a proxy that does not exist and a resolver
// that resolves nothing, so it cannot reach beyond the loopback interface.
func TestStatusPageInBrowser(t *testing.T) {
	chromium := testenv.Need(t, "chromium")
	broker := testenv.Mosquitto(t)
	svc := startService(t, deadConfig(t, broker.URL, "127.0.0.1:0", "30s"))
	waitMetrics(t, svc, map[string]float64{`switchboard_network_up{network="devices"}`: 1})

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
	rooms, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#links li.room")].map((li) => li.textContent)`))
	if err != nil || fmt.Sprint(rooms) != fmt.Sprint([]string{"dead:#room", "devices:" + root}) {
		t.Errorf("the page shows rooms %q (%v)", rooms, err)
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
