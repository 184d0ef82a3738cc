package matrix

import (
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/appservice"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/config"
)

// Registration is the appservice registration the homeserver needs for a
// matrix network: its tokens, the bot, and exclusive namespaces for the
// bot, the ghosts and the portal aliases (RegistrationYAML adds the
// double-puppeted people: see withPeople). httpListen is Switchboard's
// http.listen, the appservice's address unless the network has listen or
// url.
func Registration(c *Config, httpListen string) *appservice.Registration {
	g := newGhosts(c.GhostLocalpart, c.Domain)
	rateLimited := false
	reg := &appservice.Registration{
		ID:              c.ID,
		URL:             appserviceURL(c, httpListen),
		AppToken:        c.ASToken,
		ServerToken:     c.HSToken,
		SenderLocalpart: c.Bot,
		RateLimited:     &rateLimited,
		EphemeralEvents: true,
	}
	reg.Namespaces.UserIDs = appservice.NamespaceList{
		// Dendrite only sends an appservice the events of rooms where one
		// of its namespaced users is joined: the bot must be in one.
		{Regex: "@" + regexp.QuoteMeta(c.Bot) + ":" + regexp.QuoteMeta(c.Domain), Exclusive: true},
		{Regex: g.regex(), Exclusive: true},
	}
	reg.Namespaces.RoomAliases = appservice.NamespaceList{
		{Regex: "#" + regexp.QuoteMeta(g.prefix) + ".*:" + regexp.QuoteMeta(c.Domain), Exclusive: true},
	}
	return reg
}

// withPeople adds to reg the users the appservice double-puppets, as
// non-exclusive user namespaces: the homeserver lets the appservice
// speak as a user only in its namespaces, and non-exclusive leaves them
// their own accounts. users are the MXIDs of people's double_puppet
// accounts; each gets an exact namespace, except those that
// double_puppet_namespace, when set, matches: that pattern is one
// namespace for them all.
//
// By default one exact pattern per person, not a broad one such as
// "@.*:domain": a homeserver pushes an appservice every event of every
// room where a user of its namespaces is joined, and every event such a
// user sends (Dendrite v0.15.2, appservice/consumers/roomserver.go,
// appserviceIsInterestedInEvent). A broad pattern hands Switchboard the
// private rooms and direct chats of everyone it matches (handleEvent
// drops them unread, see irrelevant). The price of exact patterns: a
// person added later needs the registration written again and the
// homeserver restarted (Dendrite reads it only at start); until then the
// homeserver refuses to let the appservice speak as them, the account
// shows failed and their ghost speaks for them. double_puppet_namespace
// is the operator's choice of the other side of that trade.
func withPeople(reg *appservice.Registration, c *Config, users []string) {
	ns := peopleNamespace(c)
	if ns != nil {
		reg.Namespaces.UserIDs = append(reg.Namespaces.UserIDs, appservice.Namespace{Regex: anchored(c.DoublePuppetNamespace), Exclusive: false})
	}
	users = slices.Clone(users)
	slices.Sort(users)
	for _, u := range slices.Compact(users) {
		if ns != nil && ns.MatchString(u) {
			continue
		}
		reg.Namespaces.UserIDs = append(reg.Namespaces.UserIDs, appservice.Namespace{Regex: "^" + regexp.QuoteMeta(u) + "$", Exclusive: false})
	}
}

// doublePuppeted lists the MXIDs of the double_puppet accounts of people
// on the matrix network named network.
func doublePuppeted(cfg *config.Config, network string) []string {
	var users []string
	for _, acct := range adapters.PersonalAccounts(cfg)[network] {
		if acct.DoublePuppet {
			users = append(users, acct.ID)
		}
	}
	return users
}

// noteAccount tells the operator when a valid double_puppet account
// needs more than the config before it works: the homeserver lets the
// appservice speak only as users of the registration it read at its
// start, and `switchboard matrix-registration` writes the registration
// from the config file (double_puppet_namespace, and the file's people
// outside it), never from the people added through the API.
func noteAccount(p *config.Problems, a config.Account, network string, file *config.Config) {
	if !a.DoublePuppet || file.Networks[network] == nil {
		return
	}
	c, _ := file.Networks[network].Section.(*Config)
	if c == nil {
		return
	}
	if ns := peopleNamespace(c); ns != nil && ns.MatchString(a.ID) {
		return // in the registration already, whoever adds them
	}
	key := "networks." + network + ".double_puppet_namespace"
	switch inFile := slices.Contains(doublePuppeted(file, network), a.ID); {
	case inFile && c.DoublePuppetNamespace == "":
		// The default: every such person has a namespace of their own,
		// as the Matrix guide says.
	case inFile:
		p.Add("double_puppet", "%s is outside %s: the registration names them on their own, so after adding or changing them write it again (switchboard matrix-registration) and restart the homeserver", a.ID, key)
	case c.DoublePuppetNamespace == "":
		p.Add("double_puppet", "%s is not in the registration, which names only the config file's people: until it is, the homeserver refuses to let Switchboard speak as them, and their ghost speaks for them. Set %s to a pattern that matches them (or add them to the config file), write the registration again (switchboard matrix-registration) and restart the homeserver", a.ID, key)
	default:
		p.Add("double_puppet", "%s is outside %s and not in the config file, so not in the registration: until it is, the homeserver refuses to let Switchboard speak as them, and their ghost speaks for them. Widen the pattern (or add them to the config file), write the registration again (switchboard matrix-registration) and restart the homeserver", a.ID, key)
	}
}

func appserviceURL(c *Config, httpListen string) string {
	if c.URL != "" {
		return c.URL
	}
	addr := httpListen
	if c.Listen != "" {
		addr = c.Listen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// RegistrationYAML renders the registration of the named matrix network
// of cfg; with network "" the config must have exactly one.
func RegistrationYAML(cfg *config.Config, network string) ([]byte, error) {
	if network == "" {
		var names []string
		for name, n := range cfg.Networks {
			if n != nil && n.Type == "matrix" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		switch len(names) {
		case 0:
			return nil, fmt.Errorf("no network of type matrix in the config")
		case 1:
			network = names[0]
		default:
			return nil, fmt.Errorf("several matrix networks (%v): choose one with --network", names)
		}
	}
	n := cfg.Networks[network]
	if n == nil {
		return nil, fmt.Errorf("no network %q in the config", network)
	}
	c, ok := n.Section.(*Config)
	if n.Type != "matrix" || !ok || c == nil {
		return nil, fmt.Errorf("network %q is of type %s, not matrix", network, n.Type)
	}
	reg := Registration(c, cfg.HTTP.Listen)
	withPeople(reg, c, doublePuppeted(cfg, network))
	return yaml.Marshal(reg)
}

// registrationCommand is "switchboard matrix-registration": it prints
// the registration a matrix network's homeserver needs.
var registrationCommand = adapters.Command{
	Name: "matrix-registration",
	Usage: `--config FILE [--network NAME]
	print the appservice registration YAML
	for a matrix network's homeserver`,
	Run: registrationMain,
}

func registrationMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("matrix-registration", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	network := fs.String("network", "", "the matrix network (default: the only one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "matrix-registration: --config FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	out, err := RegistrationYAML(cfg, *network)
	if err != nil {
		fmt.Fprintf(stderr, "matrix-registration: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}
