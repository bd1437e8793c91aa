package emulator

import (
	"net/http"
	"strings"
	"testing"
)

// TestGetVol checks the fields a driver reads from /admin/getVol.
func TestGetVol(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})
	createVol(t, srv, "pvc-test1", 10)

	v := dataMap(t, api(t, srv, "/admin/getVol?name=pvc-test1"))
	want := map[string]any{
		"Name": "pvc-test1", "Owner": testOwner, "Capacity": float64(10),
		"Status": float64(0), "Forbidden": false, "DeleteExecTime": "0001-01-01T00:00:00Z",
		"DpReplicaNum": float64(3), "VolType": float64(0), "ZoneName": "default",
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %v, want %v", k, v[k], w)
		}
	}
	if ct, _ := v["CreateTime"].(string); len(ct) != len("2006-01-02 15:04:05") {
		t.Errorf("CreateTime = %q, want YYYY-MM-DD hh:mm:ss", ct)
	}
	wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-nope"), CodeVolNotExists, MsgVolNotExists)
}

// TestClientVolAuth checks /client/vol's key rules in both numberings.
func TestClientVolAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		numbering Numbering
		query     string
		header    bool
		code      int
		msg       string
	}{
		{"right key", Numbering35, "name=pvc-a&authKey=" + testKey, false, 0, MsgSuccess},
		{"upper-case key", Numbering35, "name=pvc-a&authKey=" + strings.ToUpper(testKey), false, 0, MsgSuccess},
		{"wrong key 3.5", Numbering35, "name=pvc-a&authKey=" + wrongKey, false, 34, MsgAuthKeyMismatch},
		{"wrong key 2.x", Numbering2x, "name=pvc-a&authKey=" + wrongKey, false, 32, MsgAuthKeyMismatch},
		{"no key", Numbering35, "name=pvc-a", false, 2, "[operate_util.go 225] parameter authKey not found"},
		{"no key, skip header", Numbering35, "name=pvc-a", true, 0, MsgSuccess},
		{"missing volume", Numbering35, "name=pvc-nope&authKey=" + testKey, false, 7, MsgVolNotExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, srv := start(t, Options{Numbering: tc.numbering})
			createVol(t, srv, "pvc-a", 10)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/client/vol?"+tc.query, nil)
			if tc.header {
				req.Header.Set("Skip-Owner-Validation", "true")
			}
			wantEnv(t, doEnvelope(t, req), tc.code, tc.msg)
		})
	}
}

// TestClientVolView checks the view the client uses.
func TestClientVolView(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})
	createVol(t, srv, "pvc-a", 10)
	status, body := send(t, srv, http.MethodPost, "/client/vol?name=pvc-a&authKey="+testKey)
	if status != http.StatusOK || !strings.Contains(body, `"MetaPartitions":[{`) ||
		!strings.Contains(body, `"OSSSecure":{"AccessKey":"`) {
		t.Errorf("POST /client/vol: HTTP %d %s", status, body)
	}
}

// TestVolStatAndList checks sizes in bytes and the list filter.
func TestVolStatAndList(t *testing.T) {
	t.Parallel()
	e, srv := start(t, Options{})
	createVol(t, srv, "pvc-a", 10)
	createVol(t, srv, "other", 1)
	if err := e.SetUsedBytes("pvc-a", 1<<30); err != nil {
		t.Fatal(err)
	}

	st := dataMap(t, api(t, srv, "/client/volStat?name=pvc-a"))
	if st["TotalSize"] != float64(10<<30) || st["UsedSize"] != float64(1<<30) || st["UsedRatio"] != "0.10" {
		t.Errorf("volStat = %v", st)
	}

	env := api(t, srv, "/vol/list?keywords=pvc")
	if got := string(env.Data); !strings.Contains(got, `"Name":"pvc-a"`) || strings.Contains(got, "other") {
		t.Errorf("vol/list?keywords=pvc = %s", got)
	}
}

// TestGetClusterAndIP checks the health-probe endpoints.
func TestGetClusterAndIP(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{ClusterName: "cfs-local", CapacityGiB: 246})
	c := dataMap(t, api(t, srv, "/admin/getCluster"))
	stat := c["DataNodeStatInfo"].(map[string]any)
	if c["Name"] != "cfs-local" || stat["TotalGB"] != float64(246) || c["VolDeletionDelayTimeHour"] != float64(48) {
		t.Errorf("getCluster = %v", c)
	}
	ip := dataMap(t, api(t, srv, "/admin/getIp"))
	if ip["Cluster"] != "cfs-local" || ip["Ip"] != "127.0.0.1" {
		t.Errorf("getIp = %v", ip)
	}
}

// TestOutsideEnvelope checks the replies a driver must treat as "master
// unavailable": the router's 404 and 405, and the envelope's headers.
func TestOutsideEnvelope(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})
	tests := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"no deleteVol", http.MethodGet, "/admin/deleteVol?name=x", 404, "404 page not found\n"},
		{"getVol is GET only", http.MethodPost, "/admin/getVol?name=x", 405, ""},
		{"user/create is POST only", http.MethodGet, "/user/create", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := send(t, srv, tc.method, tc.path)
			if status != tc.status || body != tc.body {
				t.Errorf("got HTTP %d %q, want %d %q", status, body, tc.status, tc.body)
			}
		})
	}

	resp, err := http.Get(srv.URL + "/admin/getVol?name=pvc-nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.ContentLength != 45 {
		t.Errorf("error reply: HTTP %d %v length %d, want 200 application/json 45",
			resp.StatusCode, resp.Header, resp.ContentLength)
	}
}

// TestUsers checks /user/create and /user/info codes by numbering.
func TestUsers(t *testing.T) {
	t.Parallel()
	for _, n := range []Numbering{Numbering35, Numbering332, Numbering2x} {
		t.Run(string(n), func(t *testing.T) {
			t.Parallel()
			_, srv := start(t, Options{Numbering: n})
			cs := codeSets[n]
			wantEnv(t, api(t, srv, "/user/info?user=nosuchuser"), cs.userNotExists, MsgUserNotExists)
			wantEnv(t, postJSON(t, srv, "/user/create", `{"id":"newuser","type":3}`), 0, MsgSuccess)
			wantEnv(t, postJSON(t, srv, "/user/create", `{"id":"newuser","type":3}`), cs.duplicateUser, MsgDuplicateUser)
		})
	}
}
