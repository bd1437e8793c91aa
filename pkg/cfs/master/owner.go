package master

import (
	"crypto/md5" //nolint:gosec // the master's auth key is defined as MD5 of the owner
	"encoding/hex"
	"errors"
	"regexp"
)

// ErrBadOwner reports an owner the master would refuse.
var ErrBadOwner = errors.New(
	"owner must start with a letter and have at most 21 letters, digits or underscores")

// ownerRE is the master's owner rule (master/server.go, 2.0 to 3.5.3).
var ownerRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,20}$`) //nolint:gochecknoglobals // constant

// Owner is a volume owner. The master treats it as a credential (the auth
// key is just its MD5), so it prints as "<redacted>" in logs, errors and
// %v; Reveal returns the name for the few places that must send it.
type Owner struct {
	name string
}

// NewOwner validates name against the master's owner rule.
func NewOwner(name string) (Owner, error) {
	if !ownerRE.MatchString(name) {
		return Owner{}, ErrBadOwner
	}
	return Owner{name: name}, nil
}

// IsZero reports whether no owner is set.
func (o Owner) IsZero() bool { return o.name == "" }

// Reveal returns the owner's name. Only request bodies and the 0600 client
// config may carry it.
func (o Owner) Reveal() string { return o.name }

// Equal compares two owners without revealing either.
func (o Owner) Equal(other Owner) bool { return o.name == other.name }

// AuthKey is what the master expects as authKey: the lower-case hex MD5 of
// the owner. It is as secret as the owner.
func (o Owner) AuthKey() string {
	sum := md5.Sum([]byte(o.name)) //nolint:gosec // protocol-defined, not a security choice of ours
	return hex.EncodeToString(sum[:])
}

// String keeps the owner out of logs and messages.
func (o Owner) String() string { return "<redacted>" }

// GoString keeps the owner out of %#v.
func (o Owner) GoString() string { return "master.Owner{<redacted>}" }

// MarshalText keeps the owner out of JSON and structured logs.
func (o Owner) MarshalText() ([]byte, error) { return []byte("<redacted>"), nil }

// secrets lists the strings of o that must never leave in an error.
func (o Owner) secrets() redactor {
	if o.IsZero() {
		return nil
	}
	return redactor{o.name, o.AuthKey()}
}
