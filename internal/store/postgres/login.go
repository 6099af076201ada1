package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tillit-sts/tillit/internal/store"
)

// Login state (store.Store). A consume is one UPDATE that spends the
// record only if it is unspent and unexpired: PostgreSQL's row lock makes
// concurrent consumers wait for the first and then find it spent. Only
// when nothing was spent does a second statement read the row, to say why.

func notFound(what string) error { return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound) }

// created turns the outcome of an INSERT ... ON CONFLICT DO NOTHING into
// an error.
func created(what string, n int64, err error) error {
	if err != nil {
		return fmt.Errorf("postgres: create %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrAlreadyExists)
	}
	return nil
}

// timeOrZero reads a nullable timestamptz.
func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return utc(*t)
}

// CreatePushedRequest stores a pushed authorization request.
func (s *Store) CreatePushedRequest(ctx context.Context, r store.PushedRequest) error {
	if r.ID == "" {
		return errors.New("postgres: pushed request without ID")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO pushed_request (id, client_id, jkt, params, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		r.ID, r.ClientID, r.JKT, nonNil(r.Params), r.CreatedAt, r.ExpiresAt)
	return created("pushed request", tag.RowsAffected(), err)
}

// ConsumePushedRequest spends a pushed request; see store.Store.
func (s *Store) ConsumePushedRequest(ctx context.Context, now time.Time, id, clientID string) (store.PushedRequest, error) {
	r := store.PushedRequest{ID: id}
	var consumed *time.Time
	err := s.pool.QueryRow(ctx, `UPDATE pushed_request SET consumed_at = $3
		WHERE id = $1 AND client_id = $2 AND expires_at > $3 AND consumed_at IS NULL
		RETURNING client_id, jkt, params, created_at, expires_at, consumed_at`, id, clientID, now).
		Scan(&r.ClientID, &r.JKT, &r.Params, &r.CreatedAt, &r.ExpiresAt, &consumed)
	if err == nil {
		r.CreatedAt, r.ExpiresAt, r.ConsumedAt = utc(r.CreatedAt), utc(r.ExpiresAt), timeOrZero(consumed)
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.PushedRequest{}, fmt.Errorf("postgres: consume pushed request: %w", err)
	}
	// Nothing spent: say why.
	var owner string
	var expires time.Time
	err = s.pool.QueryRow(ctx, "SELECT client_id, expires_at, consumed_at FROM pushed_request WHERE id = $1", id).
		Scan(&owner, &expires, &consumed)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && (owner != clientID || !expires.After(now)):
		return store.PushedRequest{}, notFound("pushed request")
	case err != nil:
		return store.PushedRequest{}, fmt.Errorf("postgres: read pushed request: %w", err)
	}
	return store.PushedRequest{}, fmt.Errorf("postgres: pushed request: %w", store.ErrReplay)
}

const codeColumns = "id, client_id, doc, created_at, expires_at, redeemed_at, redemption"

func scanCode(row pgx.Row) (store.AuthorizationCode, error) {
	var (
		c               store.AuthorizationCode
		doc, redemption string
		redeemed        *time.Time
	)
	if err := row.Scan(&c.ID, &c.ClientID, &doc, &c.CreatedAt, &c.ExpiresAt, &redeemed, &redemption); err != nil {
		return c, err
	}
	if err := store.DecodeCodeDocument(&c, doc); err != nil {
		return c, err
	}
	c.CreatedAt, c.ExpiresAt = utc(c.CreatedAt), utc(c.ExpiresAt)
	if redeemed != nil {
		c.Redemption = &store.CodeRedemption{}
		if err := json.Unmarshal([]byte(redemption), c.Redemption); err != nil {
			return c, fmt.Errorf("decode redemption: %w", err)
		}
		c.Redemption.At = utc(*redeemed)
	}
	return c, nil
}

// CreateAuthorizationCode stores an unredeemed authorization code.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error {
	if c.ID == "" {
		return errors.New("postgres: authorization code without ID")
	}
	doc, err := store.CodeDocument(c)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO authorization_code (id, client_id, doc, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		c.ID, c.ClientID, doc, c.CreatedAt, c.ExpiresAt)
	return created("authorization code", tag.RowsAffected(), err)
}

// AuthorizationCode reads a code without spending it; see store.Store.
func (s *Store) AuthorizationCode(ctx context.Context, now time.Time, id string) (store.AuthorizationCode, error) {
	c, err := scanCode(s.pool.QueryRow(ctx, "SELECT "+codeColumns+" FROM authorization_code WHERE id = $1", id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.AuthorizationCode{}, notFound("authorization code")
	case err != nil:
		return store.AuthorizationCode{}, fmt.Errorf("postgres: read authorization code: %w", err)
	case c.Redemption == nil && !c.ExpiresAt.After(now):
		return store.AuthorizationCode{}, notFound("authorization code")
	}
	return c, nil
}

// RedeemAuthorizationCode spends a code; see store.Store.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, now time.Time, id string, r store.CodeRedemption) (store.AuthorizationCode, error) {
	redemption, err := json.Marshal(r)
	if err != nil {
		return store.AuthorizationCode{}, fmt.Errorf("postgres: encode redemption: %w", err)
	}
	c, err := scanCode(s.pool.QueryRow(ctx, `UPDATE authorization_code SET redeemed_at = $2, redemption = $3
		WHERE id = $1 AND expires_at > $2 AND redeemed_at IS NULL
		RETURNING `+codeColumns, id, now, string(redemption)))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.AuthorizationCode{}, fmt.Errorf("postgres: redeem authorization code: %w", err)
	}
	// Nothing spent: a reuse returns what the first redemption issued.
	c, err = scanCode(s.pool.QueryRow(ctx, "SELECT "+codeColumns+" FROM authorization_code WHERE id = $1", id))
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && c.Redemption == nil:
		return store.AuthorizationCode{}, notFound("authorization code")
	case err != nil:
		return store.AuthorizationCode{}, fmt.Errorf("postgres: read authorization code: %w", err)
	}
	return c, fmt.Errorf("postgres: authorization code: %w", store.ErrReplay)
}

const sessionColumns = "id, login, clients, created_at, expires_at"

func scanSession(row pgx.Row) (store.Session, error) {
	var (
		sess  store.Session
		login string
	)
	if err := row.Scan(&sess.ID, &login, &sess.Clients, &sess.CreatedAt, &sess.ExpiresAt); err != nil {
		return sess, err
	}
	if err := json.Unmarshal([]byte(login), &sess.Login); err != nil {
		return sess, fmt.Errorf("decode login: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = utc(sess.CreatedAt), utc(sess.ExpiresAt)
	return sess, nil
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if sess.ID == "" {
		return errors.New("postgres: session without ID")
	}
	login, err := json.Marshal(sess.Login)
	if err != nil {
		return fmt.Errorf("postgres: encode session: %w", err)
	}
	clients := []string{}
	for _, c := range sess.Clients {
		if !contains(clients, c) {
			clients = append(clients, c)
		}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO login_session (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		sess.ID, string(login), clients, sess.CreatedAt, sess.ExpiresAt)
	return created("session", tag.RowsAffected(), err)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Session reads an unexpired session.
func (s *Store) Session(ctx context.Context, now time.Time, id string) (store.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, "SELECT "+sessionColumns+" FROM login_session WHERE id = $1 AND expires_at > $2", id, now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Session{}, notFound("session")
	case err != nil:
		return store.Session{}, fmt.Errorf("postgres: read session: %w", err)
	}
	return sess, nil
}

// AddSessionClient adds clientID to an unexpired session's clients. The
// CASE is evaluated on the row as the lock leaves it, so two concurrent
// calls for one client add it once.
func (s *Store) AddSessionClient(ctx context.Context, now time.Time, id, clientID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE login_session
		SET clients = CASE WHEN $2 = ANY(clients) THEN clients ELSE array_append(clients, $2) END
		WHERE id = $1 AND expires_at > $3`, id, clientID, now)
	if err != nil {
		return fmt.Errorf("postgres: add session client: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("session")
	}
	return nil
}

// DeleteSession removes a session and returns it as it was.
func (s *Store) DeleteSession(ctx context.Context, id string) (store.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, "DELETE FROM login_session WHERE id = $1 RETURNING "+sessionColumns, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Session{}, notFound("session")
	case err != nil:
		return store.Session{}, fmt.Errorf("postgres: delete session: %w", err)
	}
	return sess, nil
}

// CreateUpstreamLogin stores the state of a login started upstream.
func (s *Store) CreateUpstreamLogin(ctx context.Context, u store.UpstreamLogin) error {
	if u.ID == "" {
		return errors.New("postgres: upstream login without ID")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO upstream_login (id, idp, nonce, code_verifier, return_to, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		u.ID, u.IdP, u.Nonce, u.CodeVerifier, nonNil(u.Return), u.CreatedAt, u.ExpiresAt)
	return created("upstream login", tag.RowsAffected(), err)
}

// ConsumeUpstreamLogin spends the state of an upstream login.
func (s *Store) ConsumeUpstreamLogin(ctx context.Context, now time.Time, id string) (store.UpstreamLogin, error) {
	u := store.UpstreamLogin{ID: id}
	var consumed *time.Time
	err := s.pool.QueryRow(ctx, `UPDATE upstream_login SET consumed_at = $2
		WHERE id = $1 AND expires_at > $2 AND consumed_at IS NULL
		RETURNING idp, nonce, code_verifier, return_to, created_at, expires_at, consumed_at`, id, now).
		Scan(&u.IdP, &u.Nonce, &u.CodeVerifier, &u.Return, &u.CreatedAt, &u.ExpiresAt, &consumed)
	if err == nil {
		u.CreatedAt, u.ExpiresAt, u.ConsumedAt = utc(u.CreatedAt), utc(u.ExpiresAt), timeOrZero(consumed)
		return u, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.UpstreamLogin{}, fmt.Errorf("postgres: consume upstream login: %w", err)
	}
	var expires time.Time
	err = s.pool.QueryRow(ctx, "SELECT expires_at, consumed_at FROM upstream_login WHERE id = $1", id).Scan(&expires, &consumed)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && !expires.After(now):
		return store.UpstreamLogin{}, notFound("upstream login")
	case err != nil:
		return store.UpstreamLogin{}, fmt.Errorf("postgres: read upstream login: %w", err)
	}
	return store.UpstreamLogin{}, fmt.Errorf("postgres: upstream login: %w", store.ErrReplay)
}

// DeleteExpiredLoginState removes expired login state, one table per
// statement, all in one round trip.
func (s *Store) DeleteExpiredLoginState(ctx context.Context, before time.Time) (int64, error) {
	b := &pgx.Batch{}
	for _, table := range []string{"pushed_request", "authorization_code", "login_session", "upstream_login"} {
		b.Queue("DELETE FROM "+table+" WHERE expires_at <= $1", before)
	}
	br := s.pool.SendBatch(ctx, b)
	var total int64
	var err error
	for range b.Len() {
		tag, e := br.Exec()
		if e != nil {
			err = e
			break
		}
		total += tag.RowsAffected()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired login state: %w", err)
	}
	return total, nil
}
