// Package token mints and verifies user tokens: JWTs signed with HS256 whose claims
// name the account (acc), the user (sub) and an expiry (exp, required). A browser
// shows one to open the websocket and to call the center and notify APIs as that user.
//
// Verification accepts HS256 only: "alg":"none", other algorithms and key confusion
// are refused before the signature is looked at. It imports golang-jwt/jwt and the
// events package for name rules, nothing of the dispatcher or channels.
package token

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommo-notify/notify/events"
)

// MinSecretLen is the shortest secret accepted: HS256 with less than 256 bits of key
// is guessable.
const MinSecretLen = 32

// ErrInvalid is returned for every token that does not verify; the wrapped error says
// why, for logs (never for the client).
var ErrInvalid = errors.New("invalid token")

// User is who a token speaks for.
type User struct {
	Account string
	User    string
	Expires time.Time
}

type claims struct {
	Account string `json:"acc"`
	jwt.RegisteredClaims
}

// Signer mints and verifies tokens with one secret. It is safe for concurrent use.
type Signer struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewSigner returns a signer for secret, which must be at least MinSecretLen bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("token: the secret must be at least %d bytes", MinSecretLen)
	}
	s := &Signer{secret: append([]byte(nil), secret...), now: time.Now}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return s.now() }),
		jwt.WithLeeway(30*time.Second),
	)
	return s, nil
}

// Mint returns a token for account and user valid for ttl.
func (s *Signer) Mint(account, user string, ttl time.Duration) (string, error) {
	if !events.ValidName(account) || !events.ValidName(user) || user == events.AllUsers {
		return "", errors.New("token: account and user must match [A-Za-z0-9_-]{1,64}, and the user may not be _all")
	}
	if ttl <= 0 {
		return "", errors.New("token: ttl must be positive")
	}
	now := s.now()
	c := claims{Account: account, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
}

// Verify checks a token's algorithm, signature and expiry and returns its user.
func (s *Signer) Verify(tok string) (User, error) {
	var c claims
	_, err := s.parser.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return s.secret, nil })
	if err != nil {
		return User{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !events.ValidName(c.Account) || !events.ValidName(c.Subject) || c.Subject == events.AllUsers {
		return User{}, fmt.Errorf("%w: acc and sub must be valid names", ErrInvalid)
	}
	return User{Account: c.Account, User: c.Subject, Expires: c.ExpiresAt.Time}, nil
}

// SecretPath is where a daemon that was not given a secret keeps the one it made,
// under its data directory; `notify token` reads it from there.
func SecretPath(dataDir string) string {
	return filepath.Join(dataDir, "secrets", "jwt.secret")
}
