package events

import "strings"

// SubjectPrefix is the first token of every producer subject.
const SubjectPrefix = "notify"

// AllUsers as the user of an address means every user of the account: every connected
// user for pop-ups, every user of the recipient directory for durable types.
const AllUsers = "_all"

// MaxIDLen is the longest account or user identifier.
const MaxIDLen = 64

// Address is where an event is published: an account, a user (or AllUsers) and a type.
type Address struct {
	Account string
	User    string
	Type    Type
}

// Subject returns notify.<account>.<user>.<type>. It does not validate; see Address.Validate.
func (a Address) Subject() string {
	return SubjectPrefix + "." + a.Account + "." + a.User + "." + string(a.Type)
}

// Validate checks the account and user against [A-Za-z0-9_-]{1,64} and the type
// against the five known ones.
func (a Address) Validate() error {
	if !ValidName(a.Account) {
		return FieldError("account", "must match [A-Za-z0-9_-]{1,64}")
	}
	if !ValidName(a.User) {
		return FieldError("user", "must match [A-Za-z0-9_-]{1,64}")
	}
	if _, ok := ParseType(string(a.Type)); !ok {
		return unknownTypeError()
	}
	return nil
}

// ValidName reports whether s is a valid account or user identifier: 1 to 64 of
// [A-Za-z0-9_-]. Such names are safe as NATS subject tokens and KV key parts.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseSubject splits notify.<account>.<user>.<type> into a validated Address.
func ParseSubject(subject string) (Address, error) {
	prefix, rest, ok1 := strings.Cut(subject, ".")
	account, rest, ok2 := strings.Cut(rest, ".")
	user, typ, ok3 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !ok3 || prefix != SubjectPrefix || strings.Contains(typ, ".") {
		return Address{}, &Error{Code: CodeInvalidField, Field: "subject", Message: "must be notify.<account>.<user>.<type>"}
	}
	a := Address{Account: account, User: user, Type: Type(typ)}
	return a, a.Validate()
}

// SubjectFilter returns the wildcard subject that captures every event of type t.
func SubjectFilter(t Type) string { return SubjectPrefix + ".*.*." + string(t) }
