package push

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// messagingScope is the OAuth scope of FCM's send API.
const messagingScope = "https://www.googleapis.com/auth/firebase.messaging"

// Credentials is a checked Google service-account key file (FCM_CREDENTIALS_FILE).
type Credentials struct {
	ProjectID   string // project_id: the default FCM project
	ClientEmail string // client_email: the account that signs token requests
	TokenURI    string // token_uri: where access tokens are minted (Google's, or an emulator's /token)
	json        []byte
}

// LoadCredentials reads and checks a service-account key file.
func LoadCredentials(path string) (*Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the service account file: %w", err)
	}
	return ParseCredentials(b)
}

// ParseCredentials checks a service-account key, so a wrong file is refused at start
// rather than at the first notification: it must be JSON of type service_account
// with a client_email and an RSA private key in PEM, and its token_uri, if any, an
// absolute http(s) URL.
func ParseCredentials(b []byte) (*Credentials, error) {
	var f struct {
		Type        string `json:"type"`
		ProjectID   string `json:"project_id"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, errors.New("not a service account key: the file is not JSON")
	}
	switch {
	case f.Type != "service_account":
		return nil, fmt.Errorf("not a service account key: type is %q, want service_account", f.Type)
	case f.ClientEmail == "":
		return nil, errors.New("the service account key has no client_email")
	case f.TokenURI != "" && !isHTTPURL(f.TokenURI):
		return nil, errors.New("the service account key's token_uri is not an absolute http(s) URL")
	}
	if err := checkPrivateKey(f.PrivateKey); err != nil {
		return nil, err
	}
	if f.TokenURI == "" {
		f.TokenURI = google.JWTTokenURL
	}
	return &Credentials{ProjectID: f.ProjectID, ClientEmail: f.ClientEmail, TokenURI: f.TokenURI, json: b}, nil
}

func checkPrivateKey(s string) error {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("the service account key's private_key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return errors.New("the service account key's private_key is neither PKCS#8 nor PKCS#1")
		}
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return errors.New("the service account key's private_key is not an RSA key")
	}
	return nil
}

// authorizedClient is the HTTP client FCM is called through: the OAuth layer over
// cfg.Transport, with cfg.Timeout per request (a send's context bounds them all).
// Access tokens are minted through the same transport, within cfg.Timeout, and reused
// until they expire. The token source is returned too, so
// Send can fetch a token before sending and tell refused credentials (a
// configuration problem) from a refused message.
func authorizedClient(cfg *Config) (*http.Client, oauth2.TokenSource, error) {
	ts := cfg.TokenSource
	if ts == nil {
		plain := &http.Client{Transport: cfg.Transport, Timeout: cfg.Timeout}
		// x/oauth2 mints tokens with the client carried by this context, for as long
		// as the token source lives: it is the sender's, not a request's.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, plain)
		creds, err := google.CredentialsFromJSONWithType(ctx, cfg.Credentials.json, google.ServiceAccount, messagingScope)
		if err != nil {
			return nil, nil, fmt.Errorf("load the service account: %w", err)
		}
		ts = creds.TokenSource
	}
	ts = oauth2.ReuseTokenSource(nil, ts)
	client := &http.Client{
		Transport: &oauth2.Transport{Source: ts, Base: cfg.Transport},
		Timeout:   cfg.Timeout,
	}
	return client, ts, nil
}
