package dpop

import "errors"

// ErrInvalidProof is matched (errors.Is) by every failure of a proof itself:
// format, signature, key, claims. It maps to invalid_dpop_proof.
var ErrInvalidProof = errors.New("dpop: invalid proof")

// ErrUseNonce is matched by a proof that lacks the server nonce or carries
// one that is stale or not ours. It maps to use_dpop_nonce, and the server
// answers with a fresh nonce (RFC 9449 §8).
var ErrUseNonce = errors.New("dpop: nonce required")

// Error is a proof rejection. Reason is written for the client and is safe to
// send as error_description: it never quotes secrets.
type Error struct {
	Reason string
	nonce  bool
}

func (e *Error) Error() string { return "dpop: " + e.Reason }

// Is makes the error match ErrInvalidProof or ErrUseNonce.
func (e *Error) Is(target error) bool {
	if e.nonce {
		return target == ErrUseNonce
	}
	return target == ErrInvalidProof
}

func invalid(reason string) error { return &Error{Reason: reason} }

func nonceErr(reason string) error { return &Error{Reason: reason, nonce: true} }
