package events

import (
	"errors"
	"fmt"
	"net/url"
	"unicode"
	"unicode/utf8"
)

// MaxLinkLen bounds an icon, a link and an href inside text, in characters. It is the
// practical limit of browsers and mail clients, and it keeps the canonical JSON of the
// largest valid payload under MaxBodySize even when encoding/json escapes every
// character of it, so a payload that was accepted once is always accepted again.
const MaxLinkLen = 2048

// The rules a link breaks, phrased to follow a field name in an error message.
var (
	errLinkTooLong     = fmt.Errorf("must be at most %d characters", MaxLinkLen)
	errLinkChars       = errors.New("must not contain whitespace, control or invisible characters, or backslashes")
	errLinkCredentials = errors.New("must not contain a user name or password")
	errNotURL          = errors.New("must be an absolute http or https URL")
	errNotLink         = errors.New("must be an absolute http or https URL or a path starting with a single /")
)

// CheckURL reports whether s is an absolute http or https URL with a host, the rule of
// icon and of an add_call link. The error's text is the rule s breaks.
func CheckURL(s string) error { return checkLink(s, false) }

// CheckLink reports whether s is an absolute http or https URL or a path on the
// configured base URL that starts with exactly one "/", the rule of a clickable link
// and of every href in text. The error's text is the rule s breaks.
func CheckLink(s string) error { return checkLink(s, true) }

// IsPath reports whether a link that passed CheckLink is a path to be resolved against
// the configured base URL rather than an absolute URL.
func IsPath(link string) bool { return len(link) > 0 && link[0] == '/' }

// checkLink accepts only what every browser and mail client resolves the same way, so
// what is checked here is what a click opens. Browsers silently drop tabs and newlines
// inside a URL and read "\" as "/", which is how "/\t/evil.com" or "/\evil.com" become
// "//evil.com", a link to another host: such characters are refused outright, never
// cleaned up. Credentials are refused because "https://kommo.com@evil.com" is a classic
// disguise for a foreign host.
func checkLink(s string, allowPath bool) error {
	if utf8.RuneCountInString(s) > MaxLinkLen {
		return errLinkTooLong
	}
	for _, r := range s {
		if r == '\\' || unicode.IsSpace(r) || !unicode.IsGraphic(r) {
			return errLinkChars
		}
	}
	if IsPath(s) {
		if !allowPath {
			return errNotURL
		}
		if len(s) > 1 && s[1] == '/' { // "//host" is another host, not a path
			return errNotLink
		}
		if _, err := url.Parse(s); err != nil {
			return errNotLink
		}
		return nil
	}
	notAllowed := errNotURL
	if allowPath {
		notAllowed = errNotLink
	}
	u, err := url.Parse(s) // lower-cases the scheme
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "" || u.Hostname() == "" {
		return notAllowed
	}
	if u.User != nil {
		return errLinkCredentials
	}
	return nil
}
