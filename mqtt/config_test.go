package mqtt

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config/configtest"
)

// valid is a small correct config of an MQTT network; bad cases change
// one thing in it.
const valid = `
networks:
  devices:
    type: mqtt
    broker: tcp://127.0.0.1:1883
links:
  lobby: ["devices:chat/lobby"]
`

func TestBadConfigs(t *testing.T) {
	configtest.RunBad(t, []configtest.BadConfig{
		{
			Name: "MQTT wildcard",
			YAML: strings.Replace(valid, `"devices:chat/lobby"`, `"devices:chat/+"`, 1),
			Want: []string{`links.lobby[0]: invalid mqtt room "chat/+": an MQTT topic root contains no + or # wildcard`},
		},
		{
			Name: "MQTT trailing slash",
			YAML: strings.Replace(valid, `"devices:chat/lobby"`, `"devices:chat/"`, 1),
			Want: []string{`links.lobby[0]: invalid mqtt room "chat/": an MQTT topic root neither starts nor ends with /`},
		},
		{
			Name: "mqtt broker",
			YAML: "networks: {a: {type: mqtt, broker: 'http://h:1'}, b: {type: mqtt, broker: 'tcp://:1883'}, c: {type: mqtt}, d: {type: mqtt, broker: 'tcp://h:1', password: p, max_payload: -1}}",
			Want: []string{
				`networks.a.broker: scheme must be one of mqtt, mqtts, ssl, tcp, tls, ws, wss (want scheme://host:port)`,
				`networks.b.broker: no host (want tcp://host:port)`,
				`networks.c.broker: required (for example tcp://127.0.0.1:1883)`,
				`networks.d.max_payload: must be positive, got -1`,
				`networks.d.username: required when password is set`,
			},
		},
	})
}
