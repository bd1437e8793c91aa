package standin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// requestTimeout bounds one HTTP request to one master. (The real SDK's
// timeout was not measured.)
const requestTimeout = 10 * time.Second

// masterClient calls the master API the way the client SDK does: each
// address in turn until one gives a JSON envelope.
type masterClient struct {
	addrs []string
	hc    *http.Client
}

// apiError is a non-zero envelope code; its text is the master's msg.
type apiError struct {
	Code int
	Msg  string
}

func (e *apiError) Error() string { return e.Msg }

// volInfo holds the fields of getVol/client/vol the stand-in needs.
type volInfo struct {
	Name   string
	Owner  string
	Status int
}

// volStat holds the fields of /client/volStat the stand-in needs.
type volStat struct {
	TotalSize uint64
	UsedSize  uint64
}

func newMasterClient(addrs []string) *masterClient {
	return &masterClient{addrs: addrs, hc: &http.Client{Timeout: requestTimeout}}
}

// getVol is /admin/getVol, what loadConfFromMaster calls first.
func (m *masterClient) getVol(name string) (*volInfo, error) {
	out := &volInfo{}
	return out, m.call(http.MethodGet, "/admin/getVol", url.Values{"name": {name}}, out)
}

// clientVol is the meta wrapper's POST /client/vol with the owner's key.
func (m *masterClient) clientVol(name, authKey string) (*volInfo, error) {
	out := &volInfo{}
	form := url.Values{"name": {name}, "authKey": {authKey}}
	return out, m.call(http.MethodPost, "/client/vol", form, out)
}

// volStat is /client/volStat: capacity and usage in bytes.
func (m *masterClient) volStat(name string) (*volStat, error) {
	out := &volStat{}
	return out, m.call(http.MethodGet, "/client/volStat", url.Values{"name": {name}}, out)
}

// call tries each master. Transport failures, non-200 replies and non-JSON
// bodies move on to the next address; an envelope with a non-zero code is
// the answer. The last transport error is returned if none answered.
func (m *masterClient) call(method, path string, form url.Values, out any) error {
	var lastErr error = fmt.Errorf("no master address")
	for _, addr := range m.addrs {
		env, err := m.callOne(method, addr, path, form)
		if err != nil {
			lastErr = err
			continue
		}
		if env.Code != 0 {
			return &apiError{Code: env.Code, Msg: env.Msg}
		}
		return json.Unmarshal(env.Data, out)
	}
	return lastErr
}

type envelope struct {
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// callOne sends one request to one master.
func (m *masterClient) callOne(method, addr, path string, form url.Values) (*envelope, error) {
	u := "http://" + addr + path
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = m.hc.Post(u, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	} else {
		resp, err = m.hc.Get(u + "?" + form.Encode())
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("master %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
	}
	env := &envelope{}
	if err := json.Unmarshal(body, env); err != nil {
		return nil, fmt.Errorf("master %s: reply is not JSON: %v", addr, err)
	}
	return env, nil
}
