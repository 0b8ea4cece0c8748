package directory

import (
	"fmt"
	"math"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kommo-notify/notify/events"
)

// Profile is one recipient: where email and push reach them and which of the two
// they want. The interface channel (pop-ups and the notification center) has no
// switch, as in Kommo: a user always sees their notifications in the CRM.
type Profile struct {
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Locale   string   `json:"locale"`
	Channels Channels `json:"channels"`
	// Devices are the user's push tokens, oldest first. Nil only in a Profile given
	// to Store.Put, where it means "keep the devices already registered".
	Devices []Device `json:"devices"`
}

// Channels are the user's switches for the media that reach them outside the CRM.
type Channels struct {
	Email bool `json:"email"`
	Push  bool `json:"push"`
}

// Device is one push registration.
type Device struct {
	Token    string    `json:"token"`
	Platform string    `json:"platform"`
	AddedAt  time.Time `json:"added_at"`
}

// Platforms of a device.
const (
	Android = "android"
	IOS     = "ios"
	Web     = "web"
)

// Limits of a profile. MaxEmailLen is RFC 5321's path limit; tokens are bounded far
// above FCM's (about 160 characters) and APNs' (64 hex digits) so a provider that
// lengthens them does not break registration, yet a profile stays small.
const (
	MaxEmailLen  = 254
	MaxNameLen   = 256 // characters
	MaxLocaleLen = 35
	MaxTokenLen  = 4096
)

// DefaultChannels is what a new profile wants when it does not say: everything on.
var DefaultChannels = Channels{Email: true, Push: true}

// localeRe is a BCP 47 tag in its common form: a 2-3 letter language, then subtags
// such as a script, region or variant (en, pt-BR, zh-Hant-TW, es-419). It is a sanity
// check, not a registry lookup: the locale picks message templates, and a template
// set falls back to its default for a tag it does not know.
var localeRe = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// clone returns p with its own copy of the devices, so a caller cannot change a
// profile that the store or the cache holds.
func (p Profile) clone() Profile {
	p.Devices = slices.Clone(p.Devices)
	if p.Devices == nil {
		p.Devices = []Device{}
	}
	return p
}

// normalize trims and checks p, then puts its devices in their stored form:
// de-duplicated by token (the last one listed wins), oldest first, at most
// maxDevices (the oldest dropped). A device without a time was added now. The error is
// an *events.Error naming the first field at fault.
func (p *Profile) normalize(now time.Time, maxDevices int) error {
	p.Email = strings.TrimSpace(p.Email)
	p.Name = strings.TrimSpace(p.Name)
	p.Locale = strings.TrimSpace(p.Locale)
	if err := checkEmail(p.Email); err != nil {
		return err
	}
	if err := checkName(p.Name); err != nil {
		return err
	}
	if err := checkLocale(p.Locale); err != nil {
		return err
	}
	if p.Devices == nil {
		return nil
	}
	for i := range p.Devices {
		if err := p.Devices[i].normalize(fmt.Sprintf("devices[%d].", i), now); err != nil {
			return err
		}
	}
	p.Devices = arrange(p.Devices, maxDevices)
	return nil
}

// arrange de-duplicates devices by token, keeping the last of each, sorts them oldest
// first (equal times keep their order) and drops the oldest beyond limit.
func arrange(devices []Device, limit int) []Device {
	last := make(map[string]int, len(devices))
	for i, d := range devices {
		last[d.Token] = i
	}
	out := make([]Device, 0, len(last))
	for i, d := range devices {
		if last[d.Token] == i {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b Device) int { return a.AddedAt.Compare(b.AddedAt) })
	if len(out) > limit {
		out = slices.Delete(out, 0, len(out)-limit)
	}
	return out
}

// normalize checks one device. prefix names its place in the body ("" for the body
// of a device registration, "devices[2]." inside a profile).
func (d *Device) normalize(prefix string, now time.Time) error {
	d.Token = strings.TrimSpace(d.Token)
	d.Platform = strings.ToLower(strings.TrimSpace(d.Platform))
	if err := CheckToken(d.Token); err != nil {
		err.Field = prefix + err.Field
		return err
	}
	switch d.Platform {
	case Android, IOS, Web:
	case "":
		return events.FieldError(prefix+"platform", "is required: android, ios or web")
	default:
		return events.FieldError(prefix+"platform", "must be android, ios or web")
	}
	if d.AddedAt.IsZero() {
		d.AddedAt = now
	}
	d.AddedAt = d.AddedAt.UTC().Truncate(time.Second)
	return nil
}

// CheckToken checks a push token: 1 to MaxTokenLen printable ASCII characters without
// spaces. FCM tokens (letters, digits, ':', '-', '_') and APNs tokens (hex) pass, and
// so does any token that can travel in a URL path segment once escaped. The error
// names the field "token".
func CheckToken(token string) *events.Error {
	if token == "" {
		return events.FieldError("token", "is required")
	}
	if len(token) > MaxTokenLen {
		return events.FieldError("token", "must be at most %d characters", MaxTokenLen)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return events.FieldError("token", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// checkEmail accepts an empty address (the user gets no email: skipped, no_address)
// or one bare address as mail.ParseAddress reads it, without a display name: the name
// has its own field, and a "Name <addr>" form here would be two sources of truth.
func checkEmail(email string) error {
	if email == "" {
		return nil
	}
	if len(email) > MaxEmailLen {
		return events.FieldError("email", "must be at most %d characters", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil {
		return events.FieldError("email", "must be an email address such as name@example.com")
	}
	if addr.Name != "" || addr.Address != email {
		return events.FieldError("email", "must be a bare address such as name@example.com, without a name or angle brackets")
	}
	return nil
}

// checkName allows any text but control characters, which have no place in an email
// header or a greeting.
func checkName(name string) error {
	if utf8.RuneCountInString(name) > MaxNameLen {
		return events.FieldError("name", "must be at most %d characters", MaxNameLen)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return events.FieldError("name", "may not contain control characters")
	}
	return nil
}

func checkLocale(locale string) error {
	if locale == "" {
		return nil
	}
	if len(locale) > MaxLocaleLen || !localeRe.MatchString(locale) {
		return events.FieldError("locale", "must be a language tag such as en, pt-BR or zh-Hant-TW")
	}
	return nil
}

// Validate checks p as Store.Put does, without changing it: a caller (the notify CLI)
// can name a bad field before it connects anywhere. The error is an *events.Error.
func (p Profile) Validate() error {
	p.Devices = slices.Clone(p.Devices)
	return p.normalize(time.Now(), math.MaxInt)
}

// Validate checks d as Store.AddDevice does, without changing it.
func (d Device) Validate() error { return d.normalize("", time.Now()) }

// CheckAddress checks the account and user of a profile: names of
// [A-Za-z0-9_-]{1,64}, so <account>.<user> is a valid KV key, and never _all, which
// means every user rather than one. The error is an *events.Error naming "account"
// or "user".
func CheckAddress(account, user string) error {
	if !events.ValidName(account) {
		return events.FieldError("account", "must match [A-Za-z0-9_-]{1,64}")
	}
	if user == events.AllUsers {
		return events.FieldError("user", "%s means every user of the account; a profile belongs to one user", events.AllUsers)
	}
	if !events.ValidName(user) {
		return events.FieldError("user", "must match [A-Za-z0-9_-]{1,64}")
	}
	return nil
}
