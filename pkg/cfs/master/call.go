package master

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxReplyBytes bounds a reply body; /vol/list of a large cluster is the
// biggest reply a driver reads.
const maxReplyBytes = 32 << 20

// request is one API call.
type request struct {
	// path is the API path, e.g. /admin/getVol.
	path string
	// form holds the parameters.
	form url.Values
	// post sends form as an urlencoded body instead of the query string.
	// Calls that carry the owner or its key use it, so that secrets never
	// sit in a URL (access logs, proxies, url.Error texts).
	post bool
	// secrets are redacted from anything that comes back.
	secrets redactor
}

// envelope is the master's reply: {"code": int, "msg": string, "data": any}.
type envelope struct {
	Code *int            `json:"code"`
	Msg  *string         `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// attemptError is why one master gave no API reply. It never holds a URL.
type attemptError struct {
	addr string
	err  error
}

func (e *attemptError) Error() string { return e.addr + ": " + e.err.Error() }

func (e *attemptError) Unwrap() error { return e.err }

// do sends req to each master in turn until one answers with an envelope.
// A non-zero code is an answer (an *APIError), never a reason to try the
// next master; a transport error, a timeout, a non-200 status or a body
// that is not an envelope is. It returns the reply's data.
func (c *Client) do(ctx context.Context, req request) (data json.RawMessage, err error) {
	start := time.Now()
	defer func() { c.observe(req.path, start, err) }()

	var failures []error
	for _, addr := range c.addrs {
		if ctx.Err() != nil {
			break
		}
		env, aerr := c.attempt(ctx, addr, req)
		if aerr == nil {
			return env.Data, answer(req, env)
		}
		failures = append(failures, aerr)
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("master %s: %w (tried: %w)", req.path, cerr, errors.Join(failures...))
	}
	return nil, unavailable(req.path, failures)
}

// unavailable joins the failures of every master. When each one timed out
// the error also wraps context.DeadlineExceeded: the masters did not answer
// in time, which is what the caller's caller should hear.
func unavailable(path string, failures []error) error {
	allTimedOut := len(failures) > 0
	for _, f := range failures {
		allTimedOut = allTimedOut && errors.Is(f, context.DeadlineExceeded)
	}
	joined := errors.Join(failures...)
	if allTimedOut {
		return fmt.Errorf("master %s: %w: %w: %w", path, ErrUnavailable, context.DeadlineExceeded, joined)
	}
	return fmt.Errorf("master %s: %w: %w", path, ErrUnavailable, joined)
}

// answer turns an envelope into nil or a classified *APIError.
func answer(req request, env *envelope) error {
	if *env.Code == codeOK {
		return nil
	}
	return &APIError{
		Op:   req.path,
		Code: *env.Code,
		Msg:  req.secrets.redact(*env.Msg),
		kind: classify(*env.Code, *env.Msg),
	}
}

// attempt sends req to one master under the per-call cap. A POST that the
// master does not allow (405, as some releases answer) is sent once more
// as a GET.
func (c *Client) attempt(ctx context.Context, addr string, req request) (*envelope, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	defer cancel()

	env, status, err := c.send(actx, addr, req, req.post)
	if err == nil && status == http.StatusMethodNotAllowed && req.post {
		env, status, err = c.send(actx, addr, req, false)
	}
	switch {
	case err != nil:
		return nil, &attemptError{addr: addr, err: err}
	case status != http.StatusOK:
		return nil, &attemptError{addr: addr, err: fmt.Errorf("HTTP status %d", status)}
	case env == nil:
		return nil, &attemptError{addr: addr, err: errors.New("reply is not an API envelope")}
	}
	return env, nil
}

// send performs one HTTP exchange. It returns the status, and the envelope
// when the body is one.
func (c *Client) send(ctx context.Context, addr string, req request, post bool) (*envelope, int, error) {
	hreq, err := buildRequest(ctx, addr, req, post)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, 0, transportError(req, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, 0, transportError(req, err)
	}
	if resp.StatusCode != http.StatusOK || len(body) > maxReplyBytes {
		return nil, resp.StatusCode, nil
	}
	return decodeEnvelope(body), resp.StatusCode, nil
}

// buildRequest makes the HTTP request; the URL carries only non-secret
// parameters when post is set.
func buildRequest(ctx context.Context, addr string, req request, post bool) (*http.Request, error) {
	u := url.URL{Scheme: "http", Host: addr, Path: req.path}
	if !post {
		u.RawQuery = req.form.Encode()
		return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(),
		strings.NewReader(req.form.Encode()))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return hreq, nil
}

// transportError strips the URL from a *url.Error (it would carry the
// query) and redacts the call's secrets from what is left.
func transportError(req request, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no reply in time: %w", req.path, context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", req.path, context.Canceled)
	}
	return fmt.Errorf("%s: %s", req.path, req.secrets.redact(err.Error()))
}

// decodeEnvelope parses body strictly: exactly the three envelope keys,
// code and msg present with the right types, and nothing after the object.
// It returns nil when body is not such an envelope.
func decodeEnvelope(body []byte) *envelope {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil
	}
	if env.Code == nil || env.Msg == nil || env.Data == nil {
		return nil
	}
	return &env
}
