package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Envelope is the master's reply body, for errors as well as successes
// (both are HTTP 200). Data is null on errors.
type Envelope struct {
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// reply is what a handler returns; ServeHTTP turns it into an Envelope.
type reply struct {
	code int
	msg  string
	data any
}

func okReply(data any) reply { return reply{code: CodeOK, msg: MsgSuccess, data: data} }

func errReply(code int, msg string) reply { return reply{code: code, msg: msg} }

// paramErr is a parameter failure: always code 2 on the real master.
func paramErr(format string, args ...any) reply {
	return errReply(CodeParamError, fmt.Sprintf(format, args...))
}

// keyNotFound mimics the master's keyNotFound, whose text carries the
// file:line prefix of the util/errors package that built it.
func keyNotFound(key string) reply {
	return paramErr("[operate_util.go 225] parameter %s not found", key)
}

// unmatchedKey is a value that does not parse. The prefix is inferred from
// keyNotFound's; it was not measured.
func unmatchedKey(key string) reply {
	return paramErr("[operate_util.go 229] parameter %s not match", key)
}

// writeEnvelope sends rep the way the master does: HTTP 200,
// application/json, explicit Content-Length.
func writeEnvelope(w http.ResponseWriter, rep reply) {
	body, err := json.Marshal(struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data any    `json:"data"`
	}{rep.code, rep.msg, rep.data})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

var (
	// volNameRegexp is the master's volume-name rule (v2.0 to 3.5.3).
	volNameRegexp = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,61}[a-zA-Z0-9]$`)
	// ownerRegexp is the master's owner rule: no '-', at most 21 characters.
	ownerRegexp = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,20}$`)
)

// formName reads and checks the "name" parameter.
func formName(r *http.Request) (string, *reply) {
	name := r.FormValue("name")
	if name == "" {
		rep := keyNotFound("name")
		return "", &rep
	}
	if !volNameRegexp.MatchString(name) {
		rep := paramErr("name can only be number and letters")
		return "", &rep
	}
	return name, nil
}

// formAuthKey reads the required "authKey" parameter.
func formAuthKey(r *http.Request) (string, *reply) {
	key := r.FormValue("authKey")
	if key == "" {
		rep := keyNotFound("authKey")
		return "", &rep
	}
	return key, nil
}

// formUint reads an optional non-negative integer; missing gives def.
func formUint(r *http.Request, key string, def int) (int, *reply) {
	s := r.FormValue(key)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		rep := unmatchedKey(key)
		return 0, &rep
	}
	return v, nil
}

// formBool reads an optional boolean; set reports whether it was given.
func formBool(r *http.Request, key string) (val, set bool, rep *reply) {
	s := r.FormValue(key)
	if s == "" {
		return false, false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		bad := unmatchedKey(key)
		return false, true, &bad
	}
	return v, true, nil
}

// remoteHost is the caller's IP without the port.
func remoteHost(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
