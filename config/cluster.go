package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Cluster is cluster mode: several instances running one configuration
// on one PostgreSQL store, coordinated through NATS JetStream (package
// cluster). Off (one instance, as without the section) while NATS lists
// no server. See docs/cluster.md.
type Cluster struct {
	// NATS are the URLs of the NATS servers (nats:// or tls://), all of
	// one NATS cluster with JetStream.
	NATS []string `yaml:"nats,omitempty" secret:"url"`
	// Instance names this instance, unique among those sharing the
	// configuration: usually from the environment.
	Instance string `yaml:"instance,omitempty"`
	// LeaseTTL is how long a network stays with an instance that stopped
	// renewing its lease (crashed, frozen, cut off) before another takes
	// it over.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

const (
	DefaultLeaseTTL = 10 * time.Second
	// MinLeaseTTL: renewals go every quarter TTL and an instance stops
	// sending a quarter TTL before its lease could pass on, so a shorter
	// TTL leaves too little room for a slow NATS round trip.
	MinLeaseTTL = 2 * time.Second
	// MaxLeaseTTL catches a unit typo (10h for 10s): a network would stay
	// silent that long after its owner died.
	MaxLeaseTTL = 5 * time.Minute
)

// instanceRE is what an instance name may be: it is a NATS KV key and
// appears in logs and metric labels.
var instanceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidInstance reports whether name may name a cluster instance.
func ValidInstance(name string) bool { return instanceRE.MatchString(name) }

// On reports whether cluster mode is on.
func (c Cluster) On() bool { return len(c.NATS) > 0 }

func (c *Cluster) setDefaults(given func(string) bool) {
	SetDefault(&c.LeaseTTL, DefaultLeaseTTL, given("cluster.lease_ttl"))
	if len(c.NATS) == 0 {
		c.NATS = nil // "nats: []" (the example's) is left out
	}
}

func (c *Config) validateCluster(errs *errorList) {
	cl := c.Cluster
	for i, u := range cl.NATS {
		if err := checkNATSURL(u); err != nil {
			errs.add(fmt.Sprintf("cluster.nats[%d]", i), "%v", err)
		}
	}
	if cl.LeaseTTL < MinLeaseTTL || cl.LeaseTTL > MaxLeaseTTL {
		errs.add("cluster.lease_ttl", "want %v to %v, got %v", MinLeaseTTL, MaxLeaseTTL, cl.LeaseTTL)
	}
	switch {
	case cl.Instance != "" && !ValidInstance(cl.Instance):
		errs.add("cluster.instance", "invalid instance name %q (want 1 to 64 letters, digits, _ and -)", cl.Instance)
	case !cl.On() && cl.Instance != "":
		errs.add("cluster.instance", "only applies in cluster mode (cluster.nats lists no server)")
	case cl.On() && cl.Instance == "":
		errs.add("cluster.instance", "required in cluster mode: a name unique to this instance, e.g. ${SWITCHBOARD_INSTANCE}")
	}
	if !cl.On() {
		return
	}
	if c.Store == "sqlite" {
		errs.add("store", "cluster mode needs a postgres:// store that every instance shares, not sqlite (one machine's file)")
	}
	if c.Broker != nil {
		errs.add("broker", "the embedded MQTT broker runs inside one instance and is not shared: leave it out in cluster mode and point the MQTT networks at a broker every instance reaches")
	}
}

// checkNATSURL's messages never quote the value: it may carry a password
// or a token.
func checkNATSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "nats", "tls":
	default:
		if !schemeRE.MatchString(u.Scheme) {
			return errors.New("want a nats:// or tls:// URL")
		}
		return fmt.Errorf("want a nats:// or tls:// URL, got a %s:// URL", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	if p := u.Port(); p != "" {
		if err := CheckPort(p, false); err != nil {
			return err
		}
	}
	if u.Path != "" && u.Path != "/" {
		return errors.New("a NATS URL has no path")
	}
	return nil
}
