package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Mint("acme", "42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if u.Account != "acme" || u.User != "42" || time.Until(u.Expires) < 59*time.Minute {
		t.Errorf("user %+v", u)
	}
}

// sign builds a token by hand, so tests can forge what a library would refuse to make.
func sign(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if key == nil {
		return unsigned + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestVerifyRefuses(t *testing.T) {
	s, _ := NewSigner(secret)
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Hour).Unix()
	payload := func(exp int64) string {
		return `{"acc":"acme","sub":"42","exp":` + itoa(exp) + `}`
	}
	good := sign(`{"alg":"HS256","typ":"JWT"}`, payload(future), secret)
	if _, err := s.Verify(good); err != nil {
		t.Fatalf("hand-made good token refused: %v", err)
	}
	cases := map[string]string{
		"empty":            "",
		"garbage":          "not.a.token",
		"alg none":         sign(`{"alg":"none","typ":"JWT"}`, payload(future), nil),
		"alg None":         sign(`{"alg":"None","typ":"JWT"}`, payload(future), nil),
		"HS512":            signAlg("HS512", payload(future)),
		"forged signature": sign(`{"alg":"HS256","typ":"JWT"}`, payload(future), []byte("another-secret-another-secret-xx")),
		"expired":          sign(`{"alg":"HS256","typ":"JWT"}`, payload(past), secret),
		"no exp":           sign(`{"alg":"HS256","typ":"JWT"}`, `{"acc":"acme","sub":"42"}`, secret),
		"no acc":           sign(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"42","exp":`+itoa(future)+`}`, secret),
		"bad sub":          sign(`{"alg":"HS256","typ":"JWT"}`, `{"acc":"acme","sub":"4.2","exp":`+itoa(future)+`}`, secret),
		"sub _all":         sign(`{"alg":"HS256","typ":"JWT"}`, `{"acc":"acme","sub":"_all","exp":`+itoa(future)+`}`, secret),
		"tampered payload": strings.Replace(good, strings.Split(good, ".")[1], base64.RawURLEncoding.EncodeToString([]byte(`{"acc":"other","sub":"42","exp":`+itoa(future)+`}`)), 1),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if u, err := s.Verify(tok); !errors.Is(err, ErrInvalid) {
				t.Errorf("accepted as %+v (err %v)", u, err)
			}
		})
	}
}

func signAlg(alg, payload string) string {
	// HS512 signed with the right secret is still refused: only HS256 is valid.
	return sign(`{"alg":"`+alg+`","typ":"JWT"}`, payload, secret)
}

func TestNewSignerRefusesShortSecrets(t *testing.T) {
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}

func TestMintRefusesBadNames(t *testing.T) {
	s, _ := NewSigner(secret)
	for _, u := range []string{"", "_all", "a.b", strings.Repeat("x", 65)} {
		if _, err := s.Mint("acme", u, time.Hour); err == nil {
			t.Errorf("minted a token for user %q", u)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
