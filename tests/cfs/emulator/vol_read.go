package emulator

import (
	"fmt"
	"slices"
	"strings"
)

const (
	gib = uint64(1) << 30
	// createTimeLayout is how SimpleVolView and users print times.
	createTimeLayout = "2006-01-02 15:04:05"
	// metaInodeStep is the inode range each fake meta partition covers.
	metaInodeStep = 1 << 22
)

// lookupVol finds the volume named by the "name" parameter; marked-deleted
// volumes are found too, as on the real master.
func lookupVol(c *call) (*Volume, *reply) {
	name, bad := formName(c.r)
	if bad != nil {
		return nil, bad
	}
	vol, ok := c.st.Vols[name]
	if !ok {
		rep := errReply(CodeVolNotExists, MsgVolNotExists)
		return nil, &rep
	}
	return vol, nil
}

// handleGetVol is /admin/getVol: no auth, the SimpleVolView.
func handleGetVol(c *call) reply {
	vol, bad := lookupVol(c)
	if bad != nil {
		return *bad
	}
	return okReply(simpleVolView(vol))
}

// simpleVolView is an abridged proto.SimpleVolView (the real one has 76
// keys); it carries every field the research notes call useful.
func simpleVolView(v *Volume) map[string]any {
	return map[string]any{
		"ID": v.ID, "Name": v.Name, "Owner": v.Owner, "ZoneName": v.ZoneName,
		"DpReplicaNum": v.DpReplicaNum, "MpReplicaNum": v.MpReplicaNum,
		"InodeCount": 1, "DentryCount": 0, "MaxMetaPartitionID": v.MpCount,
		"MaxDataPartitionID": v.DpCount, "Status": v.Status, "Capacity": v.Capacity,
		"RwDpCnt": v.DpCount, "MpCnt": v.MpCount, "DpCnt": v.DpCount,
		"FollowerRead": v.FollowerRead, "Authenticate": v.Authenticate,
		"CrossZone": v.CrossZone, "CreateTime": v.CreateTime.Local().Format(createTimeLayout),
		"DeleteLockTime": 0, "EnableToken": false, "EnablePosixAcl": v.EnablePosixAcl,
		"Description": v.Description, "DpSelectorName": "", "DpSelectorParm": "",
		"DefaultPriority": false, "DomainOn": false, "VolType": v.VolType,
		"Forbidden": v.Forbidden, "DeleteExecTime": v.DeleteExecTime,
		"DpReadOnlyWhenVolFull": false, "TrashInterval": 0,
		"VolStorageClass": 1, "AllowedStorageClass": []int{1},
		"NeedToLowerReplica": false,
	}
}

// handleClientVol is /client/vol, what cfs-client's meta wrapper calls:
// authKey is required unless the Skip-Owner-Validation header is set.
func handleClientVol(c *call) reply {
	if _, bad := formName(c.r); bad != nil {
		return *bad
	}
	skip := strings.EqualFold(c.r.Header.Get("Skip-Owner-Validation"), "true")
	key := c.r.FormValue("authKey")
	if !skip && key == "" {
		return keyNotFound("authKey")
	}
	vol, bad := lookupVol(c)
	if bad != nil {
		return *bad
	}
	if !skip && !matchKey(vol.Owner, key) {
		return errReply(c.e.codes.authKeyMismatch, MsgAuthKeyMismatch)
	}
	return okReply(clientVolView(vol))
}

// clientVolView is the client's VolView. The meta partitions name fake
// metanode addresses: nothing listens there.
func clientVolView(v *Volume) map[string]any {
	mps := make([]map[string]any, 0, v.MpCount)
	for i := 0; i < v.MpCount; i++ {
		start := uint64(i)*metaInodeStep + 1
		mps = append(mps, map[string]any{
			"PartitionID": i + 1, "Start": start, "End": start + metaInodeStep - 1,
			"MaxInodeID": start, "InodeCount": 0, "DentryCount": 0,
			"IsRecover": false, "Members": []string{"127.0.0.1:17210"},
			"LeaderAddr": "127.0.0.1:17210", "Status": 2,
		})
	}
	return map[string]any{
		"Name": v.Name, "Owner": v.Owner, "Status": v.Status,
		"FollowerRead": v.FollowerRead, "MetaPartitions": mps,
		"DataPartitions": []any{}, "DomainOn": false,
		"OSSSecure":  map[string]string{"AccessKey": v.AccessKey, "SecretKey": v.SecretKey},
		"CreateTime": v.CreateTime.Unix(), "DeleteLockTime": 0, "VolType": v.VolType,
	}
}

// handleVolStat is /client/volStat: sizes in bytes, no auth.
func handleVolStat(c *call) reply {
	vol, bad := lookupVol(c)
	if bad != nil {
		return *bad
	}
	total := vol.Capacity * gib
	used := c.e.usedBytes(vol)
	return okReply(map[string]any{
		"Name": vol.Name, "TotalSize": total, "UsedSize": used,
		"UsedRatio": usedRatio(used, total, "%.2f"), "CacheTotalSize": 0,
		"CacheUsedSize": 0, "CacheUsedRatio": "", "EnableToken": false,
		"InodeCount": 1, "TxCnt": 0, "TxRbInoCnt": 0, "TxRbDenCnt": 0,
		"DpReadOnlyWhenVolFull": false, "DefaultStorageClass": 1,
	})
}

// handleVolList is /vol/list, optionally filtered by a keywords substring.
func handleVolList(c *call) reply {
	keywords := c.r.FormValue("keywords")
	names := make([]string, 0, len(c.st.Vols))
	for name := range c.st.Vols {
		if strings.Contains(name, keywords) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	list := make([]map[string]any, 0, len(names))
	for _, name := range names {
		v := c.st.Vols[name]
		list = append(list, map[string]any{
			"Name": v.Name, "Owner": v.Owner, "CreateTime": v.CreateTime.Unix(),
			"Status": v.Status, "TotalSize": v.Capacity * gib,
			"UsedSize": c.e.usedBytes(v), "DpReadOnlyWhenVolFull": false,
		})
	}
	return okReply(list)
}

// usedRatio formats used/total the way the master's views do.
func usedRatio(used, total uint64, format string) string {
	if total == 0 {
		return fmt.Sprintf(format, 0.0)
	}
	return fmt.Sprintf(format, float64(used)/float64(total))
}
