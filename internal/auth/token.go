package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// The token text is "tlr_" + id + "_" + secret: id 16 and secret 64
// lower-case hex digits. The id is public (lists, logs, error messages);
// only the secret's SHA-256 is stored.
const (
	tokenPrefix = "tlr_"
	idLen       = 16
	secretLen   = 64
)

// Secret is a token's text as the client sends it.
type Secret struct {
	ID     string
	secret string
}

// String is the whole token text: show it once, to its owner.
func (s Secret) String() string { return tokenPrefix + s.ID + "_" + s.secret }

// Hash is the hex SHA-256 of the secret part, as stored.
func (s Secret) Hash() string {
	sum := sha256.Sum256([]byte(s.secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether s's secret hashes to hash.
func (s Secret) Matches(hash string) bool {
	return subtle.ConstantTimeCompare([]byte(s.Hash()), []byte(hash)) == 1
}

// NewSecret draws a token from rnd (crypto/rand in production).
func NewSecret(rnd io.Reader) (Secret, error) {
	var b [idLen/2 + secretLen/2]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return Secret{}, err
	}
	return Secret{ID: hex.EncodeToString(b[:idLen/2]), secret: hex.EncodeToString(b[idLen/2:])}, nil
}

// ParseSecret reads a token's text. Its error never repeats the text: it
// says which part is wrong.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return Secret{}, errs.Unauthenticated("malformed token: want tlr_<id>_<secret>, as `tailor token create` prints it")
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || !isHex(id, idLen) {
		return Secret{}, errs.Unauthenticated("malformed token: its id is not %d hex digits after tlr_", idLen)
	}
	if !isHex(secret, secretLen) {
		return Secret{}, errs.Unauthenticated("malformed token %s: its secret is not %d hex digits", tokenPrefix+id, secretLen)
	}
	return Secret{ID: id, secret: secret}, nil
}

// IDOf returns the visible id of a token text, for naming it without its
// secret ("" when s has none).
func IDOf(s string) string {
	if sec, err := ParseSecret(s); err == nil {
		return sec.ID
	}
	return ""
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
