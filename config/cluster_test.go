package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/config/configtest"
)

const clusterPG = "store: postgres://sb@db/sb\n"

func TestClusterOffByDefault(t *testing.T) {
	for name, yaml := range map[string]string{
		"no section":    "",
		"empty section": "cluster: {}\n",
		"example's":     "cluster: {nats: [], instance: '${SWITCHBOARD_INSTANCE:-}', lease_ttl: 10s}\n",
	} {
		c, err := config.ParseEnv([]byte(yaml+"broker: {}\n"), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Cluster.On() || c.Cluster.LeaseTTL != config.DefaultLeaseTTL || c.Store != "sqlite" {
			t.Errorf("%s: %+v store %s, want cluster off with the default TTL on sqlite", name, c.Cluster, c.Store)
		}
	}
}

func TestClusterGood(t *testing.T) {
	c, err := config.ParseEnv([]byte(clusterPG+`
cluster:
  nats: ["nats://n1.example.org:4222", "tls://n2.example.org", "nats://${NATS_TOKEN}@n3:4222"]
  instance: ${SWITCHBOARD_INSTANCE}
  lease_ttl: 3s
`), map[string]string{"SWITCHBOARD_INSTANCE": "sb-1", "NATS_TOKEN": "t0ken-s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.On() || c.Cluster.Instance != "sb-1" || c.Cluster.LeaseTTL != 3*time.Second || len(c.Cluster.NATS) != 3 {
		t.Fatalf("%+v", c.Cluster)
	}
	// The token is a secret: printed redacted, kept in the config.
	if s := c.String(); strings.Contains(s, "t0ken-s3cret") || !strings.Contains(s, "nats://xxxxx@n3:4222") {
		t.Errorf("String shows the NATS token or no redacted URL:\n%s", s)
	}
	if c.Cluster.NATS[2] != "nats://t0ken-s3cret@n3:4222" {
		t.Errorf("redaction changed the config: %q", c.Cluster.NATS[2])
	}
}

func TestClusterBad(t *testing.T) {
	on := "cluster: {nats: [\"nats://127.0.0.1:4222\"], instance: a}\n"
	configtest.RunBad(t, []configtest.BadConfig{
		{
			Name: "on sqlite",
			YAML: on,
			Want: []string{"store: cluster mode needs a postgres:// store that every instance shares, not sqlite (one machine's file)"},
		},
		{
			Name: "with the embedded broker",
			YAML: clusterPG + on + "broker: {}\n",
			Want: []string{"broker: the embedded MQTT broker runs inside one instance and is not shared: leave it out in cluster mode and point the MQTT networks at a broker every instance reaches"},
		},
		{
			Name: "fields",
			YAML: clusterPG + `cluster:
  nats: ["http://u:pw-s3cret@h:80", "nats://:99999", "nats://h:4222/x", "n1:4222", "nats://h:0"]
  instance: "a.b"
  lease_ttl: 1s
`,
			Want: []string{
				"cluster.nats[0]: want a nats:// or tls:// URL, got a http:// URL",
				"cluster.nats[1]: the URL has no host",
				"cluster.nats[2]: a NATS URL has no path",
				"cluster.nats[3]: want a nats:// or tls:// URL, got a n1:// URL",
				`cluster.nats[4]: invalid port "0" (want 1-65535)`,
				`cluster.instance: invalid instance name "a.b" (want 1 to 64 letters, digits, _ and -)`,
				"cluster.lease_ttl: want 2s to 5m0s, got 1s",
			},
		},
		{
			Name: "no instance, TTL too long",
			YAML: clusterPG + "cluster: {nats: [\"tls://h:4222\"], lease_ttl: 10h}\n",
			Want: []string{
				"cluster.instance: required in cluster mode: a name unique to this instance, e.g. ${SWITCHBOARD_INSTANCE}",
				"cluster.lease_ttl: want 2s to 5m0s, got 10h0m0s",
			},
		},
		{
			Name: "instance without nats",
			YAML: "cluster: {instance: a}\n",
			Want: []string{"cluster.instance: only applies in cluster mode (cluster.nats lists no server)"},
		},
	})
}
