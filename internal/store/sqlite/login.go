package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// Login state (store.Store). Every consume reads and writes in one write
// op, under SQLite's write lock, so concurrent consumers are decided one
// after the other.

// insertOnce runs an INSERT ... ON CONFLICT DO NOTHING and turns "no row
// inserted" into store.ErrAlreadyExists.
func insertOnce(tx *wtx, what, query string, args ...any) error {
	res, err := tx.exec(query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrAlreadyExists)
	}
	return nil
}

func notFound(what string) error { return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound) }

// fromMicrosOrZero is fromMicros with 0 as the zero time.
func fromMicrosOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

const pushedColumns = "id, client_id, jkt, params, created_at, expires_at, consumed_at"

// CreatePushedRequest stores a pushed authorization request.
func (s *Store) CreatePushedRequest(ctx context.Context, r store.PushedRequest) error {
	if r.ID == "" {
		return errors.New("sqlite: pushed request without ID")
	}
	return s.write(ctx, func(tx *wtx) error {
		return insertOnce(tx, "pushed request", `INSERT INTO pushed_request (`+pushedColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`,
			r.ID, r.ClientID, r.JKT, nonNil(r.Params), micros(r.CreatedAt), micros(r.ExpiresAt))
	})
}

// ConsumePushedRequest spends a pushed request; see store.Store.
func (s *Store) ConsumePushedRequest(ctx context.Context, now time.Time, id, clientID string) (store.PushedRequest, error) {
	var r store.PushedRequest
	err := s.write(ctx, func(tx *wtx) error {
		var created, expires, consumed int64
		err := tx.queryRow("SELECT "+pushedColumns+" FROM pushed_request WHERE id = ?", id).
			Scan(&r.ID, &r.ClientID, &r.JKT, &r.Params, &created, &expires, &consumed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound("pushed request")
		case err != nil:
			return fmt.Errorf("sqlite: read pushed request: %w", err)
		case r.ClientID != clientID || expires <= micros(now):
			return notFound("pushed request")
		case consumed != 0:
			return fmt.Errorf("sqlite: pushed request: %w", store.ErrReplay)
		}
		if _, err := tx.exec("UPDATE pushed_request SET consumed_at = ? WHERE id = ?", micros(now), id); err != nil {
			return fmt.Errorf("sqlite: consume pushed request: %w", err)
		}
		r.CreatedAt, r.ExpiresAt, r.ConsumedAt = fromMicros(created), fromMicros(expires), fromMicros(micros(now))
		return nil
	})
	if err != nil {
		return store.PushedRequest{}, err
	}
	return r, nil
}

const codeColumns = "id, client_id, doc, created_at, expires_at, redeemed_at, redemption"

func scanCode(row scanner) (store.AuthorizationCode, error) {
	var (
		c                          store.AuthorizationCode
		doc, redemption            string
		created, expires, redeemed int64
	)
	if err := row.Scan(&c.ID, &c.ClientID, &doc, &created, &expires, &redeemed, &redemption); err != nil {
		return c, err
	}
	if err := store.DecodeCodeDocument(&c, doc); err != nil {
		return c, err
	}
	c.CreatedAt, c.ExpiresAt = fromMicros(created), fromMicros(expires)
	if redeemed != 0 {
		c.Redemption = &store.CodeRedemption{}
		if err := json.Unmarshal([]byte(redemption), c.Redemption); err != nil {
			return c, fmt.Errorf("decode redemption: %w", err)
		}
		c.Redemption.At = fromMicros(redeemed)
	}
	return c, nil
}

// CreateAuthorizationCode stores an unredeemed authorization code.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error {
	if c.ID == "" {
		return errors.New("sqlite: authorization code without ID")
	}
	doc, err := store.CodeDocument(c)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *wtx) error {
		return insertOnce(tx, "authorization code", `INSERT INTO authorization_code (`+codeColumns+`)
			VALUES (?, ?, ?, ?, ?, 0, '') ON CONFLICT DO NOTHING`,
			c.ID, c.ClientID, doc, micros(c.CreatedAt), micros(c.ExpiresAt))
	})
}

// AuthorizationCode reads a code without spending it; see store.Store.
func (s *Store) AuthorizationCode(ctx context.Context, now time.Time, id string) (store.AuthorizationCode, error) {
	c, err := scanCode(s.readDB.QueryRowContext(ctx, "SELECT "+codeColumns+" FROM authorization_code WHERE id = ?", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.AuthorizationCode{}, notFound("authorization code")
	case err != nil:
		return store.AuthorizationCode{}, fmt.Errorf("sqlite: read authorization code: %w", err)
	case c.Redemption == nil && !c.ExpiresAt.After(now):
		return store.AuthorizationCode{}, notFound("authorization code")
	}
	return c, nil
}

// RedeemAuthorizationCode spends a code; see store.Store.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, now time.Time, id string, r store.CodeRedemption) (store.AuthorizationCode, error) {
	redemption, err := json.Marshal(r)
	if err != nil {
		return store.AuthorizationCode{}, fmt.Errorf("sqlite: encode redemption: %w", err)
	}
	var c store.AuthorizationCode
	reused := false
	err = s.write(ctx, func(tx *wtx) error {
		var err error
		c, err = scanCode(tx.queryRow("SELECT "+codeColumns+" FROM authorization_code WHERE id = ?", id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound("authorization code")
		case err != nil:
			return fmt.Errorf("sqlite: read authorization code: %w", err)
		case c.Redemption != nil:
			reused = true
			return nil
		case !c.ExpiresAt.After(now):
			return notFound("authorization code")
		}
		if _, err := tx.exec("UPDATE authorization_code SET redeemed_at = ?, redemption = ? WHERE id = ?",
			micros(now), string(redemption), id); err != nil {
			return fmt.Errorf("sqlite: redeem authorization code: %w", err)
		}
		r.At = fromMicros(micros(now))
		r.TokenIDs = slices.Clone(r.TokenIDs)
		c.Redemption = &r
		return nil
	})
	switch {
	case err != nil:
		return store.AuthorizationCode{}, err
	case reused:
		return c, fmt.Errorf("sqlite: authorization code: %w", store.ErrReplay)
	}
	return c, nil
}

const sessionColumns = "id, login, clients, created_at, expires_at"

func scanSession(row scanner) (store.Session, error) {
	var (
		sess             store.Session
		login, clients   string
		created, expires int64
	)
	if err := row.Scan(&sess.ID, &login, &clients, &created, &expires); err != nil {
		return sess, err
	}
	if err := json.Unmarshal([]byte(login), &sess.Login); err != nil {
		return sess, fmt.Errorf("decode login: %w", err)
	}
	if err := json.Unmarshal([]byte(clients), &sess.Clients); err != nil {
		return sess, fmt.Errorf("decode clients: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = fromMicros(created), fromMicros(expires)
	return sess, nil
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if sess.ID == "" {
		return errors.New("sqlite: session without ID")
	}
	login, err := json.Marshal(sess.Login)
	if err != nil {
		return fmt.Errorf("sqlite: encode session: %w", err)
	}
	clients, err := json.Marshal(dedupe(sess.Clients))
	if err != nil {
		return fmt.Errorf("sqlite: encode session: %w", err)
	}
	return s.write(ctx, func(tx *wtx) error {
		return insertOnce(tx, "session", `INSERT INTO login_session (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			sess.ID, string(login), string(clients), micros(sess.CreatedAt), micros(sess.ExpiresAt))
	})
}

// dedupe returns list without repeats, in order of first appearance, and
// never nil, so that it is stored as a JSON array.
func dedupe(list []string) []string {
	out := []string{}
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Session reads an unexpired session.
func (s *Store) Session(ctx context.Context, now time.Time, id string) (store.Session, error) {
	sess, err := scanSession(s.readDB.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM login_session WHERE id = ?", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Session{}, notFound("session")
	case err != nil:
		return store.Session{}, fmt.Errorf("sqlite: read session: %w", err)
	case !sess.ExpiresAt.After(now):
		return store.Session{}, notFound("session")
	}
	return sess, nil
}

// AddSessionClient adds clientID to an unexpired session's clients.
func (s *Store) AddSessionClient(ctx context.Context, now time.Time, id, clientID string) error {
	return s.write(ctx, func(tx *wtx) error {
		sess, err := scanSession(tx.queryRow("SELECT "+sessionColumns+" FROM login_session WHERE id = ?", id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound("session")
		case err != nil:
			return fmt.Errorf("sqlite: read session: %w", err)
		case !sess.ExpiresAt.After(now):
			return notFound("session")
		case slices.Contains(sess.Clients, clientID):
			return nil
		}
		clients, err := json.Marshal(append(sess.Clients, clientID))
		if err != nil {
			return fmt.Errorf("sqlite: encode session: %w", err)
		}
		if _, err := tx.exec("UPDATE login_session SET clients = ? WHERE id = ?", string(clients), id); err != nil {
			return fmt.Errorf("sqlite: add session client: %w", err)
		}
		return nil
	})
}

// DeleteSession removes a session and returns it as it was.
func (s *Store) DeleteSession(ctx context.Context, id string) (store.Session, error) {
	var sess store.Session
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		sess, err = scanSession(tx.queryRow("DELETE FROM login_session WHERE id = ? RETURNING "+sessionColumns, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound("session")
		case err != nil:
			return fmt.Errorf("sqlite: delete session: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.Session{}, err
	}
	return sess, nil
}

const upstreamColumns = "id, idp, nonce, code_verifier, return_to, created_at, expires_at, consumed_at"

// CreateUpstreamLogin stores the state of a login started upstream.
func (s *Store) CreateUpstreamLogin(ctx context.Context, u store.UpstreamLogin) error {
	if u.ID == "" {
		return errors.New("sqlite: upstream login without ID")
	}
	return s.write(ctx, func(tx *wtx) error {
		return insertOnce(tx, "upstream login", `INSERT INTO upstream_login (`+upstreamColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`,
			u.ID, u.IdP, u.Nonce, u.CodeVerifier, nonNil(u.Return), micros(u.CreatedAt), micros(u.ExpiresAt))
	})
}

// ConsumeUpstreamLogin spends the state of an upstream login.
func (s *Store) ConsumeUpstreamLogin(ctx context.Context, now time.Time, id string) (store.UpstreamLogin, error) {
	var u store.UpstreamLogin
	err := s.write(ctx, func(tx *wtx) error {
		var created, expires, consumed int64
		err := tx.queryRow("SELECT "+upstreamColumns+" FROM upstream_login WHERE id = ?", id).
			Scan(&u.ID, &u.IdP, &u.Nonce, &u.CodeVerifier, &u.Return, &created, &expires, &consumed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound("upstream login")
		case err != nil:
			return fmt.Errorf("sqlite: read upstream login: %w", err)
		case expires <= micros(now):
			return notFound("upstream login")
		case consumed != 0:
			return fmt.Errorf("sqlite: upstream login: %w", store.ErrReplay)
		}
		if _, err := tx.exec("UPDATE upstream_login SET consumed_at = ? WHERE id = ?", micros(now), id); err != nil {
			return fmt.Errorf("sqlite: consume upstream login: %w", err)
		}
		u.CreatedAt, u.ExpiresAt, u.ConsumedAt = fromMicros(created), fromMicros(expires), fromMicros(micros(now))
		return nil
	})
	if err != nil {
		return store.UpstreamLogin{}, err
	}
	return u, nil
}

// loginTables are the tables DeleteExpiredLoginState sweeps.
var loginTables = []string{"pushed_request", "authorization_code", "login_session", "upstream_login"}

// DeleteExpiredLoginState removes expired login state, in chunks of
// deleteChunk rows per write so that the token endpoint's writes get the
// writer in between.
func (s *Store) DeleteExpiredLoginState(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for _, table := range loginTables {
		query := "DELETE FROM " + table + " WHERE rowid IN (SELECT rowid FROM " + table + " WHERE expires_at <= ? LIMIT ?)"
		for {
			var n int64
			err := s.write(ctx, func(tx *wtx) error {
				res, err := tx.exec(query, micros(before), deleteChunk)
				if err != nil {
					return fmt.Errorf("sqlite: delete expired %s: %w", table, err)
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < deleteChunk {
				break
			}
		}
	}
	return total, nil
}
