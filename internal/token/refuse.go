package token

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// refuse answers a refused request at any endpoint: the refusal on record
// first (its own record, or a count in the aggregate: ownRecord), then the
// OAuth error, logged under the request ID and counted (grant is the
// metric label, empty but at the token endpoint). A refusal with a record
// of its own is logged at info with its code, the others (and the
// use_dpop_nonce round trip, as what it is) at debug: a
// caller without a key must not be able to fill the log any more than the
// audit log, and the metrics and the aggregate count them. Anything else
// is a server_error whose cause is logged at error and never sent.
func (b *base) refuse(w http.ResponseWriter, r *http.Request, d *decision, err error, grant string, start time.Time) {
	err = unavailable(r.Context(), err)
	own := ownRecord(d, err)
	if own {
		err = b.recordRefusal(r, d, err)
	}
	oe := oauth.WriteError(w, err)
	if !own {
		b.cfg.Refusals.Add(b.name, oe.Code, oe.HTTPStatus(), b.sourceAddress(r))
		b.cfg.Metrics.Aggregated(b.name, oe.Code)
	}
	b.cfg.Metrics.Request(b.name, grant, oe.Code, time.Since(start))
	attrs := []any{"request_id", requestid.From(r.Context()), "endpoint", b.name, "error", oe.Code}
	switch {
	case oe.Code == oauth.CodeServerError:
		b.cfg.Log.Error(b.name+" request failed", append(attrs, "cause", err.Error())...)
		return
	case isStall(oe):
		b.cfg.Log.Warn(b.name+" request unanswered: the store did not answer in time", append(attrs, "cause", err.Error())...)
		return
	}
	attrs = append(attrs, "description", oe.Description)
	if cause := errors.Unwrap(oe); cause != nil {
		attrs = append(attrs, "cause", cause.Error())
	}
	level := slog.LevelInfo
	if !own {
		level = slog.LevelDebug
	}
	if oe.Code == oauth.CodeUseDPoPNonce {
		// The first round trip of every DPoP client (RFC 9449 §8): normal
		// behaviour, not a refusal.
		b.cfg.Log.Debug(b.name+" request answered with a DPoP nonce", attrs...)
		return
	}
	b.cfg.Log.Log(r.Context(), level, b.name+" request refused", attrs...)
}

// ownRecord reports whether a refusal gets an audit record of its own:
// once the client assertion has verified against a registered key, so
// that only a holder of a client's key can make the server write a record
// per request; and then not for the use_dpop_nonce round trip, which is
// the protocol's first step rather than a decision, nor for a 429, which a
// client flooding the server would otherwise turn into writes. The others
// are counted (audit.Refusals) and summed up in one aggregate record at
// most once a minute, which bounds what a caller without a key can make
// the server write, whatever addresses it sends from.
func ownRecord(d *decision, err error) bool {
	if !d.authenticated {
		return false
	}
	oe := oauth.As(err)
	return oe == nil || (oe.Code != oauth.CodeUseDPoPNonce && oe.HTTPStatus() != http.StatusTooManyRequests)
}

// unavailableRetryAfter is the Retry-After, in seconds, of a request the
// store did not answer in time: a short stall is over by then, and during
// a long one readiness takes the instance out of its load balancer.
const unavailableRetryAfter = 2

// errStall marks the temporarily_unavailable of a store that did not
// answer in time, as opposed to a rate limit's.
var errStall = errors.New("token: the store did not answer by the request's deadline")

// unavailable maps an error of a store that did not answer by the
// request's deadline (the server gives every request one) to 503
// temporarily_unavailable with Retry-After, so that a client neither
// waits for a database that hangs nor takes a stall for a fault of its
// request. Refusals already decided (OAuth errors) stay as they are.
func unavailable(ctx context.Context, err error) error {
	if oauth.As(err) != nil {
		return err
	}
	if !outOfTime(ctx, err) {
		return err
	}
	return stalled(err)
}

// outOfTime reports whether err is that of a store that did not answer
// before ctx's deadline. The deadline is also read from the clock: a
// store's own timer may report it a moment before ctx's does.
func outOfTime(ctx context.Context, err error) bool {
	if errors.Is(err, store.ErrOutcomeUnknown) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func stalled(cause error) *oauth.Error {
	oe := oauth.New(oauth.CodeTemporarilyUnavailable, "the service could not complete the request in time: try again shortly")
	oe.RetryAfter = unavailableRetryAfter
	return oe.Wrap(errors.Join(errStall, cause))
}

func isStall(oe *oauth.Error) bool { return errors.Is(oe, errStall) }
