package cluster

import (
	"fmt"
	"slices"
	"testing"
)

func names(n int) []string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprintf("network/net%d", i))
	}
	return s
}

func TestAssignBalancesAndIsDeterministic(t *testing.T) {
	all := names(300)
	a := Assign(all, []string{"a", "b", "c"})
	b := Assign(all, []string{"c", "a", "b"})
	count := map[string]int{}
	for _, n := range all {
		if a[n] != b[n] {
			t.Fatalf("%s: owner %s with one order of instances, %s with another", n, a[n], b[n])
		}
		count[a[n]]++
	}
	// 100 each expected; the standard deviation is about 8.
	for _, in := range []string{"a", "b", "c"} {
		if c := count[in]; c < 70 || c > 130 {
			t.Errorf("instance %s owns %d of 300 names, want about 100: %v", in, c, count)
		}
	}
	if got := len(Mine("a", all, []string{"a", "b", "c"})); got != count["a"] {
		t.Errorf("Mine(a) = %d names, Assign gave a %d", got, count["a"])
	}
	if o := Owner("network/x", nil); o != "" {
		t.Errorf("owner among no instances = %q, want none", o)
	}
}

func TestAssignMovesOnlyWhatMust(t *testing.T) {
	all := names(300)
	before := Assign(all, []string{"a", "b", "c"})
	after := Assign(all, []string{"a", "c"})
	moved := 0
	for _, n := range all {
		switch {
		case before[n] == "b":
			if after[n] == "b" || after[n] == "" {
				t.Fatalf("%s still owned by %q after b left", n, after[n])
			}
			moved++
		case after[n] != before[n]:
			t.Errorf("%s moved from %s to %s although its owner stayed", n, before[n], after[n])
		}
	}
	if moved == 0 {
		t.Fatal("b owned nothing")
	}
	// One joining takes only names, from anyone, to itself.
	joined := Assign(all, []string{"a", "b", "c", "d"})
	took := 0
	for _, n := range all {
		if joined[n] != before[n] {
			if joined[n] != "d" {
				t.Errorf("%s moved from %s to %s when d joined", n, before[n], joined[n])
			}
			took++
		}
	}
	if took < 50 || took > 100 {
		t.Errorf("d took %d of 300 names, want about 75", took)
	}
	if !slices.Equal(Mine("d", all, []string{"a", "b", "c", "d"}), Mine("d", all, []string{"d", "c", "b", "a"})) {
		t.Error("Mine depends on the order of instances")
	}
}
