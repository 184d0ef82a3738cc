package linksign

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
)

func newKey() Key {
	k := make(Key, KeySize)
	rand.Read(k)
	return k
}

func TestSignature(t *testing.T) {
	key := newKey()
	sig := key.Sign("matrix", "example.org", "AbC123")
	if !key.Verify(sig, "matrix", "example.org", "AbC123") {
		t.Fatal("a link's own signature does not verify")
	}
	flipped := []byte(sig)
	flipped[3] ^= 1
	for name, c := range map[string][4]string{
		"network":             {"matrix2", "example.org", "AbC123", sig},
		"server":              {"matrix", "example.com", "AbC123", sig},
		"media id":            {"matrix", "example.org", "AbC124", sig},
		"parts shifted":       {"matrix", "example.orgA", "bC123", sig},
		"signature":           {"matrix", "example.org", "AbC123", string(flipped)},
		"signature cut":       {"matrix", "example.org", "AbC123", sig[:len(sig)-2]},
		"signature missing":   {"matrix", "example.org", "AbC123", ""},
		"signature not b64":   {"matrix", "example.org", "AbC123", "!!!!"},
		"other key's":         {"matrix", "example.org", "AbC123", newKey().Sign("matrix", "example.org", "AbC123")},
		"whole HMAC (longer)": {"matrix", "example.org", "AbC123", sig + sig},
	} {
		if key.Verify(c[3], c[0], c[1], c[2]) {
			t.Errorf("tampered %s: verifies", name)
		}
	}
	if key.Verify(sig, "matrix", "example.org") || key.Verify(sig, "matrix", "example.org", "AbC123", "") {
		t.Error("verifies for fewer or more parts")
	}
	if Key(nil).Verify(sig, "matrix", "example.org", "AbC123") {
		t.Error("verifies without a key")
	}
}

// memState is a KeyStore in memory.
type memState struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memState) Get(_ context.Context, k string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok, nil
}

func (s *memState) PutIfAbsent(_ context.Context, k, v string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		return false, nil
	}
	s.m[k] = v
	return true, nil
}

func TestLoadKeepsTheKey(t *testing.T) {
	ctx := context.Background()
	st := &memState{m: map[string]string{}}
	a, err := Load(ctx, st, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || bytes.Equal(a, make([]byte, KeySize)) {
		t.Fatalf("key %x", a)
	}
	// A restart on the same store signs the same links; another name is
	// another key.
	b, err := Load(ctx, st, "k")
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load: %x, %v; first %x", b, err, a)
	}
	if c, _ := Load(ctx, st, "other"); bytes.Equal(a, c) {
		t.Error("two names share a key")
	}
	st.m["bad"] = "c2hvcnQ="
	if _, err := Load(ctx, st, "bad"); err == nil {
		t.Error("a stored value that is no key loads")
	}
}
