package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Bounds on what is read from the issuer. HelseID's discovery document is
// about 5 KiB and its JWKS 2 KiB.
const (
	maxMetadataSize = 512 << 10
	maxJWKSSize     = 256 << 10
	// fetchTimeout bounds one discovery or JWKS read when the request that
	// caused it has no earlier deadline of its own.
	fetchTimeout = 10 * time.Second
	// retryWithoutKeys is the shortest wait between attempts while no keys
	// have ever been read: an API that started before its STS should not
	// wait a whole refresh interval once the STS is up.
	retryWithoutKeys = 5 * time.Second
)

// keySet holds the issuer's signing keys. Keys are read through discovery
// (jwks_uri), never from a URL a token names; kid only selects among them.
type keySet struct {
	issuer   string
	http     *http.Client
	now      func() time.Time
	interval time.Duration // least time between reads
	maxAge   time.Duration // read again after this, if the STS answers

	cur atomic.Pointer[keyState]

	mu          sync.Mutex // one read at a time
	lastAttempt time.Time
	lastErr     error
}

type keyState struct {
	keys    map[string]*jose.JSONWebKey
	fetched time.Time
}

// key returns the key with kid. An unknown kid makes the set read the
// issuer's keys again, at most once per interval, so that a key the STS
// has just started to sign with is found, while a flood of made-up kids
// costs the STS one request per interval.
func (s *keySet) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	st := s.cur.Load()
	if st != nil {
		if k, ok := st.keys[kid]; ok {
			if s.now().Sub(st.fetched) >= s.maxAge && s.mu.TryLock() {
				// Stale but usable: one caller reads the keys again, the
				// others go on with these; a failure keeps them.
				s.refreshLocked(ctx, st)
				s.mu.Unlock()
			}
			return k, nil
		}
	}
	s.mu.Lock()
	st, err := s.refreshLocked(ctx, st)
	s.mu.Unlock()
	if st != nil {
		if k, ok := st.keys[kid]; ok {
			return k, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, nil
}

// refreshLocked reads the keys unless another caller did so since seen was
// loaded or the last attempt was too recent. It returns the current state
// and, if there are no keys at all, why.
func (s *keySet) refreshLocked(ctx context.Context, seen *keyState) (*keyState, error) {
	cur := s.cur.Load()
	if cur != seen && cur != nil {
		return cur, nil // someone else read them while we waited
	}
	now := s.now()
	wait := s.interval
	if cur == nil {
		wait = min(wait, retryWithoutKeys)
	}
	if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < wait {
		if cur == nil {
			return nil, s.lastErr
		}
		return cur, nil
	}
	s.lastAttempt = now
	// The read serves every caller, so it must not die with the request
	// that started it; it gets its own deadline instead.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	keys, err := s.fetch(fctx)
	if err != nil {
		s.lastErr = err
		return cur, err
	}
	st := &keyState{keys: keys, fetched: now}
	s.cur.Store(st)
	s.lastErr = nil
	return st, nil
}

// fetch reads discovery and then the JWKS it names.
func (s *keySet) fetch(ctx context.Context) (map[string]*jose.JSONWebKey, error) {
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	u := strings.TrimSuffix(s.issuer, "/") + "/.well-known/openid-configuration"
	if err := s.getJSON(ctx, u, maxMetadataSize, &md); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if md.Issuer != s.issuer {
		return nil, fmt.Errorf("discovery: document names issuer %q, not %q", md.Issuer, s.issuer)
	}
	if err := checkURL(md.JWKSURI); err != nil {
		return nil, fmt.Errorf("discovery: jwks_uri %q: %w", md.JWKSURI, err)
	}
	var set jose.JSONWebKeySet
	if err := s.getJSON(ctx, md.JWKSURI, maxJWKSSize, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := map[string]*jose.JSONWebKey{}
	for i := range set.Keys {
		k := &set.Keys[i]
		// Only public signing keys with a kid can verify tokens here; an
		// encryption key or a stray private key is left out.
		if k.KeyID == "" || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if _, dup := keys[k.KeyID]; dup {
			return nil, fmt.Errorf("JWKS: kid %q appears twice", k.KeyID)
		}
		keys[k.KeyID] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no public signing keys with a kid")
	}
	return keys, nil
}

func (s *keySet) getJSON(ctx context.Context, u string, limit int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("%s sent more than %d bytes", u, limit)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	return nil
}

// checkURL accepts an https URL, or http to a loopback address for a
// developer's STS: keys read in clear text over a network could be
// anyone's.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return errors.New("URL has no host")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("plain http is allowed only to a loopback address")
	}
	return errors.New("not an https URL")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
