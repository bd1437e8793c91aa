package emulator

import (
	"fmt"
	"time"
)

// handleDeleteVol is /vol/delete. Checks run in the master's order:
// parameters (2), existence (7), auth key (34/32), then the delete mode's
// own rules for a volume that is already marked.
func handleDeleteVol(c *call) reply {
	if _, bad := formName(c.r); bad != nil {
		return *bad
	}
	key, bad := formAuthKey(c.r)
	if bad != nil {
		return *bad
	}
	undelete := false
	if c.e.codes.volHasDeleted != 0 {
		// delete=false (undelete) exists from 3.3.2; 2.x ignores the key.
		del, set, bad := formBool(c.r, "delete")
		if bad != nil {
			return *bad
		}
		undelete = set && !del
	}
	vol, bad := lookupVol(c)
	if bad != nil {
		return *bad
	}
	if !matchKey(vol.Owner, key) {
		return errReply(c.e.codes.authKeyMismatch, MsgAuthKeyMismatch)
	}

	from := c.r.RemoteAddr
	switch {
	case undelete:
		return c.undelete(vol, from)
	case c.e.opts.Delete == DeleteDelayed:
		return c.forbid(vol, from)
	default:
		return c.markDelete(vol, from)
	}
}

// markDelete is the direct delete: Status 1 now, purge after PurgeAfter.
// The owner's policy goes at once, so a repeat says "no vol policy".
func (c *call) markDelete(vol *Volume, from string) reply {
	if vol.PolicyRemoved {
		return errReply(c.e.codes.noVolPolicy, MsgNoVolPolicy)
	}
	vol.Status, vol.MarkedAt, vol.PolicyRemoved = StatusMarkDelete, c.now, true
	c.st.dropPolicy(vol)
	return okReply(fmt.Sprintf("delete vol[%s] successfully,from[%s]", vol.Name, from))
}

// forbid is the delayed delete: Status 1, Forbidden, purge at
// DeleteExecTime. The name stays taken the whole time.
func (c *call) forbid(vol *Volume, from string) reply {
	if vol.Status == StatusMarkDelete {
		return errReply(c.e.codes.volHasDeleted, MsgVolHasDeleted)
	}
	vol.Status, vol.Forbidden, vol.MarkedAt = StatusMarkDelete, true, c.now
	vol.DeleteExecTime = c.now.Add(c.e.opts.DeleteDelay).UTC()
	return okReply(fmt.Sprintf("delete vol: forbid vol[%s] successfully,from[%s]", vol.Name, from))
}

// undelete reverses a pending delayed delete. (On the real master the data
// partitions stay read-only afterwards; that is not emulated.)
func (c *call) undelete(vol *Volume, from string) reply {
	if !vol.Forbidden {
		return errReply(c.e.codes.volNotDelete, msgVolNotDelete)
	}
	vol.Status, vol.Forbidden = StatusNormal, false
	vol.MarkedAt, vol.DeleteExecTime = time.Time{}, time.Time{}
	return okReply(fmt.Sprintf("undelete vol: unforbid vol[%s] successfully,from[%s]", vol.Name, from))
}

// handleExpandVol is /vol/expand: strictly larger, or code 2.
func handleExpandVol(c *call) reply {
	return c.resize(func(newCap, oldCap uint64) *reply {
		if newCap > oldCap {
			return nil
		}
		rep := paramErr("expand capacity[%d] should be larger than the old capacity[%d]", newCap, oldCap)
		return &rep
	})
}

// handleShrinkVol is /vol/shrink: strictly smaller, or code 2.
func handleShrinkVol(c *call) reply {
	return c.resize(func(newCap, oldCap uint64) *reply {
		if newCap < oldCap {
			return nil
		}
		rep := paramErr("shrink capacity[%d] should be less than the old capacity[%d]", newCap, oldCap)
		return &rep
	})
}

// resize is the shared expand/shrink path. As on the master, the size
// comparison comes before the auth-key check (so a retry with a wrong key
// still gets code 2), and a marked volume fails inside updateVol.
func (c *call) resize(sizeOK func(newCap, oldCap uint64) *reply) reply {
	if _, bad := formName(c.r); bad != nil {
		return *bad
	}
	key, bad := formAuthKey(c.r)
	if bad != nil {
		return *bad
	}
	capacity, bad := formUint(c.r, "capacity", 0)
	if bad != nil {
		return *bad
	}
	vol, bad := lookupVol(c)
	if bad != nil {
		return *bad
	}
	if bad := sizeOK(uint64(capacity), vol.Capacity); bad != nil {
		return *bad
	}
	if bad := c.updateVolChecks(vol, key, uint64(capacity)); bad != nil {
		return *bad
	}
	vol.Capacity = uint64(capacity)
	return okReply(fmt.Sprintf("update vol[%s] successfully\n", vol.Name))
}

// updateVolChecks mirrors Cluster.updateVol: marked volumes and sizes under
// 101% of the used space are wrapped errors (code 1); the key is a sentinel.
func (c *call) updateVolChecks(vol *Volume, key string, capacity uint64) *reply {
	wrap := func(err string) *reply {
		rep := errReply(CodeInternal, fmt.Sprintf("action[updateVol], clusterID[%s] name:%s, err:%s ",
			c.e.opts.ClusterName, vol.Name, err))
		return &rep
	}
	if vol.Status == StatusMarkDelete {
		return wrap(MsgVolNotExists)
	}
	if !matchKey(vol.Owner, key) {
		rep := errReply(c.e.codes.authKeyMismatch, MsgAuthKeyMismatch)
		return &rep
	}
	used := c.e.usedBytes(vol)
	if float64(capacity*gib) < float64(used)*1.01 && capacity != vol.Capacity {
		return wrap(fmt.Sprintf("capacity[%d] has to be 1 percent larger than the used space[%d]",
			capacity, used/gib))
	}
	return nil
}
