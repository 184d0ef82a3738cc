package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/config"
)

// clusterTimeout bounds the whole look: connecting (a NATS that does not
// answer) and reading the buckets.
const clusterTimeout = 5 * time.Second

// clusterCmd is `switchboard cluster status --config FILE [--json]`: what
// the cluster's NATS says of its instances and leases, read without
// joining (cluster.Observe), so it can run anywhere the config can.
func clusterCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "usage: switchboard cluster status --config FILE [--json]")
		return 2
	}
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the instances' config file")
	asJSON := fs.Bool("json", false, "print the snapshot as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "cluster status: --config FILE is required")
		return 2
	}
	cfg, err := loadClusterConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		if strings.Contains(err.Error(), "environment variable") {
			fmt.Fprintln(stderr, "cluster status reads the config as an instance does: run it with an instance's environment (docker compose exec, or the variables of the instances' env file)")
		}
		return 1
	}
	if !cfg.Cluster.On() {
		fmt.Fprintf(stderr, "%s: not a cluster config: cluster.nats lists no NATS server (cluster mode is off)\n", *path)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	urls := strings.Join(config.RedactedURLs(cfg.Cluster.NATS), ", ")
	o := cluster.FromConfig(cfg.Cluster)
	n, err := cluster.Observe(ctx, o, 2*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "cluster status: NATS at %s: %v\n", urls, err)
		return 1
	}
	defer n.Close()
	s, err := n.Snapshot(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "cluster status: reading the cluster from NATS at %s: %v\n", urls, err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	printCluster(stdout, s, urls, networkNames(cfg))
	return 0
}

// loadClusterConfig loads the config as check does, except that an unset
// SWITCHBOARD_INSTANCE stands for a name: the instances get theirs from
// it (see packaging/), the operator's shell has none, and the look
// never uses this instance's name.
func loadClusterConfig(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if _, ok := env["SWITCHBOARD_INSTANCE"]; !ok {
		env["SWITCHBOARD_INSTANCE"] = "cluster-status"
	}
	return config.ParseEnv(data, env)
}

// networkNames are what the instances hold: each network, and each
// shard of a sharded one (cluster.ShardName).
func networkNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Networks))
	for name, n := range cfg.Networks {
		names = append(names, name)
		// Made, never started: only asked how many shards it has.
		a, err := adapters.New(name, n, slog.New(slog.DiscardHandler))
		if sh, ok := a.(adapters.Sharded); ok && err == nil {
			for k := 1; k < sh.Shards(); k++ {
				names = append(names, cluster.ShardName(name, k))
			}
		}
	}
	sort.Strings(names)
	return names
}

// printCluster writes the snapshot as tables: instances, leases, and the
// config's networks (and shards) whose lease nobody holds, with the instance they are
// assigned to among the live ones.
func printCluster(w io.Writer, s cluster.Snapshot, urls string, networks []string) {
	fmt.Fprintf(w, "NATS %s, lease TTL %v, at %s\n\n", urls, time.Duration(s.LeaseTTL*float64(time.Second)), s.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	live := make([]string, 0, len(s.Instances))
	if len(s.Instances) == 0 {
		fmt.Fprintln(tw, "Instances: none live (no heartbeat within the lease TTL)")
	} else {
		fmt.Fprintf(tw, "Instances (%d):\n", len(s.Instances))
		fmt.Fprintln(tw, "INSTANCE\tLAST HEARTBEAT\tUP SINCE\tVERSION\tLEASES")
		for _, m := range s.Instances {
			live = append(live, m.Name)
			since, version := "-", m.Version
			if m.Since != nil {
				since = m.Since.Local().Format(time.DateTime)
			}
			if version == "" {
				version = "-"
			}
			fmt.Fprintf(tw, "%s\t%s ago\t%s\t%s\t%d\n", m.Name, seconds(m.Age), since, version, len(m.Leases))
		}
	}
	fmt.Fprintln(tw)
	held := map[string]bool{}
	if len(s.Leases) == 0 {
		fmt.Fprintln(tw, "Leases: none held")
	} else {
		fmt.Fprintf(tw, "Leases (%d):\n", len(s.Leases))
		fmt.Fprintln(tw, "LEASE\tHOLDER\tTOKEN\tAGE")
		for _, l := range s.Leases {
			held[l.Name] = true
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.Name, l.Holder, l.Token, seconds(l.Age))
		}
	}
	var unowned []string
	for _, n := range networks {
		if !held[cluster.LeaseName(n)] {
			unowned = append(unowned, n)
		}
	}
	fmt.Fprintln(tw)
	if len(unowned) == 0 {
		fmt.Fprintln(tw, "Unowned networks: none")
		return
	}
	fmt.Fprintf(tw, "Unowned networks (%d): no instance holds their lease, nothing is sent there\n", len(unowned))
	fmt.Fprintln(tw, "NETWORK\tASSIGNED TO")
	for _, n := range unowned {
		to := cluster.Owner(cluster.LeaseName(n), live)
		if to == "" {
			to = "- (no live instance)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", n, to)
	}
}

// seconds renders an age like "1.2s".
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}
