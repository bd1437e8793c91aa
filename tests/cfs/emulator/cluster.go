package emulator

import (
	"encoding/json"
	"fmt"
)

// Fake node addresses that getCluster reports; nothing listens there.
const (
	metaNodePortBase = 17210
	dataNodePortBase = 17310
)

// handleGetCluster is /admin/getCluster, a cheap health probe.
func handleGetCluster(c *call) reply {
	o := c.e.opts
	var usedBytes uint64
	for _, v := range c.st.Vols {
		usedBytes += c.e.usedBytes(v)
	}
	usedGB := usedBytes / gib
	return okReply(map[string]any{
		"Name": o.ClusterName, "LeaderAddr": c.r.Host,
		"CreateTime":       c.st.ClusterCreateTime.Local().Format(createTimeLayout),
		"DisableAutoAlloc": false, "VolDeletionDelayTimeHour": int(o.DeleteDelay.Hours()),
		"DataNodeStatInfo": map[string]any{
			"TotalGB": o.CapacityGiB, "UsedGB": usedGB, "IncreasedGB": 0,
			"UsedRatio": usedRatio(usedGB, o.CapacityGiB, "%.3f"),
			"AvailGB":   o.CapacityGiB - min(usedGB, o.CapacityGiB),
		},
		"MetaNodeStatInfo": map[string]any{
			"TotalGB": 8, "UsedGB": 0, "IncreasedGB": 0, "UsedRatio": "0.000", "AvailGB": 8,
		},
		"VolStatInfo": []any{},
		"MasterNodes": []map[string]any{nodeView(1, c.r.Host, false)},
		"MetaNodes":   fakeNodes(2, metaNodePortBase, 3),
		"DataNodes":   fakeNodes(10, dataNodePortBase, o.DataNodes),
	})
}

// fakeNodes lists n active nodes on consecutive loopback ports.
func fakeNodes(firstID, portBase, n int) []map[string]any {
	nodes := make([]map[string]any, 0, n)
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", portBase+i)
		nodes = append(nodes, nodeView(firstID+i, addr, true))
	}
	return nodes
}

// nodeView is a proto.NodeView: Status is the "active" flag.
func nodeView(id int, addr string, writable bool) map[string]any {
	return map[string]any{
		"Addr": addr, "Status": true, "DomainAddr": "", "ID": id,
		"IsWritable": writable, "MediaType": 0,
	}
}

// handleGetIP is /admin/getIp: cluster name and the caller's address.
func handleGetIP(c *call) reply {
	return okReply(map[string]any{
		"Cluster": c.e.opts.ClusterName, "Ip": remoteHost(c.r), "EbsAddr": "",
		"ServicePath": "", "MetaNodeDeleteBatchCount": 0,
		"MetaNodeDeleteWorkerSleepMs": 0, "DataNodeDeleteLimitRate": 0,
		"DataNodeAutoRepairLimitRate": 0, "DirChildrenNumLimit": 20000000,
	})
}

// userCreateParam is the JSON body of /user/create.
type userCreateParam struct {
	ID          string `json:"id"`
	Type        int    `json:"type"`
	Description string `json:"description"`
}

// handleUserCreate is POST /user/create. Only normal users (type 3) and
// admins (2) can be made; the codes for a bad body or type are not measured.
func handleUserCreate(c *call) reply {
	var p userCreateParam
	if err := json.NewDecoder(c.r.Body).Decode(&p); err != nil {
		return paramErr("%v", err)
	}
	if !ownerRegexp.MatchString(p.ID) {
		return paramErr("invalid user ID")
	}
	if p.Type != 2 && p.Type != 3 {
		return paramErr("invalid user type")
	}
	if _, ok := c.st.Users[p.ID]; ok {
		return errReply(c.e.codes.duplicateUser, MsgDuplicateUser)
	}
	u := c.st.ensureUser(p.ID, c.now)
	u.Type, u.Description = p.Type, p.Description
	return okReply(userView(u))
}

// handleUserInfo is GET /user/info?user=ID.
func handleUserInfo(c *call) reply {
	id := c.r.FormValue("user")
	if id == "" {
		return keyNotFound("user")
	}
	u, ok := c.st.Users[id]
	if !ok {
		return errReply(c.e.codes.userNotExists, MsgUserNotExists)
	}
	return okReply(userView(u))
}

// userView is proto.UserInfo.
func userView(u *User) map[string]any {
	return map[string]any{
		"user_id": u.ID, "access_key": u.AccessKey, "secret_key": u.SecretKey,
		"policy": map[string]any{
			"own_vols": append([]string{}, u.OwnVols...), "authorized_vols": map[string]any{},
		},
		"user_type": u.Type, "create_time": u.CreateTime.Local().Format(createTimeLayout),
		"description": u.Description, "EMPTY": false,
	}
}
