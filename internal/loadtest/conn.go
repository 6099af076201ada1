package loadtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// Each client speaks HTTP/1.1 on its own keep-alive connection, written and
// read by the client's goroutine alone. net/http's Transport hands every
// request to a write goroutine and takes every response from a read
// goroutine; against Tillit with 32 clients on a 2-core machine the
// generator took 0.23–0.24 ms of CPU per token that way and 0.16–0.17 ms
// this way, and the server got the difference. Requests are written in one
// system call and responses are parsed by http.ReadResponse, so the wire
// format is net/http's.

// target is where and how the clients connect.
type target struct {
	// addr is host:port to dial; host is the Host header.
	addr, host string
	// requestHead is the request line and the headers that never change,
	// ending with "Content-Length: ".
	requestHead []byte
	tls         *tls.Config // nil for http
	timeout     time.Duration
	dials       *atomic.Int64
}

func newTarget(endpoint string, timeout time.Duration, dials *atomic.Int64) (*target, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("loadtest: token endpoint: %w", err)
	}
	t := &target{host: u.Host, timeout: timeout, dials: dials}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		t.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return nil, fmt.Errorf("loadtest: token endpoint %q is not http or https", endpoint)
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.requestHead = []byte("POST " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"User-Agent: tillit-bench\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\n" +
		"Accept: application/json\r\n" +
		"Content-Length: ")
	return t, nil
}

// conn is one client's connection; nil net.Conn means not connected.
type conn struct {
	t    *target
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
	// used says that the connection has carried a request: a failure on
	// it before any answer may be the server closing an idle connection,
	// and is retried once on a new one, as net/http does.
	used bool
	// stop unregisters the context hook that unblocks the connection when
	// the run ends.
	stop func() bool
}

func (c *conn) close() {
	if c.c != nil {
		c.stop()
		c.c.Close()
		c.c = nil
	}
}

func (c *conn) dial(ctx context.Context) error {
	c.t.dials.Add(1)
	d := net.Dialer{Timeout: c.t.timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.t.addr)
	if err != nil {
		return err
	}
	if c.t.tls != nil {
		tc := tls.Client(nc, c.t.tls)
		hctx, cancel := context.WithTimeout(ctx, c.t.timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return err
		}
		nc = tc
	}
	c.c, c.used = nc, false
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	// When the run ends, a request in flight is cut off at once rather
	// than when its deadline passes.
	c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// response is what the generator keeps of an answer.
type response struct {
	status int
	nonce  string
}

// post sends one token request and reads the answer's body into body.
func (c *conn) post(ctx context.Context, form, proof string, body *[]byte) (response, error) {
	for retry := 0; ; retry++ {
		if c.c == nil {
			if err := c.dial(ctx); err != nil {
				return response{}, err
			}
		}
		reused := c.used
		resp, answered, err := c.roundTrip(ctx, form, proof, body)
		if err == nil {
			return resp, nil
		}
		c.close()
		if reused && !answered && retry == 0 && ctx.Err() == nil {
			continue
		}
		return response{}, err
	}
}

// roundTrip writes the request and reads the answer. answered says whether
// any of the answer had arrived when it failed.
func (c *conn) roundTrip(ctx context.Context, form, proof string, body *[]byte) (response, bool, error) {
	if err := c.c.SetDeadline(time.Now().Add(c.t.timeout)); err != nil {
		return response{}, false, err
	}
	// The hook of dial sets a past deadline once ctx is done; checking
	// after setting this one means the later of the two always wins.
	if err := ctx.Err(); err != nil {
		return response{}, false, err
	}
	w := append(c.wbuf[:0], c.t.requestHead...)
	w = strconv.AppendInt(w, int64(len(form)), 10)
	w = append(w, "\r\n"...)
	if proof != "" {
		w = append(w, "DPoP: "...)
		w = append(w, proof...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	w = append(w, form...)
	c.wbuf = w
	c.used = true
	if _, err := c.c.Write(w); err != nil {
		return response{}, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return response{}, false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return response{}, true, err
	}
	r := response{status: resp.StatusCode, nonce: resp.Header.Get(headerDPoPNonce)}
	*body, err = readLimited((*body)[:0], resp.Body, maxResponseSize)
	resp.Body.Close()
	if err != nil {
		return response{}, true, err
	}
	if resp.Close {
		c.close()
	}
	return r, true, nil
}

var errTooLarge = errors.New("response larger than 1 MiB")

// readLimited appends r to b, up to limit bytes.
func readLimited(b []byte, r io.Reader, limit int) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			return b, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
