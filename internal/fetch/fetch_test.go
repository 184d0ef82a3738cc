package fetch

import (
	"net/netip"
	"testing"
)

func TestPublicAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.215.14":            true,
		"2606:2800:21f:cb07::1":    true,
		"8.8.8.8":                  true,
		"127.0.0.1":                false,
		"127.5.6.7":                false,
		"::1":                      false,
		"10.1.2.3":                 false,
		"172.16.0.1":               false,
		"172.31.255.255":           false,
		"172.32.0.1":               true,
		"192.168.1.1":              false,
		"169.254.169.254":          false, // cloud metadata
		"fe80::1":                  false,
		"fc00::1":                  false,
		"fd12:3456::1":             false,
		"fec0::1":                  false,
		"0.0.0.0":                  false,
		"0.1.2.3":                  false,
		"::":                       false,
		"224.0.0.1":                false,
		"239.1.2.3":                false,
		"ff02::1":                  false,
		"ff0e::1":                  false,
		"255.255.255.255":          false,
		"100.64.0.1":               false,
		"::ffff:127.0.0.1":         false,
		"::ffff:10.0.0.1":          false,
		"::ffff:93.184.215.14":     true,
		"64:ff9b::7f00:1":          false, // NAT64 of 127.0.0.1
		"64:ff9b::5db8:d70e":       true,  // NAT64 of 93.184.215.14
		"fe80::1%eth0":             false,
		"2001:db8::1":              true, // documentation, but not internal
		"198.51.100.7":             true,
		"100.128.0.1":              true,
		"11.0.0.1":                 true,
		"192.169.0.1":              true,
		"2a00:1450:4001:80b::200e": true,
	} {
		ip := netip.MustParseAddr(addr)
		if got := PublicAddress(ip); got != want {
			t.Errorf("PublicAddress(%s) = %v, want %v", addr, got, want)
		}
	}
	// What a dialer's Control is given: the resolved address and port.
	for addr, ok := range map[string]bool{"127.0.0.1:80": false, "[::1]:443": false, "[fe80::1%lo]:80": false, "8.8.8.8:443": true, "nonsense": false} {
		if err := refuseInternal("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("refuseInternal(%s) = %v", addr, err)
		}
	}
}
