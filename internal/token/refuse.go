package token

import (
	"errors"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/requestid"
)

// refuse answers a refused request at any endpoint: the refusal on record
// first, then the OAuth error, logged under the request ID and counted
// (grant is the metric label, empty but at the token endpoint). A refusal
// is logged at info with its code; anything else is a server_error whose
// cause is logged at error and never sent.
func (b *base) refuse(w http.ResponseWriter, r *http.Request, d *decision, err error, grant string, start time.Time) {
	err = b.recordRefusal(r, d, err)
	oe := oauth.WriteError(w, err)
	b.cfg.Metrics.Request(b.name, grant, oe.Code, time.Since(start))
	attrs := []any{"request_id", requestid.From(r.Context()), "endpoint", b.name, "error", oe.Code}
	if oe.Code == oauth.CodeServerError {
		b.cfg.Log.Error(b.name+" request failed", append(attrs, "cause", err.Error())...)
		return
	}
	attrs = append(attrs, "description", oe.Description)
	if cause := errors.Unwrap(oe); cause != nil {
		attrs = append(attrs, "cause", cause.Error())
	}
	b.cfg.Log.Info(b.name+" request refused", attrs...)
}
