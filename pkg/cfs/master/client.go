// Package master is a small client for the ChubaoFS/CubeFS master's REST
// API: the calls a CSI driver needs (create, read, delete, expand, shrink
// and list volumes; cluster information), with a deadline on every request,
// every master address tried in order, strict decoding of the reply
// envelope, and error classification that works across the releases whose
// numeric codes differ. The owner and its auth key never appear in an error.
package master

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrBadAddress reports a master address that is not host:port.
var ErrBadAddress = errors.New("master address must be host:port")

// DefaultCallTimeout caps one request to one master.
const DefaultCallTimeout = 10 * time.Second

// Options configure a Client.
type Options struct {
	// CallTimeout caps one request to one master; the caller's context
	// deadline still applies on top. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// Transport replaces the HTTP transport (tests); nil means a private
	// transport that ignores proxy settings from the environment.
	Transport http.RoundTripper
	// Observe, when set, is told about every API call (for metrics).
	Observe func(op string, start time.Time, err error)
}

// Client talks to the masters of one cluster. It is safe for concurrent use.
type Client struct {
	addrs []string
	http  *http.Client
	opts  Options
}

// New returns a client for addrs, tried in the given order.
func New(addrs []string, opts Options) (*Client, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no address given", ErrBadAddress)
	}
	for _, a := range addrs {
		if err := CheckAddress(a); err != nil {
			return nil, err
		}
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	rt := opts.Transport
	if rt == nil {
		rt = newTransport()
	}
	hc := &http.Client{
		Transport: rt,
		// A redirect is not an API reply: report it and try the next master.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{addrs: append([]string(nil), addrs...), http: hc, opts: opts}, nil
}

// newTransport never uses HTTP_PROXY: requests carry the owner in their
// body and must go to the master only.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: DefaultCallTimeout,
	}
}

// CheckAddress validates one master address: host:port, a port number,
// no scheme, path or user information.
func CheckAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: got %q", ErrBadAddress, addr)
	}
	if strings.ContainsAny(addr, "/@?# \t") {
		return fmt.Errorf("%w: got %q", ErrBadAddress, addr)
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: port of %q is not a number", ErrBadAddress, addr)
		}
	}
	return nil
}

// Addrs returns the master addresses in the order they are tried.
func (c *Client) Addrs() []string { return append([]string(nil), c.addrs...) }

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// observe reports one API call to the metrics hook.
func (c *Client) observe(op string, start time.Time, err error) {
	if c.opts.Observe != nil {
		c.opts.Observe(op, start, err)
	}
}
