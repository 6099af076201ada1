package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// wellKnownPath is where the discovery document lives, relative to the
// issuer (OpenID Connect Discovery §4, profile §1.2).
const wellKnownPath = "/.well-known/openid-configuration"

// Metadata is the part of an issuer's discovery document the client uses,
// with HelseID's field names (profile §1.3). Raw holds the whole document
// for everything else.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	JWKSURI                                    string   `json:"jwks_uri"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint,omitempty"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// Metadata returns the issuer's discovery document, read from
// <issuer>/.well-known/openid-configuration at most once per
// Config.MetadataMaxAge, and again after a token request failed in a way a
// moved endpoint would explain (no answer, or an answer that is not OAuth).
// The document must name the configured issuer exactly (OpenID Connect
// Discovery §4.3), or a server could make the client trust another
// issuer's endpoints. The result is a copy; its slices are shared and must
// not be modified. A failed read is not cached.
func (c *Client) Metadata(ctx context.Context) (*Metadata, error) {
	now := c.now()
	c.mu.Lock()
	if c.meta != nil && now.Before(c.metaExpires) {
		m := *c.meta
		c.mu.Unlock()
		return &m, nil
	}
	c.mu.Unlock()

	// Concurrent first callers may each read the document; that is cheaper
	// than making every caller wait behind one slow read under the lock.
	m, err := c.fetchMetadata(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.meta, c.metaExpires = m, now.Add(c.metaMaxAge)
	c.mu.Unlock()
	cp := *m
	return &cp, nil
}

// forgetMetadata drops the cached document if it is still md, after a
// failure that a moved endpoint would explain.
func (c *Client) forgetMetadata(md *Metadata) {
	c.mu.Lock()
	if c.meta != nil && c.meta.TokenEndpoint == md.TokenEndpoint {
		c.meta = nil
	}
	c.mu.Unlock()
}

func (c *Client) fetchMetadata(ctx context.Context) (*Metadata, error) {
	// The issuer may end in "/"; the path is appended without doubling it
	// (OpenID Connect Discovery §4.1).
	u := strings.TrimSuffix(c.issuer, "/") + wellKnownPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("client: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unreachable(ctx, "discovery", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("%w: discovery: %s answered HTTP %d", ErrIssuerUnreachable, u, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client: discovery: %s answered HTTP %d", u, resp.StatusCode)
	}
	body, err := readBody(resp.Body, maxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("client: discovery: %w", err)
	}
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("client: discovery: document is not valid JSON: %w", err)
	}
	if m.Issuer != c.issuer {
		return nil, fmt.Errorf("client: discovery: document names issuer %q, not %q", m.Issuer, c.issuer)
	}
	if m.TokenEndpoint == "" {
		return nil, errors.New("client: discovery: document has no token_endpoint")
	}
	if err := checkURL(m.TokenEndpoint, false); err != nil {
		return nil, fmt.Errorf("client: discovery: token_endpoint %q: %w", m.TokenEndpoint, err)
	}
	m.Raw = body
	return &m, nil
}

// readBody reads r up to limit bytes and fails beyond it, rather than
// truncating: a cut-off document would fail later with a confusing error.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response is larger than %d bytes", limit)
	}
	return b, nil
}
