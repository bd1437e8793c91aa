// Command gen writes deploy/kubernetes from the Helm chart, or with
// -check verifies that what is there matches a fresh render.
//
//	go run ./tests/manifests/gen          # make manifests
//	go run ./tests/manifests/gen -check   # make manifests-check
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tkestack/tkestor-csi/tests/manifests"
)

func main() {
	check := flag.Bool("check", false, "verify instead of writing; exit 1 on any difference")
	root := flag.String("root", "", "repository root (default: the folder holding go.mod above the working directory)")
	flag.Parse()

	if err := run(*root, *check); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(root string, check bool) error {
	if root == "" {
		found, err := manifests.FindRoot(".")
		if err != nil {
			return err
		}
		root = found
	}

	if !check {
		return manifests.Write(root)
	}

	diffs, err := manifests.Check(root)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintln(os.Stderr, d)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d file(s) under %s differ from the chart; run `make manifests`",
			len(diffs), manifests.PlainDir)
	}
	return nil
}
