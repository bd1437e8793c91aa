package master

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors a reply is classified into. Callers test them with
// errors.Is; every *APIError unwraps to exactly one of them.
var (
	// ErrVolNotFound: the master has no volume of that name ("vol not
	// exists", code 7 in every release).
	ErrVolNotFound = errors.New("volume not found")
	// ErrDuplicateVol: createVol found the name taken, by any owner and
	// whatever the state of the volume ("duplicate vol").
	ErrDuplicateVol = errors.New("volume name already taken")
	// ErrAuthKeyMismatch: the owner's key does not match the volume (code
	// 32 up to 3.3.1, 34 from 3.3.2; classified on the message only).
	ErrAuthKeyMismatch = errors.New("owner does not match the volume")
	// ErrVolMarkedDeleted: the volume is already marked for deletion and
	// a repeated delete is refused (code 8, 3.3.2+).
	ErrVolMarkedDeleted = errors.New("volume is already marked for deletion")
	// ErrNoVolPolicy: the owner's policy no longer lists the volume; on a
	// repeated direct delete this means the first delete is under way
	// (code 47, 49 or 50 depending on the release).
	ErrNoVolPolicy = errors.New("owner has no policy for the volume")
	// ErrExpandNotLarger: expand to a capacity that is not larger than the
	// current one (the master's expand is strict).
	ErrExpandNotLarger = errors.New("new capacity is not larger than the current one")
	// ErrShrinkNotSmaller: shrink to a capacity that is not smaller.
	ErrShrinkNotSmaller = errors.New("new capacity is not smaller than the current one")
	// ErrBelowUsed: the new capacity is below what the volume already uses.
	ErrBelowUsed = errors.New("new capacity is below the used space")
	// ErrInvalidParam: the master rejected a parameter (code 2).
	ErrInvalidParam = errors.New("master rejected a parameter")
	// ErrNoCapacity: the cluster cannot place the volume (too few data
	// nodes or no space).
	ErrNoCapacity = errors.New("cluster has no capacity for the volume")
	// ErrUnavailable: no master answered with an API reply.
	ErrUnavailable = errors.New("no master answered")
	// ErrBadReply: a master answered with an envelope whose data does not
	// have the shape the API documents.
	ErrBadReply = errors.New("unexpected reply from master")
	// ErrMaster: any other error code.
	ErrMaster = errors.New("master reported an error")
)

// Codes that are the same in every release; everything else is matched on
// the message as well, because the iota-numbered codes drift.
const (
	codeOK           = 0
	codeParamError   = 2
	codeVolNotExists = 7
)

// APIError is an envelope with a non-zero code: an answer, not a transport
// failure. Msg has the caller's owner and key redacted.
type APIError struct {
	// Op is the API path, e.g. /admin/createVol.
	Op   string
	Code int
	Msg  string
	kind error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("master %s: %v (code %d: %s)", e.Op, e.kind, e.Code, e.Msg)
}

// Unwrap returns the sentinel the reply was classified as.
func (e *APIError) Unwrap() error { return e.kind }

// msgRule maps a message fragment to a sentinel. Fragments are lower case
// and come from the real master's texts (research notes, A.2-A.3).
type msgRule struct {
	fragment string
	kind     error
}

// msgRules is checked in order; the first fragment found wins.
var msgRules = []msgRule{ //nolint:gochecknoglobals // constant table
	{"duplicate vol", ErrDuplicateVol},
	{"auth key do not match", ErrAuthKeyMismatch},
	{"vol has been mark delete", ErrVolMarkedDeleted},
	{"no vol policy", ErrNoVolPolicy},
	{"vol not exists", ErrVolNotFound},
	{"should be larger than the old capacity", ErrExpandNotLarger},
	{"should be less than the old capacity", ErrShrinkNotSmaller},
	{"larger than the used space", ErrBelowUsed},
	{"less than minlimit", ErrNoCapacity},
	{"no enough", ErrNoCapacity},
	{"not enough", ErrNoCapacity},
	{"no resoure to support", ErrInvalidParam}, // sic, the master's spelling
}

// classify names what a non-zero reply means, from its code and message
// together: the message decides wherever the master's text is specific
// (codes 32/34 swap meaning between releases), and only the codes that
// never moved (2, 7) decide on their own.
func classify(code int, msg string) error {
	lower := strings.ToLower(msg)
	for _, r := range msgRules {
		if !strings.Contains(lower, r.fragment) {
			continue
		}
		if r.kind == ErrNoCapacity && code == codeParamError {
			return ErrInvalidParam // a parameter that asked for too much
		}
		return r.kind
	}
	switch code {
	case codeVolNotExists:
		return ErrVolNotFound
	case codeParamError:
		return ErrInvalidParam
	}
	return ErrMaster
}

// redactor removes secrets of one call from text that came back from the
// master or the network.
type redactor []string

// redact replaces every non-empty secret in s.
func (r redactor) redact(s string) string {
	for _, secret := range r {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<redacted>")
		}
	}
	return s
}
