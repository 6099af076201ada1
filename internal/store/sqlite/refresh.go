package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

const refreshColumns = "id, family_id, client_id, jkt, grant_doc, issued_at, expires_at, status, used_at"

func scanRefresh(row scanner) (store.RefreshToken, error) {
	var t store.RefreshToken
	var issued, expires, used int64
	var status string
	if err := row.Scan(&t.ID, &t.FamilyID, &t.ClientID, &t.JKT, &t.Grant, &issued, &expires, &status, &used); err != nil {
		return t, err
	}
	t.IssuedAt, t.ExpiresAt, t.Status = fromMicros(issued), fromMicros(expires), store.RefreshStatus(status)
	if used != 0 {
		t.UsedAt = fromMicros(used)
	}
	return t, nil
}

func insertRefresh(tx *wtx, t store.RefreshToken) error {
	if t.ID == "" || t.FamilyID == "" {
		return errors.New("sqlite: refresh token without ID or family")
	}
	grant := t.Grant
	if grant == nil {
		grant = []byte{}
	}
	res, err := tx.exec(`INSERT INTO refresh_token (`+refreshColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`,
		t.ID, t.FamilyID, t.ClientID, t.JKT, grant, micros(t.IssuedAt), micros(t.ExpiresAt), string(store.RefreshActive))
	if err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: refresh token: %w", store.ErrAlreadyExists)
	}
	return nil
}

// CreateRefreshToken stores an active refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return s.write(ctx, func(tx *wtx) error { return insertRefresh(tx, t) })
}

// RefreshToken reads a refresh token by ID.
func (s *Store) RefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	t, err := scanRefresh(s.readDB.QueryRowContext(ctx, "SELECT "+refreshColumns+" FROM refresh_token WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("sqlite: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("sqlite: read refresh token: %w", err)
	}
	return t, nil
}

// RotateRefreshToken spends oldID and creates next; see store.Store. The
// read and the writes run in one write op, under SQLite's write lock, so
// concurrent rotations of one token are decided one after the other.
func (s *Store) RotateRefreshToken(ctx context.Context, now time.Time, oldID string, next store.RefreshToken) error {
	reused := false
	err := s.write(ctx, func(tx *wtx) error {
		old, err := readRefresh(tx, oldID)
		if err != nil {
			return err
		}
		if next.FamilyID != old.FamilyID {
			return fmt.Errorf("sqlite: rotate refresh token: next token is of family %q, not %q", next.FamilyID, old.FamilyID)
		}
		switch {
		case old.Status == store.RefreshRotated:
			successor, ok, err := canRetry(tx, now, old)
			if err != nil {
				return err
			}
			if ok {
				return retryRotation(tx, now, oldID, successor, next)
			}
			reused = true
			return revokeFamily(tx, old.FamilyID)
		case old.Status == store.RefreshRevoked, !old.ExpiresAt.After(now):
			return fmt.Errorf("sqlite: refresh token: %w", store.ErrRevoked)
		}
		return rotate(tx, now, oldID, next)
	})
	if err != nil {
		return err
	}
	if reused {
		return fmt.Errorf("sqlite: %w", store.ErrRefreshReused)
	}
	return nil
}

// readRefresh reads a refresh token inside a write op.
func readRefresh(tx *wtx, id string) (store.RefreshToken, error) {
	t, err := scanRefresh(tx.queryRow("SELECT "+refreshColumns+" FROM refresh_token WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("sqlite: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("sqlite: read refresh token: %w", err)
	}
	return t, nil
}

// revokeFamily revokes every token of a family inside a write op.
func revokeFamily(tx *wtx, familyID string) error {
	if _, err := tx.exec("UPDATE refresh_token SET status = ? WHERE family_id = ?", string(store.RefreshRevoked), familyID); err != nil {
		return fmt.Errorf("sqlite: revoke refresh family: %w", err)
	}
	return nil
}

// rotate marks an active token spent and stores its successor.
func rotate(tx *wtx, now time.Time, oldID string, next store.RefreshToken) error {
	if _, err := tx.exec("UPDATE refresh_token SET status = ?, used_at = ?, successor = ? WHERE id = ?",
		string(store.RefreshRotated), micros(now), next.ID, oldID); err != nil {
		return fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	return insertRefresh(tx, next)
}

// canRetry reports whether the rotated token old may be rotated once more
// (store.RefreshRetryGrace), and returns the successor its rotation made.
// It writes nothing.
func canRetry(tx *wtx, now time.Time, old store.RefreshToken) (string, bool, error) {
	if old.JKT == "" || !now.Before(old.UsedAt.Add(store.RefreshRetryGrace)) || !old.ExpiresAt.After(now) {
		return "", false, nil
	}
	var (
		successor, status, jkt string
		retried                bool
	)
	err := tx.queryRow(`SELECT o.successor, o.retried, s.status, s.jkt FROM refresh_token o
		JOIN refresh_token s ON s.id = o.successor WHERE o.id = ?`, old.ID).Scan(&successor, &retried, &status, &jkt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqlite: read refresh token successor: %w", err)
	}
	return successor, !retried && status == string(store.RefreshActive) && jkt == old.JKT, nil
}

// retryRotation rotates oldID a second time: the successor of its first
// rotation, never used, is retired (rotated: presented later, it is
// reuse), and next takes its place.
func retryRotation(tx *wtx, now time.Time, oldID, successor string, next store.RefreshToken) error {
	if _, err := tx.exec("UPDATE refresh_token SET status = ?, used_at = ? WHERE id = ?",
		string(store.RefreshRotated), micros(now), successor); err != nil {
		return fmt.Errorf("sqlite: retry refresh rotation: %w", err)
	}
	if _, err := tx.exec("UPDATE refresh_token SET successor = ?, retried = 1 WHERE id = ?", next.ID, oldID); err != nil {
		return fmt.Errorf("sqlite: retry refresh rotation: %w", err)
	}
	return insertRefresh(tx, next)
}

// RevokeRefreshFamily revokes every token of a family.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("UPDATE refresh_token SET status = ? WHERE family_id = ? AND status != ?",
			string(store.RefreshRevoked), familyID, string(store.RefreshRevoked))
		if err != nil {
			return fmt.Errorf("sqlite: revoke refresh family: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// DeleteExpiredRefreshTokens removes tokens whose family has expired.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM refresh_token WHERE expires_at <= ?", micros(before))
		if err != nil {
			return fmt.Errorf("sqlite: delete expired refresh tokens: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
