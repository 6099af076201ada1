package csrf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func key(t *testing.T, b byte) *Key {
	t.Helper()
	k, err := New(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCheck(t *testing.T) {
	k := key(t, 1)
	good := k.Token("tx-1", "testidp")
	if len(good) != tokenLen {
		t.Fatalf("token length %d, want %d", len(good), tokenLen)
	}
	flip := []byte(good)
	flip[0] ^= 1
	tests := []struct {
		name    string
		key     *Key
		binding string
		form    string
		token   string
		wantErr error
	}{
		{"valid", k, "tx-1", "testidp", good, nil},
		{"missing token", k, "tx-1", "testidp", "", ErrMissing},
		{"other transaction", k, "tx-2", "testidp", good, ErrInvalid},
		{"other form of the same transaction", k, "tx-1", "logout", good, ErrInvalid},
		{"other server key", key(t, 2), "tx-1", "testidp", good, ErrInvalid},
		{"one bit changed", k, "tx-1", "testidp", string(flip), ErrInvalid},
		{"truncated", k, "tx-1", "testidp", good[:42], ErrInvalid},
		{"padded", k, "tx-1", "testidp", good + "=", ErrInvalid},
		{"not base64url", k, "tx-1", "testidp", strings.Repeat("*", tokenLen), ErrInvalid},
		{"oversized", k, "tx-1", "testidp", strings.Repeat("A", 10000), ErrInvalid},
		{"empty binding", k, "", "testidp", k.Token("", "testidp"), ErrInvalid},
		// Length prefixes keep ("ab","c") and ("a","bc") apart.
		{"shifted boundary", k, "idptx-1", "test", good, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.key.Check(tt.binding, tt.form, tt.token); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewRefusesShortKey(t *testing.T) {
	if _, err := New(make([]byte, 31)); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("err = %v", err)
	}
}

// The key is copied: changing the caller's slice changes nothing.
func TestNewCopiesKey(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	k, _ := New(secret)
	tok := k.Token("tx", "f")
	secret[0] = 9
	if err := k.Check("tx", "f", tok); err != nil {
		t.Fatal(err)
	}
}
