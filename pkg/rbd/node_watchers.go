package rbd

import (
	"context"
	"fmt"
	"sort"

	librbd "github.com/ceph/go-ceph/rbd"
	"k8s.io/klog/v2"
)

// watcherLister lists the Ceph client addresses watching an image; every
// client that has it open (krbd, rbd-nbd, rbd-fuse) is one.
type watcherLister interface {
	watchers(ctx context.Context, spec *stageSpec) ([]string, error)
}

// cephWatchers lists watchers through a cached RADOS connection made with
// the stage's own credentials.
type cephWatchers struct {
	conns *connCache
}

func (w *cephWatchers) watchers(ctx context.Context, spec *stageSpec) ([]string, error) {
	conn, release, err := w.conns.get(ctx, spec.Monitors, Credentials{ID: spec.User, Key: string(spec.Key)})
	if err != nil {
		return nil, err
	}
	defer release()
	ioctx, err := conn.OpenIOContext(spec.Pool)
	if err != nil {
		return nil, fmt.Errorf("open pool %q: %w", spec.Pool, err)
	}
	defer ioctx.Destroy()
	ioctx.SetNamespace(spec.Namespace)
	img, err := librbd.OpenImageReadOnly(ioctx, spec.Image, librbd.NoSnapshot)
	if err != nil {
		return nil, fmt.Errorf("open image %s/%s: %w", spec.Pool, spec.Image, err)
	}
	defer img.Close()
	list, err := img.ListWatchers()
	if err != nil {
		return nil, fmt.Errorf("watchers of %s/%s: %w", spec.Pool, spec.Image, err)
	}
	addrs := make([]string, 0, len(list))
	for _, wt := range list {
		addrs = append(addrs, wt.Addr)
	}
	sort.Strings(addrs)
	return addrs, nil
}

// clientAddrs returns the watcher addresses that appeared between before
// and after a map: this node's mapper client, which fencing blocklists.
// Best effort: a failure to list is logged, never fails the stage.
func (ns *NodeServer) clientAddrs(ctx context.Context, spec *stageSpec, before []string) []string {
	if ns.watch == nil {
		return nil
	}
	after, err := ns.watch.watchers(ctx, spec)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Could not list image watchers", "reason", err.Error())
		return nil
	}
	seen := make(map[string]bool, len(before))
	for _, a := range before {
		seen[a] = true
	}
	var added []string
	for _, a := range after {
		if !seen[a] {
			added = append(added, a)
		}
	}
	return added
}

// watchersBefore lists the watchers before a map; nil when unknown.
func (ns *NodeServer) watchersBefore(ctx context.Context, spec *stageSpec) []string {
	if ns.watch == nil {
		return nil
	}
	before, err := ns.watch.watchers(ctx, spec)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Could not list image watchers", "reason", err.Error())
	}
	return before
}
