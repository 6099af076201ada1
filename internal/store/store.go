package store

import (
	"context"
	"errors"
	"iter"
	"time"
)

// Sentinel errors. Backends wrap them with context; compare with errors.Is.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict reports an update based on a stale Version.
	ErrConflict = errors.New("store: version conflict")
	// ErrReplay reports a single-use value (a jti) that was already spent.
	ErrReplay = errors.New("store: already used")
	// ErrRevoked reports a refresh token that was revoked or has expired.
	ErrRevoked = errors.New("store: revoked or expired")
	// ErrRefreshReused reports a refresh token used again after it was
	// rotated: the store has revoked its whole family (RFC 9700 §4.14.2).
	ErrRefreshReused = errors.New("store: refresh token reused; family revoked")
	// ErrAuditChainBroken reports an audit chain whose head and newest
	// records disagree (changed outside the store): appending to it would
	// fork or restart it, so the store refuses until the chain is resealed
	// (ResealAuditChain).
	ErrAuditChainBroken = errors.New("store: audit chain broken")
	// ErrOutcomeUnknown reports a write that had been sent to the database
	// when the caller's context ended, before its answer came: it was
	// committed whole or not at all, and which is not known. A write whose
	// context ends before it was sent returns the context's error instead:
	// nothing was written.
	ErrOutcomeUnknown = errors.New("store: outcome unknown: the write was sent and not answered in time")
)

// Store is everything the token service persists. Every method is safe for
// concurrent use by many goroutines and, for backends that support it, by
// several processes on the same database.
//
// Operations that must be atomic are single methods (ConsumeJTIs), never a
// check followed by a set.
type Store interface {
	// Registry records of every kind, by kind and key (Record). Callers
	// use the typed Create, Update, Get, List and Delete with a Kind.
	// CreateRecord fails with ErrAlreadyExists, and refuses an empty kind
	// or key; UpdateRecord and DeleteRecord fail with ErrNotFound, and
	// UpdateRecord with ErrConflict when r.Meta.Version is not the stored
	// one. CreateRecord and UpdateRecord keep r.Meta.ManagedBy, set
	// Version, CreatedAt and UpdatedAt, and return the record as stored.
	// A write bumps RegistryVersion in its own transaction; a refused one
	// does not.
	//
	// WriteRecords makes a batch of writes in one transaction that bumps
	// RegistryVersion once: all of them or, with a *BatchError naming the
	// first that failed, none. It returns the records as stored, in the
	// batch's order (a deleted one as given). A batch holds at most
	// MaxWriteBatch writes; an empty one writes nothing.
	//
	// Every write leaves the RegistryVersion it made with the record, and
	// a deletion leaves a tombstone, so that RecordChanges can tell what
	// changed after a version.

	CreateRecord(ctx context.Context, r Record) (Record, error)
	UpdateRecord(ctx context.Context, r Record) (Record, error)
	Record(ctx context.Context, kind, key string) (Record, error)
	// Records returns every record of a kind, ordered by key in byte order.
	Records(ctx context.Context, kind string) ([]Record, error)
	DeleteRecord(ctx context.Context, kind, key string) error
	WriteRecords(ctx context.Context, batch []RecordWrite) ([]Record, error)

	// RegistryVersion is a number that increases whenever any registry
	// record is created, updated or deleted, by this process or another.
	// Servers keep an in-memory snapshot of the registry and poll this to
	// know when to update it, so the hot path reads no registry rows.
	RegistryVersion(ctx context.Context) (int64, error)
	// RecordChanges returns, from one consistent read, the current
	// RegistryVersion and every record of any kind written or deleted
	// after the version since, ordered by the version each write made. A
	// record written twice appears once, as it is now. A snapshot taken
	// at since and patched with the changes is the registry at version.
	RecordChanges(ctx context.Context, since int64) (changes []RecordChange, version int64, err error)

	// ConsumeJTIs records single-use values atomically: either every key is
	// recorded, or none is and the error is a *ReplayError naming the first
	// key that was already recorded and has not expired at now (it matches
	// ErrReplay). A recorded key whose
	// Expires is not after now counts as free and is overwritten. The token
	// endpoint calls it once per issued token with the assertion jti and the
	// DPoP proof jti, after every other check has passed.
	ConsumeJTIs(ctx context.Context, now time.Time, jtis []JTI) error
	// DeleteExpiredJTIs removes keys whose Expires is not after before and
	// reports how many it removed.
	DeleteExpiredJTIs(ctx context.Context, before time.Time) (int64, error)

	// Refresh tokens, stored by the hash of their value (ID). Create fails
	// with ErrAlreadyExists; RefreshToken with ErrNotFound.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	RefreshToken(ctx context.Context, id string) (RefreshToken, error)
	// RotateRefreshToken spends the active token oldID and creates next in
	// the same family, atomically: of many concurrent calls for one oldID
	// exactly one succeeds. A token that was already rotated means reuse:
	// the whole family is revoked and the error is ErrRefreshReused,
	// except once within RefreshRetryGrace of its rotation, for a token
	// bound to a DPoP key (JKT) whose successor is still active, never
	// used: then it is rotated again, next replacing that successor, which
	// is marked rotated (a client retrying a refresh whose answer it never
	// got; the caller checks the retry's DPoP key). A
	// revoked token, or one whose ExpiresAt is not after now, gives
	// ErrRevoked; an unknown one ErrNotFound. next.FamilyID must be the
	// family of oldID.
	RotateRefreshToken(ctx context.Context, now time.Time, oldID string, next RefreshToken) error
	// RevokeRefreshFamily revokes every token of a family and reports how
	// many were active or rotated before.
	RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error)
	// DeleteExpiredRefreshTokens removes tokens whose ExpiresAt is not
	// after before.
	DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int64, error)

	// Login state (login.go): short-lived records keyed by the SecretID of
	// a bearer secret. A record whose ExpiresAt is not after now counts as
	// gone (ErrNotFound) whether or not it has been swept yet. Creates fail
	// with ErrAlreadyExists and refuse an empty ID.
	//
	// ConsumePushedRequest spends a pushed request of clientID: of many
	// concurrent calls exactly one gets it. One already consumed gives
	// ErrReplay; an unknown or expired one, or one pushed by another
	// client, ErrNotFound, and is left as it was.
	CreatePushedRequest(ctx context.Context, r PushedRequest) error
	ConsumePushedRequest(ctx context.Context, now time.Time, id, clientID string) (PushedRequest, error)
	// AuthorizationCode reads a code without spending it, for the checks
	// that come before RedeemAuthorizationCode; a redeemed one is returned
	// with its Redemption.
	CreateAuthorizationCode(ctx context.Context, c AuthorizationCode) error
	AuthorizationCode(ctx context.Context, now time.Time, id string) (AuthorizationCode, error)
	// RedeemAuthorizationCode spends a code and records what the caller
	// issued for it, atomically: of many concurrent calls exactly one
	// succeeds and gets the code with r (At set to now). A code already
	// redeemed gives ErrReplay together with the code as stored, whose
	// Redemption says what the first redemption issued, so that the
	// caller can revoke it; that holds until the code is swept, even past
	// its expiry. An unknown or expired code gives ErrNotFound.
	RedeemAuthorizationCode(ctx context.Context, now time.Time, id string, r CodeRedemption) (AuthorizationCode, error)
	// Session reads an unexpired session. AddSessionClient adds a client
	// to its Clients, once, atomically; ErrNotFound when the session is
	// unknown or expired. DeleteSession removes a session (logout) and
	// returns it as it was, for its Clients; ErrNotFound if there is none.
	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, now time.Time, id string) (Session, error)
	AddSessionClient(ctx context.Context, now time.Time, id, clientID string) error
	DeleteSession(ctx context.Context, id string) (Session, error)
	// ConsumeUpstreamLogin spends the state of an upstream login, as
	// ConsumePushedRequest does (without a client).
	CreateUpstreamLogin(ctx context.Context, u UpstreamLogin) error
	ConsumeUpstreamLogin(ctx context.Context, now time.Time, id string) (UpstreamLogin, error)
	// DeleteExpiredLoginState removes the pushed requests, codes, sessions
	// and upstream logins whose ExpiresAt is not after before, and reports
	// how many it removed.
	DeleteExpiredLoginState(ctx context.Context, before time.Time) (int64, error)

	// Keys: signing keys and other service secrets (DPoP nonce keys), with
	// their private parts sealed by the caller. CreateKey fails with
	// ErrAlreadyExists when the ID or the (Purpose, Generation) pair is
	// taken: that is how instances racing to rotate agree on one key.
	CreateKey(ctx context.Context, k Key) error
	// Keys lists the keys of one purpose ordered by Generation.
	Keys(ctx context.Context, purpose KeyPurpose) ([]Key, error)
	DeleteKey(ctx context.Context, id string) error

	// The audit log (docs/design.md, the audit log). CommitDecision commits one
	// decision of the token endpoint in one transaction: it spends d.JTIs
	// (as ConsumeJTIs), rotates d.Rotate (as RotateRefreshToken) and
	// appends d.Audit to its instance's chain, sealed with the audit key
	// the backend was opened with, in commit order, moving the chain's
	// head in the same transaction. Either all of it is written or none: a
	// spent jti gives a *ReplayError naming the first spent key, a revoked
	// or expired refresh token ErrRevoked, an unknown one ErrNotFound. The
	// one exception is a refresh token that was already rotated: that
	// revokes its family (committed) and nothing else is written; the
	// error is ErrRefreshReused. It returns once everything is durable,
	// with the record as stored, its place in the chain filled in. A
	// backend opened without an audit key fails it.
	CommitDecision(ctx context.Context, now time.Time, d Decision) (AuditRecord, error)
	// ExpectDecision announces a decision that the caller has begun to
	// make and will commit through the returned Pending, a signature or
	// two from now (a token request once its form is read). A backend may
	// hold a commit open, briefly, for the decisions announced to it, so
	// that they share one durable commit (the SQLite backend's commit
	// delay); one that does not commits them as CommitDecision does. The
	// caller must Close the Pending.
	ExpectDecision() Pending
	// AuditRecords returns the records f selects, ordered by instance and
	// Seq.
	AuditRecords(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	// AuditChain yields one instance's records in Seq order, reading a
	// page at a time, so that a long chain is never held in memory.
	AuditChain(ctx context.Context, instance string) iter.Seq2[AuditRecord, error]
	// AuditHeads returns the head of every chain, ordered by instance.
	AuditHeads(ctx context.Context) ([]AuditHead, error)
	// AuditInstances lists every instance that has records, from the
	// records themselves, in byte order: what a verification of the whole
	// log must cover, whatever the heads say.
	AuditInstances(ctx context.Context) ([]string, error)
	// AuditTip returns an instance's head and newest record, read
	// together, so that a server can tell that its chain is whole
	// (audit.CheckTip) without reading it all.
	AuditTip(ctx context.Context, instance string) (AuditTip, error)
	// ResealAuditChain appends rec to its instance's chain after a break,
	// as the first record of a new segment: numbered after every record
	// and the head the chain has, sealed on after (the last intact
	// record; Seq 0 for none), and made the head. Nothing is removed. It
	// fails with ErrConflict when the record after.Seq is not there with
	// after.MAC. See audit.Reseal, which finds after and says why.
	ResealAuditChain(ctx context.Context, after AuditHead, rec AuditRecord) (AuditRecord, error)
	// PruneAuditChain removes the oldest records of instance's chain for
	// retention: the records from its first up to, not including, the
	// first whose Time is not before before, and never its newest. In the
	// same transaction it appends a checkpoint (audit.PruneRecord, at now)
	// that vouches for the last record removed, so that the chain still
	// verifies. It reports how many records it removed; when none, it
	// writes nothing. A broken chain gives ErrAuditChainBroken.
	PruneAuditChain(ctx context.Context, instance string, before, now time.Time) (int64, error)

	// AcquireInstanceLease takes or renews the lease of an instance name
	// for holder (lease.go), atomically: when the name has no lease, one
	// whose Expires is not after now, or one holder already has, holder
	// gets it until now+ttl (Since kept on a renewal) and the lease is
	// returned. Otherwise nothing changes and the error is a
	// *LeaseHeldError with the lease in the way (it matches
	// ErrLeaseHeld): of many concurrent callers for a free name exactly
	// one wins.
	AcquireInstanceLease(ctx context.Context, instance, holder string, now time.Time, ttl time.Duration) (InstanceLease, error)
	// ReleaseInstanceLease removes holder's lease of an instance name, so
	// that another server may take it at once; ErrNotFound when holder
	// has none (it expired and another took it, or it was released).
	ReleaseInstanceLease(ctx context.Context, instance, holder string) error

	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// ReplayError names the single-use key that was already spent, so that the
// caller can tell a replayed client assertion from a replayed DPoP proof.
type ReplayError struct {
	Key string
}

func (e *ReplayError) Error() string { return "store: already used: " + e.Key }

// Is makes a *ReplayError match ErrReplay.
func (e *ReplayError) Is(target error) bool { return target == ErrReplay }

// JTI is a single-use value. Key is namespaced by the caller (for example
// the kind of token and the client or key it belongs to) so that values from
// different issuers cannot collide.
type JTI struct {
	Key     string
	Expires time.Time
}

// KeyPurpose says what a Key is for.
type KeyPurpose string

const (
	// PurposeSigning keys sign access tokens and are published in the JWKS.
	// They also sign the ID tokens of their own algorithm.
	PurposeSigning KeyPurpose = "signing"
	// PurposeIDSigning keys sign ID tokens of an algorithm the access
	// tokens do not use, and are published in the JWKS. Each algorithm's
	// keys rotate on their own, but Generation is unique for the purpose
	// as a whole, as for every other purpose.
	PurposeIDSigning KeyPurpose = "id-signing"
	// PurposeDPoPNonce keys are HMAC keys for stateless DPoP nonces.
	PurposeDPoPNonce KeyPurpose = "dpop-nonce"
	// PurposePseudonym is the one HMAC key that makes a person's sub
	// from their pid. It is never rotated: a new key would give every
	// person a new sub.
	PurposePseudonym KeyPurpose = "pseudonym"
)

// Key is a service key. Its life is given by timestamps so that every
// instance derives the same state from the same records and a clock.
type Key struct {
	ID         string // for signing keys the RFC 7638 thumbprint (kid)
	Purpose    KeyPurpose
	Generation int64  // unique per purpose, increasing
	Algorithm  string // JOSE alg for signing keys, "HS256" for nonce and pseudonym keys
	// Public is the public JWK (JSON) of a signing key; empty otherwise.
	Public []byte
	// Sealed is the private key or secret, encrypted by the caller.
	Sealed []byte
	// CreatedAt is when the key was made and published.
	CreatedAt time.Time
	// ActiveFrom is when the key starts to sign. The active key is the one
	// with the latest ActiveFrom that is not after now.
	ActiveFrom time.Time
}
