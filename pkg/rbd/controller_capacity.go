package rbd

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// dfReport is the part of the monitor's "df" JSON we read.
type dfReport struct {
	Pools []struct {
		Name  string `json:"name"`
		ID    int64  `json:"id"`
		Stats struct {
			MaxAvail int64 `json:"max_avail"`
		} `json:"stats"`
	} `json:"pools"`
}

// GetCapacity reports the pool's max_avail (what can still be written
// after replication, from the monitor's "df"). With clusterID and pool it
// is that pool; with neither, the largest pool of any configured cluster.
func (cs *ControllerServer) GetCapacity(
	ctx context.Context, req *csi.GetCapacityRequest,
) (*csi.GetCapacityResponse, error) {
	clusterID, pool, err := capacityScope(req.GetParameters())
	if err != nil {
		return nil, toStatus(err)
	}
	clusters, err := cs.clusters.all()
	if err != nil {
		return nil, toStatus(err)
	}
	creds, err := cs.credentials(nil)
	if err != nil {
		return nil, toStatus(err)
	}

	var best int64
	found := false
	for _, info := range clusters {
		if clusterID != "" && info.ClusterID != clusterID {
			continue
		}
		avail, ok, err := cs.poolAvail(ctx, info, creds, pool)
		if err != nil {
			return nil, toStatus(err)
		}
		if ok && (!found || avail > best) {
			best, found = avail, true
		}
	}
	if clusterID != "" && !found {
		return nil, toStatus(fmt.Errorf("%w: pool %q not found in cluster %q", ErrPoolNotFound, pool, clusterID))
	}
	return &csi.GetCapacityResponse{AvailableCapacity: best}, nil
}

// capacityScope reads clusterID and pool from StorageClass parameters;
// both or neither. Other keys are checked as in CreateVolume.
func capacityScope(params map[string]string) (string, string, error) {
	if params[paramClusterID] == "" && params[paramPool] == "" {
		return "", "", nil
	}
	p, err := ParseVolumeParameters(params)
	if err != nil {
		return "", "", err
	}
	return p.ClusterID, p.Pool, nil
}

// poolAvail returns max_avail of pool (any pool: the largest, when "").
func (cs *ControllerServer) poolAvail(
	ctx context.Context, info ClusterInfo, creds Credentials, pool string,
) (int64, bool, error) {
	s, err := cs.sessionFor(ctx, info, creds)
	if err != nil {
		return 0, false, err
	}
	defer s.close()
	out, _, err := s.conn.MonCommand([]byte(`{"prefix":"df","format":"json"}`))
	if err != nil {
		return 0, false, fmt.Errorf("df on cluster %q: %w", info.ClusterID, err)
	}
	var df dfReport
	if err := json.Unmarshal(out, &df); err != nil {
		return 0, false, fmt.Errorf("df on cluster %q: unreadable reply: %w", info.ClusterID, err)
	}
	var best int64
	found := false
	for _, p := range df.Pools {
		if pool != "" && p.Name != pool {
			continue
		}
		if !found || p.Stats.MaxAvail > best {
			best, found = p.Stats.MaxAvail, true
		}
	}
	return best, found, nil
}
