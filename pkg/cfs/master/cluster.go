package master

import (
	"context"
	"fmt"
)

// Cluster is what /admin/getCluster says that a driver uses.
type Cluster struct {
	Name       string
	LeaderAddr string
	// DeleteDelayHours is how long a deleted volume is held before the
	// purge (3.3.2+ delayed deletion); 0 when the master does not say.
	DeleteDelayHours int
	// Data node space, in GiB, before replication.
	TotalGiB, UsedGiB, AvailGiB uint64
}

type clusterView struct {
	Name                     string `json:"Name"`
	LeaderAddr               string `json:"LeaderAddr"`
	VolDeletionDelayTimeHour int    `json:"VolDeletionDelayTimeHour"`
	DataNodeStatInfo         *struct {
		TotalGB uint64 `json:"TotalGB"`
		UsedGB  uint64 `json:"UsedGB"`
		AvailGB uint64 `json:"AvailGB"`
	} `json:"DataNodeStatInfo"`
}

// Cluster reads /admin/getCluster: a cheap reachability probe that also
// tells the cluster's name and data node space.
func (c *Client) Cluster(ctx context.Context) (*Cluster, error) {
	data, err := c.do(ctx, request{path: "/admin/getCluster"})
	if err != nil {
		return nil, err
	}
	var v clusterView
	if err := decodeData(data, '{', &v); err != nil {
		return nil, fmt.Errorf("master /admin/getCluster: %w", err)
	}
	if v.Name == "" {
		return nil, fmt.Errorf("master /admin/getCluster: %w: no cluster name", ErrBadReply)
	}
	out := &Cluster{Name: v.Name, LeaderAddr: v.LeaderAddr, DeleteDelayHours: v.VolDeletionDelayTimeHour}
	if s := v.DataNodeStatInfo; s != nil {
		out.TotalGiB, out.UsedGiB, out.AvailGiB = s.TotalGB, s.UsedGB, s.AvailGB
	}
	return out, nil
}
