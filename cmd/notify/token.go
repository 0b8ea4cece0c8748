package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/kommo-notify/notify/events/token"
)

const tokenUsage = `Usage: notify token --account A --user U [--ttl 1h] [--data-dir ./data]

Mints a user token (a JWT signed with HS256) for one user of one account and prints
it alone on standard output. A browser shows it to open the websocket
(/ws?token=...) and to call the API as that user; the demo page takes it as
/?token=....

The secret is NOTIFY_JWT_SECRET, or the one the dispatcher generated under its data
directory (NOTIFY_DATA_DIR, default ./data) when it was started without one.

Example:
  notify token --account acme --user 42 --ttl 8h
`

func (a *app) token(_ context.Context, args []string) error {
	fs := newFlagSet("token")
	account := fs.String("account", "", "account the token is for (required)")
	user := fs.String("user", "", "user the token is for (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	dataDir := fs.String("data-dir", cmp.Or(a.getenv("NOTIFY_DATA_DIR"), "./data"), "the dispatcher's data directory, where a generated secret is kept (NOTIFY_DATA_DIR)")
	positional, err := a.parseFlags(fs, tokenUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(positional) > 0:
		return usagef("unexpected argument %q", positional[0])
	case *account == "" || *user == "":
		return usagef("--account and --user are required")
	case *ttl <= 0:
		return usagef("--ttl must be positive")
	}
	secret, err := a.jwtSecret(*dataDir)
	if err != nil {
		return err
	}
	signer, err := token.NewSigner(secret)
	if err != nil {
		return err
	}
	tok, err := signer.Mint(*account, *user, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, tok)
	return err
}

// jwtSecret is NOTIFY_JWT_SECRET or the secret the dispatcher keeps under dataDir.
func (a *app) jwtSecret(dataDir string) ([]byte, error) {
	if s := a.getenv("NOTIFY_JWT_SECRET"); s != "" {
		return []byte(s), nil
	}
	path := token.SecretPath(dataDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no NOTIFY_JWT_SECRET and no secret at %s: start the dispatcher once, or pass --data-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the token secret: %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}
