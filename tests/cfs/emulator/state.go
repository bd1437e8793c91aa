package emulator

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Volume status values, as in CubeFS proto/status.go.
const (
	StatusNormal     = 0
	StatusMarkDelete = 1
)

// State is the whole fake cluster; it is what the state file holds.
type State struct {
	ClusterCreateTime time.Time          `json:"clusterCreateTime"`
	NextID            uint64             `json:"nextID"`
	Vols              map[string]*Volume `json:"vols"`
	Users             map[string]*User   `json:"users"`
}

// Volume is one volume record. Capacity is in GiB, as the API counts it.
type Volume struct {
	ID             uint64    `json:"id"`
	Name           string    `json:"name"`
	Owner          string    `json:"owner"`
	Capacity       uint64    `json:"capacity"`
	DpReplicaNum   int       `json:"dpReplicaNum"`
	MpReplicaNum   int       `json:"mpReplicaNum"`
	MpCount        int       `json:"mpCount"`
	DpCount        int       `json:"dpCount"`
	DpSizeGB       int       `json:"dpSizeGB"`
	FollowerRead   bool      `json:"followerRead"`
	CrossZone      bool      `json:"crossZone"`
	Authenticate   bool      `json:"authenticate"`
	EnablePosixAcl bool      `json:"enablePosixAcl"`
	ZoneName       string    `json:"zoneName"`
	Description    string    `json:"description"`
	VolType        int       `json:"volType"`
	CreateTime     time.Time `json:"createTime"`
	Status         int       `json:"status"`
	Forbidden      bool      `json:"forbidden"`
	MarkedAt       time.Time `json:"markedAt"`
	DeleteExecTime time.Time `json:"deleteExecTime"`
	// PolicyRemoved is set by a direct delete: the owner's policy no longer
	// lists the volume, which is why a repeat delete says "no vol policy".
	PolicyRemoved bool `json:"policyRemoved"`
	// UsedBytes, when set (by SetUsedBytes), overrides measured usage.
	UsedBytes *uint64 `json:"usedBytes,omitempty"`
	AccessKey string  `json:"accessKey"`
	SecretKey string  `json:"secretKey"`
}

// User is an owner record; createVol creates one implicitly.
type User struct {
	ID          string    `json:"id"`
	AccessKey   string    `json:"accessKey"`
	SecretKey   string    `json:"secretKey"`
	Type        int       `json:"type"`
	CreateTime  time.Time `json:"createTime"`
	Description string    `json:"description"`
	OwnVols     []string  `json:"ownVols"`
}

// newState returns an empty cluster created at now.
func newState(now time.Time) *State {
	return &State{
		ClusterCreateTime: now,
		NextID:            1,
		Vols:              map[string]*Volume{},
		Users:             map[string]*User{},
	}
}

// allocID hands out the next common ID, as the master's idAlloc does.
func (st *State) allocID() uint64 {
	id := st.NextID
	st.NextID++
	return id
}

// ensureUser returns owner's record, creating a normal user if missing.
func (st *State) ensureUser(owner string, now time.Time) *User {
	if u, ok := st.Users[owner]; ok {
		return u
	}
	u := &User{
		ID: owner, AccessKey: randomKey(16), SecretKey: randomKey(32),
		Type: 3, CreateTime: now, OwnVols: []string{},
	}
	st.Users[owner] = u
	return u
}

// dropPolicy removes vol from its owner's own_vols.
func (st *State) dropPolicy(vol *Volume) {
	if u, ok := st.Users[vol.Owner]; ok {
		u.OwnVols = slices.DeleteFunc(u.OwnVols, func(n string) bool { return n == vol.Name })
	}
}

// AuthKey returns what the master expects as authKey for owner: the
// lower-case hex MD5 of the owner string.
func AuthKey(owner string) string {
	sum := md5.Sum([]byte(owner))
	return hex.EncodeToString(sum[:])
}

// matchKey compares like the master's matchKey: both sides lower-cased,
// against the hex MD5 of the stored owner.
func matchKey(owner, clientKey string) bool {
	return strings.ToLower(clientKey) == AuthKey(owner)
}

const keyAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomKey makes an access/secret key of n characters, like the master.
func randomKey(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	for i := range buf {
		buf[i] = keyAlphabet[int(buf[i])%len(keyAlphabet)]
	}
	return string(buf)
}
