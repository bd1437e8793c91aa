// Command demo walks one volume's life through a tkestor-csi endpoint the
// way Kubernetes calls it: create, attach, stage, publish, write and read,
// expand online, snapshot, restore, and tear everything down again.
// tests/demo/demo.sh starts the backends and the plugin and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

type config struct {
	endpoint    string
	driver      string
	nodeID      string
	params      string
	secretsFile string
	workDir     string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.endpoint, "endpoint", "", "plugin endpoint (unix:///path)")
	flag.StringVar(&cfg.driver, "driver", "rbd", "rbd or cfs: what the plugin serves")
	flag.StringVar(&cfg.nodeID, "nodeid", "demo-node", "the plugin's --nodeid")
	flag.StringVar(&cfg.params, "params", "", "StorageClass parameters, k=v,k=v")
	flag.StringVar(&cfg.secretsFile, "secrets", "", "JSON file with the secrets")
	flag.StringVar(&cfg.workDir, "work", "", "directory for staging and target paths")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	client, err := csiclient.Dial(cfg.endpoint)
	if err != nil {
		return err
	}
	defer client.Close()
	params, err := csiclient.ParseParams(cfg.params)
	if err != nil {
		return err
	}
	secrets, err := csiclient.ReadSecrets(cfg.secretsFile)
	if err != nil {
		return err
	}
	d := &demo{cfg: cfg, c: client, params: params, secrets: secrets}
	return d.lifecycle(ctx)
}
