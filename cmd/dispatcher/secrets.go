package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretsDir holds what the daemon generates for itself when it is not given it, so a
// fresh machine works without set-up and the notify CLI can read the same values.
const secretsDir = "secrets"

// Secret file names under <data dir>/secrets.
const (
	apiKeyFile   = "api.key"
	adminKeyFile = "admin.key"
)

// secretPath is where a generated key lives under the data dir.
func secretPath(dataDir, file string) string { return filepath.Join(dataDir, secretsDir, file) }

// loadOrCreateSecret returns the secret kept at path, making a random one (readable by
// the owner only) the first time. created says it was new.
func loadOrCreateSecret(path string) (secret string, created bool, err error) {
	dir := filepath.Dir(path)
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create %s: %w", dir, err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret = base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	return secret, true, nil
}
