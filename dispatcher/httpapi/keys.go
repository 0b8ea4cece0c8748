package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/kommo-notify/notify/events"
)

// Keys is a set of API keys, each valid for every account or for a list of them. The
// zero value holds no key. Keys never prints a key: neither its errors nor its
// methods reveal one.
type Keys struct {
	byHash map[[sha256.Size]byte]*grant
}

// grant is what one key may do.
type grant struct {
	key      []byte
	any      bool                // valid for every account
	accounts map[string]struct{} // otherwise, valid for these
}

// ParseKeys parses the NOTIFY_API_KEYS (or NOTIFY_ADMIN_KEYS) format: comma-separated
// items, each either `key` (valid for any account) or `account:key` (valid for that
// account only). Spaces around items and around the colon are trimmed and empty items
// ignored. The first colon separates the account, so a key that itself contains a colon
// must be given with its account. A key listed for several accounts is valid for each
// of them; listed bare anywhere, it is valid for all. Errors name the item by position,
// never by content.
func ParseKeys(s string) (Keys, error) {
	k := Keys{byHash: make(map[[sha256.Size]byte]*grant)}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		account, key, scoped := strings.Cut(item, ":")
		if !scoped {
			account, key = "", account
		}
		account, key = strings.TrimSpace(account), strings.TrimSpace(key)
		if scoped && !events.ValidName(account) {
			return Keys{}, fmt.Errorf("api keys: item %d: account must match [A-Za-z0-9_-]{1,64}", i+1)
		}
		if key == "" {
			return Keys{}, fmt.Errorf("api keys: item %d: empty key", i+1)
		}
		k.add(account, key)
	}
	return k, nil
}

func (k Keys) add(account, key string) {
	h := sha256.Sum256([]byte(key))
	g := k.byHash[h]
	if g == nil {
		g = &grant{key: []byte(key), accounts: make(map[string]struct{})}
		k.byHash[h] = g
	}
	if account == "" {
		g.any = true
	} else {
		g.accounts[account] = struct{}{}
	}
}

// Len is the number of distinct keys.
func (k Keys) Len() int { return len(k.byHash) }

// Authorize reports whether key is one of k (known) and whether it is valid for
// account (allowed). The presented key is looked up by its SHA-256, so the lookup's
// timing depends on the digest rather than on how much of a real key was guessed,
// and then compared in constant time.
func (k Keys) Authorize(key, account string) (known, allowed bool) {
	g := k.byHash[sha256.Sum256([]byte(key))]
	if g == nil || subtle.ConstantTimeCompare(g.key, []byte(key)) != 1 {
		return false, false
	}
	if g.any {
		return true, true
	}
	_, ok := g.accounts[account]
	return true, ok
}

// bearer returns the credential of an `Authorization: Bearer <credential>` header. The
// scheme is case-insensitive (RFC 9110, section 11.1).
func bearer(header string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}
