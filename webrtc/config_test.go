package webrtc

import (
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/config/configtest"
)

func TestBadConfigs(t *testing.T) {
	configtest.RunBad(t, []configtest.BadConfig{
		{
			Name: "ice servers",
			YAML: `
networks:
  web:
    type: webrtc
    ice_servers:
      - urls: ["stun:stun.example.org:3478>; rel=x"]
      - urls: ["turn:turn.example.org:3478"]
        username: "user\"name"
        credential: "line\nbreak"
      - urls: ["turn:turn.example.org:3478"]
`,
			Want: []string{
				`networks.web.ice_servers[0].urls[0]: "stun:stun.example.org:3478>; rel=x" has no host, or contains whitespace or <>"`,
				`networks.web.ice_servers[1].username: must not contain control characters, " or \`,
				`networks.web.ice_servers[1].credential: must not contain control characters, " or \`,
				`networks.web.ice_servers[2]: a TURN server needs username and credential`,
			},
		},
		{
			Name: "file size",
			YAML: `
networks:
  web: { type: webrtc, files: { max_size: -1 } }
`,
			Want: []string{`networks.web.files.max_size: want 0 (off) to 104857600 bytes, got -1`},
		},
		{
			Name: "file size too large",
			YAML: `
networks:
  web: { type: webrtc, files: { max_size: 104857601 } }
`,
			Want: []string{`networks.web.files.max_size: want 0 (off) to 104857600 bytes, got 104857601`},
		},
		{
			Name: "history",
			YAML: `
networks:
  web: { type: webrtc, history: 501 }
`,
			Want: []string{`networks.web.history: want 0-500 messages, got 501`},
		},
		{
			Name: "negative history",
			YAML: `
networks:
  web: { type: webrtc, history: -1 }
`,
			Want: []string{`networks.web.history: want 0-500 messages, got -1`},
		},
	})
}

// history is 50 unless given; 0 is none.
func TestHistoryDefault(t *testing.T) {
	for yaml, want := range map[string]int{
		`{ type: webrtc }`:              50,
		`{ type: webrtc, history: 0 }`:  0,
		`{ type: webrtc, history: 20 }`: 20,
	} {
		c, err := config.ParseEnv([]byte("networks:\n  web: "+yaml+"\n"), nil)
		if err != nil {
			t.Fatalf("%s: %v", yaml, err)
		}
		if got := c.Networks["web"].Section.(*Config).History; got != want {
			t.Errorf("%s: history %d, want %d", yaml, got, want)
		}
	}
}
