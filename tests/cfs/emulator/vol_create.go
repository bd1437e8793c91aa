package emulator

import (
	"fmt"
	"net/http"
)

// createReq is a validated createVol request.
type createReq struct {
	name, owner, zoneName, description string
	capacity                           uint64
	replicaNum, mpCount, dpCount       int
	dpSizeGB, volType                  int
	followerRead, crossZone            bool
	authenticate, enablePosixAcl       bool
}

const (
	defaultReplicaNum = 3
	defaultMpCount    = 3
	minDpCount        = 3
	maxDpCount        = 200
	defaultDpSizeGB   = 120
	defaultZoneName   = "default"
)

// handleCreateVol is /admin/createVol.
func handleCreateVol(c *call) reply {
	req, bad := c.e.parseCreate(c.r)
	if bad != nil {
		return *bad
	}
	if req.crossZone {
		// The fake cluster has one zone, so crossZone fails as it would on
		// the single-zone peer: a raw error, hence code 1.
		return errReply(CodeInternal, "action[checkZoneName] cluster has one zone,can't cross zone")
	}
	cluster := c.e.opts.ClusterName
	if _, taken := c.st.Vols[req.name]; taken {
		// Any existing record takes the name: other owner, other size, or
		// still marked deleted. The reply does not say which.
		return errReply(CodeInternal, fmt.Sprintf(
			"action[createVol], clusterID[%s] name:%s, err:action[doCreateVol], clusterID[%s] name:%s, err:%s  ",
			cluster, req.name, cluster, req.name, MsgDuplicateVol))
	}

	vol := c.e.newVolume(c, req)
	if req.replicaNum > c.e.opts.DataNodes {
		// Too few datanodes: the real master leaves the half-made volume
		// marked deleted until its background task purges it.
		vol.Status, vol.MarkedAt, vol.PolicyRemoved = StatusMarkDelete, c.now, true
		c.st.Vols[vol.Name] = vol
		return errReply(CodeInternal, fmt.Sprintf(
			"action[createVol], clusterID[%s] name:%s, err:action[initDataPartitionsForCreateVol] vol[%s] mediaType[SSD] initDataPartitions failed, createdCount(0), less than minLimit(3) ",
			cluster, req.name, req.name))
	}
	c.st.Vols[vol.Name] = vol
	user := c.st.ensureUser(req.owner, c.now)
	user.OwnVols = append(user.OwnVols, vol.Name)
	return okReply(fmt.Sprintf("create vol[%s] successfully, has allocate [%d] data partitions",
		vol.Name, vol.DpCount))
}

// newVolume builds the record for a validated request.
func (e *Emulator) newVolume(c *call, req createReq) *Volume {
	mpReplicas := 3
	if e.opts.DataNodes == 1 {
		mpReplicas = 1 // what singleNodeMode gives on the 3.5 peer
	}
	return &Volume{
		ID: c.st.allocID(), Name: req.name, Owner: req.owner, Capacity: req.capacity,
		DpReplicaNum: req.replicaNum, MpReplicaNum: mpReplicas,
		MpCount: req.mpCount, DpCount: req.dpCount, DpSizeGB: req.dpSizeGB,
		FollowerRead: req.followerRead, Authenticate: req.authenticate,
		EnablePosixAcl: req.enablePosixAcl, ZoneName: req.zoneName,
		Description: req.description, VolType: req.volType, CreateTime: c.now,
		AccessKey: randomKey(16), SecretKey: randomKey(32),
	}
}

// parseCreate validates like parseRequestToCreateVol: name, owner,
// capacity, then the optional keys.
func (e *Emulator) parseCreate(r *http.Request) (createReq, *reply) {
	var req createReq
	var bad *reply
	if req.name, bad = formName(r); bad != nil {
		return req, bad
	}
	if req.owner, bad = formOwner(r); bad != nil {
		return req, bad
	}
	capacity, bad := formUint(r, "capacity", 0)
	if bad != nil {
		return req, bad
	}
	if capacity == 0 {
		rep := paramErr("vol capacity can't be zero, %d", capacity)
		return req, &rep
	}
	req.capacity = uint64(capacity)
	if bad = e.parseLayout(r, &req); bad != nil {
		return req, bad
	}
	return req, e.parsePlacement(r, &req)
}

// formOwner reads and checks the "owner" parameter.
func formOwner(r *http.Request) (string, *reply) {
	owner := r.FormValue("owner")
	if owner == "" {
		rep := keyNotFound("owner")
		return "", &rep
	}
	if !ownerRegexp.MatchString(owner) {
		rep := paramErr("owner can only be number and letters")
		return "", &rep
	}
	return owner, nil
}

// parseLayout reads replicas, partitions and followerRead.
func (e *Emulator) parseLayout(r *http.Request, req *createReq) *reply {
	var bad *reply
	if req.replicaNum, bad = formUint(r, "replicaNum", defaultReplicaNum); bad != nil {
		return bad
	}
	if req.replicaNum < 1 || req.replicaNum > 3 {
		rep := paramErr("hot vol's replicaNum should be 1 to 3, received replicaNum is[%d]", req.replicaNum)
		return &rep
	}
	fr, frSet, bad := formBool(r, "followerRead")
	if bad != nil {
		return bad
	}
	req.followerRead = fr
	if req.replicaNum < 3 {
		if frSet && !fr {
			rep := paramErr("vol with 1 ro 2 replia should enable followerRead")
			return &rep
		}
		req.followerRead = true
	}
	if req.mpCount, bad = formUint(r, "mpCount", defaultMpCount); bad != nil {
		return bad
	}
	if req.dpCount, bad = formUint(r, "dpCount", minDpCount); bad != nil {
		return bad
	}
	// Not measured: dpCount is clamped here rather than rejected.
	req.dpCount = min(max(req.dpCount, minDpCount), maxDpCount)
	return e.parseDpSize(r, req)
}

// parseDpSize reads the data-partition size, whose key was "size" up to
// 3.3.x and is "dpSize" from 3.4; the other key is ignored, as there.
func (e *Emulator) parseDpSize(r *http.Request, req *createReq) *reply {
	key := "dpSize"
	if e.opts.Numbering != Numbering35 {
		key = "size"
	}
	size, bad := formUint(r, key, 0)
	if bad != nil {
		return bad
	}
	if size == 0 {
		size = defaultDpSizeGB
	}
	if size <= 10 {
		rep := paramErr("datapartition size must be bigger than 10 G")
		return &rep
	}
	req.dpSizeGB = size
	return nil
}

// parsePlacement reads volType, zone and the remaining flags.
func (e *Emulator) parsePlacement(r *http.Request, req *createReq) *reply {
	var bad *reply
	if e.opts.Numbering != Numbering2x {
		// volType does not exist in 2.x, so the key is ignored there.
		if req.volType, bad = formUint(r, "volType", 0); bad != nil {
			return bad
		}
		if req.volType != 0 {
			rep := paramErr("cluster has no resoure to support volStorageClass(BlobStore)")
			return &rep
		}
	}
	req.zoneName = r.FormValue("zoneName")
	if req.zoneName != "" && req.zoneName != defaultZoneName {
		rep := paramErr("assigned zone name not exist: [%s]", req.zoneName)
		return &rep
	}
	req.zoneName = defaultZoneName
	req.description = r.FormValue("description")
	flags := []struct {
		key string
		dst *bool
	}{
		{"crossZone", &req.crossZone},
		{"authenticate", &req.authenticate},
		{"enablePosixAcl", &req.enablePosixAcl},
	}
	for _, f := range flags {
		v, _, bad := formBool(r, f.key)
		if bad != nil {
			return bad
		}
		*f.dst = v
	}
	return nil
}
