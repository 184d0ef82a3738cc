package cluster_test

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A change notice reaches every other instance, not its own; when the
// connection to NATS comes back after a restart, every instance is told
// to read everything again ("") and notices flow again; after
// unsubscribe nothing more is passed on.
func TestChanges(t *testing.T) {
	srv := testenv.NATS(t)
	a, b := node(t, srv.URL, "a"), node(t, srv.URL, "b")
	ga, gb := &inbox{}, &inbox{}
	unsubA, err := a.OnChange(func(part string) { ga.add([]byte(part)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubA)
	unsubB, err := b.OnChange(func(part string) { gb.add([]byte(part)) })
	if err != nil {
		t.Fatal(err)
	}

	if err := a.PublishChange("links"); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishChange("blocks"); err != nil {
		t.Fatal(err)
	}
	gb.wait(t, "links", 5*time.Second)
	ga.wait(t, "blocks", 5*time.Second)
	time.Sleep(200 * time.Millisecond) // what else might come
	if got := ga.list(); len(got) != 1 {
		t.Errorf("a got %q, want only b's blocks", got)
	}
	if got := gb.list(); len(got) != 1 {
		t.Errorf("b got %q, want only a's links", got)
	}

	// A notice published while NATS is down may be lost: the reconnect
	// says to read everything.
	srv.Restart()
	ga.wait(t, "", 10*time.Second)
	gb.wait(t, "", 10*time.Second)
	a.PublishChange("people")
	gb.wait(t, "people", 5*time.Second)

	unsubB()
	a.PublishChange("links")
	time.Sleep(200 * time.Millisecond)
	if n := gb.count("links"); n != 1 {
		t.Errorf("b got links %d times, want once: unsubscribed before the second", n)
	}
}
