package main

import "testing"

// The holder subcommand refuses bad command lines with exit status 2
// before it connects anywhere.
func TestHolderUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "no action", args: nil},
		{name: "unknown action", args: []string{"break", "--driver=rbd", "--volume-id=x"}},
		{name: "no volume", args: []string{"show", "--driver=rbd"}},
		{name: "no driver", args: []string{"show", "--volume-id=x"}},
		{name: "unknown driver", args: []string{"show", "--driver=nfs", "--volume-id=x"}},
		{name: "bad output", args: []string{"show", "--driver=rbd", "--volume-id=x", "--output=yaml"}},
		{name: "short fence", args: []string{"release", "--driver=rbd", "--volume-id=x", "--fence-expiry=5m"}},
		{name: "stray argument", args: []string{"show", "--driver=rbd", "--volume-id=x", "extra"}},
		{name: "rbd without secrets", args: []string{"show", "--driver=rbd", "--volume-id=x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := runHolder(tc.args); got != exitHolderUsage {
				t.Fatalf("exit %d, want %d", got, exitHolderUsage)
			}
		})
	}
}
