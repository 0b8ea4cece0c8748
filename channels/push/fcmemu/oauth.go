package fcmemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The OAuth 2.0 JWT-bearer grant of a Google service account (RFC 7523).
const (
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	messagingScope = "https://www.googleapis.com/auth/firebase.messaging"
	platformScope  = "https://www.googleapis.com/auth/cloud-platform"
	// clockSkew is how far an assertion's times may be off.
	clockSkew = time.Minute
	// maxAssertionLife is Google's limit on exp - iat.
	maxAssertionLife = time.Hour
)

// tokenResponse is what Google's token endpoint answers.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// claims are the members of a service account's assertion that matter here.
type claims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// serveToken is POST /token: it mints an access token for a service account's signed
// assertion, as https://oauth2.googleapis.com/token does.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, "invalid_request", "the body is not a form")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != jwtBearerGrant {
		writeOAuthError(w, "unsupported_grant_type", "Invalid grant_type: "+g)
		return
	}
	c, problem := e.verifyAssertion(r.PostForm.Get("assertion"), r)
	if problem != "" {
		writeOAuthError(w, "invalid_grant", problem)
		return
	}
	scopes := strings.Fields(c.Scope)
	if !slices.Contains(scopes, messagingScope) && !slices.Contains(scopes, platformScope) {
		writeOAuthError(w, "invalid_scope", "The assertion does not ask for the firebase.messaging scope.")
		return
	}
	token := "ya29.emu-" + randomHex(24)
	e.authMu.Lock()
	now := e.opts.Now()
	maps.DeleteFunc(e.tokens, func(_ string, exp time.Time) bool { return !exp.IsZero() && now.After(exp) })
	e.tokens[token] = now.Add(e.opts.TokenTTL)
	e.authMu.Unlock()
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: token, ExpiresIn: int(e.opts.TokenTTL / time.Second), TokenType: "Bearer"})
}

// verifyAssertion checks an RS256 JWT: its shape, its times, that it is meant for
// this endpoint, and its signature when the account is known (Strict: it must be).
// A refusal is Google's description of it.
func (e *Emulator) verifyAssertion(assertion string, r *http.Request) (_ claims, problem string) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return claims{}, "Invalid JWT: the assertion is not a JWS compact serialization."
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var c claims
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return claims{}, "Invalid JWT: the header must name alg RS256."
	}
	if err := decodeSegment(parts[1], &c); err != nil || c.Iss == "" {
		return claims{}, "Invalid JWT: the claim set is not JSON with an iss."
	}
	now := e.opts.Now()
	exp, iat := time.Unix(c.Exp, 0), time.Unix(c.Iat, 0)
	if now.After(exp.Add(clockSkew)) || iat.After(now.Add(clockSkew)) || exp.Sub(iat) > maxAssertionLife {
		return claims{}, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	if aud, err := url.Parse(c.Aud); err != nil || aud.Host != r.Host || aud.Path != r.URL.Path {
		return claims{}, fmt.Sprintf("Invalid JWT: the audience %q is not this token endpoint.", c.Aud)
	}
	e.authMu.RLock()
	key, known := e.accounts[c.Iss]
	e.authMu.RUnlock()
	if !known {
		if e.opts.Strict {
			return claims{}, "Invalid grant: account not found"
		}
		return c, ""
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return claims{}, "Invalid JWT Signature."
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) != nil {
		return claims{}, "Invalid JWT Signature."
	}
	return c, ""
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeOAuthError(w http.ResponseWriter, code, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": description})
}

// authorized reports whether r carries a bearer token the emulator minted (and that
// has not expired) or one of the configured static tokens.
func (e *Emulator) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	e.authMu.RLock()
	exp, ok := e.tokens[token]
	e.authMu.RUnlock()
	return ok && (exp.IsZero() || e.opts.Now().Before(exp))
}

// ServiceAccount is a Google service-account key: what FCM_CREDENTIALS_FILE holds.
// Pointing TokenURI at an emulator's /token makes golang.org/x/oauth2/google mint
// its access tokens there, so the real credentials path runs against the emulator.
type ServiceAccount struct {
	ProjectID string
	Email     string
	TokenURI  string
	Key       *rsa.PrivateKey
}

// NewServiceAccount makes a service account of project with a fresh 2048-bit key
// whose tokens are minted at tokenURI (an emulator's base URL + "/token").
func NewServiceAccount(project, tokenURI string) (ServiceAccount, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return ServiceAccount{}, fmt.Errorf("fcmemu: generate a key: %w", err)
	}
	return ServiceAccount{
		ProjectID: project,
		Email:     "notify@" + project + ".iam.gserviceaccount.com",
		TokenURI:  tokenURI,
		Key:       key,
	}, nil
}

// JSON is the account's key file, in the form Google's console downloads.
func (a ServiceAccount) JSON() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.Key)
	if err != nil {
		return nil, fmt.Errorf("fcmemu: encode the key: %w", err)
	}
	return json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  a.ProjectID,
		"private_key_id":              randomHex(20),
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                a.Email,
		"client_id":                   "100000000000000000000",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   a.TokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
	}, "", "  ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
