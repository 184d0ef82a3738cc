package config

import (
	"strings"
	"testing"
)

// fakeSection is a network type of config's own tests, so that config is
// tested without any protocol package.
type fakeSection struct {
	Server string `yaml:"server"`
	Secret string `yaml:"secret" secret:"true"`
	Rate   Rate   `yaml:"rate"`
}

func (f *fakeSection) SetDefaults(_ string, n *Network, given func(string) bool) {
	SetDefault(&n.Puppets.Template, "{name}/fake")
	f.Rate.SetDefaults(given, true)
}

func (f *fakeSection) Validate(p *Problems, _ *Network) {
	if err := CheckHostPort(f.Server, true, false); err != nil {
		p.Add("server", "%v", err)
	}
}

func (*fakeSection) CheckRoom(room string) error {
	if !strings.HasPrefix(room, "r") {
		return errorString("a fake room starts with r")
	}
	return nil
}

func (f *fakeSection) SenderRate() *Rate { return &f.Rate }

type errorString string

func (e errorString) Error() string { return string(e) }

func init() {
	RegisterType(NetworkType{
		Name: "fake", Config: func() Section { return new(fakeSection) },
		Example: "  f:\n    type: fake\n", Rooms: "Fake rooms start with r.",
		Single: "it is fake",
	})
}

func TestSectionThroughRegistry(t *testing.T) {
	c, err := ParseEnv([]byte(`
networks:
  f: {type: fake, server: "h:1", secret: "${S}"}
links:
  l: ["f:r1"]
`), map[string]string{"S": "hush-hush"})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Networks["f"]
	f, ok := n.Section.(*fakeSection)
	if !ok || f.Server != "h:1" || f.Secret != "hush-hush" || n.Puppets.Template != "{name}/fake" {
		t.Fatalf("network %+v, section %#v", n, n.Section)
	}
	if r := n.SenderRate(); r == nil || *r != (Rate{PerSecond: 1, Burst: 10}) {
		t.Errorf("sender rate %+v", r)
	}
	for _, s := range []string{c.String(), n.String()} {
		if strings.Contains(s, "hush-hush") || !strings.Contains(s, "secret: xxxxx") {
			t.Errorf("secret not redacted in %s", s)
		}
	}
	if f.Secret != "hush-hush" {
		t.Error("redaction changed the section")
	}

	_, err = ParseEnv([]byte(`
networks:
  f: {type: fake, server: "nohost", rate: {per_second: -1}, kick_blocks: true}
  g: {type: fake, server: "h:1"}
admins: ["fake:x", "nope:y"]
links:
  l: ["f:x1"]
`), nil)
	want := strings.Join([]string{
		`admins[1]: "nope" is neither a configured network nor a network type`,
		`links.l[0]: invalid fake room "x1": a fake room starts with r`,
		`networks.f.kick_blocks: fake rooms do not kick`,
		`networks.f.rate.per_second: must be a number of at least 0 (0: no limit), got -1`,
		`networks.f.server: "nohost" is not host:port`,
		`networks.g: a second fake network (f is one): at most one is allowed, as it is fake`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestRegisterTypeRefuses(t *testing.T) {
	for name, nt := range map[string]NetworkType{
		"twice":      {Name: "fake", Config: func() Section { return new(fakeSection) }},
		"common key": {Name: "clash", Config: func() Section { return new(clashSection) }},
		"no config":  {Name: "none"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			RegisterType(nt)
		})
	}
}

type clashSection struct {
	fakeSection
	Mode string `yaml:"mode"`
}

func TestExampleFromParts(t *testing.T) {
	ex := string(Example())
	if !strings.HasPrefix(ex, exampleHead) || !strings.Contains(ex, "networks:\n  f:\n    type: fake\n\n  g:\n    type: fakeacc\n\n# Links") {
		t.Errorf("example:\n%s", ex)
	}
	if !strings.Contains(ex, "\n# Fake rooms start with r.\nlinks:\n") {
		t.Errorf("rooms not in the links comment:\n%s", ex)
	}
}
