package fcmemu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Rule scripts a failure: the messages:send requests it matches (those to Token, or
// every request when Token is empty) are answered with Error instead of being
// accepted. Of the matching requests, the first After pass; then Times fail (0: every
// one from then on). Each rule counts the requests it matches on its own, and when
// several would fail a request the first added wins.
type Rule struct {
	Token      string    `json:"token,omitempty"`
	Error      ErrorCode `json:"error"`
	After      int       `json:"after,omitempty"`
	Times      int       `json:"times,omitempty"`
	RetryAfter int       `json:"retry_after,omitempty"` // seconds, sent as Retry-After; QUOTA_EXCEEDED defaults to 60
}

// Validate reports an unknown error code or a negative count.
func (r Rule) Validate() error {
	if !r.Error.Known() {
		return fmt.Errorf("fcmemu: unknown error %q (want one of UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH, QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, THIRD_PARTY_AUTH_ERROR, UNAUTHENTICATED)", r.Error)
	}
	if r.After < 0 || r.Times < 0 || r.RetryAfter < 0 {
		return errors.New("fcmemu: after, times and retry_after may not be negative")
	}
	return nil
}

// ParseRule reads a rule written as comma-separated key=value pairs, the form of
// the fcm-emulator's --fail flag: "error=UNREGISTERED,token=abc" or
// "error=QUOTA_EXCEEDED,after=10,times=1,retry_after=30". error is required.
func ParseRule(s string) (Rule, error) {
	var r Rule
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Rule{}, fmt.Errorf("fcmemu: rule %q: %q is not key=value", s, part)
		}
		var err error
		switch k {
		case "error":
			r.Error = ErrorCode(strings.ToUpper(v))
		case "token":
			r.Token = v
		case "after":
			r.After, err = strconv.Atoi(v)
		case "times":
			r.Times, err = strconv.Atoi(v)
		case "retry_after":
			r.RetryAfter, err = strconv.Atoi(v)
		default:
			return Rule{}, fmt.Errorf("fcmemu: rule %q: unknown key %q (want error, token, after, times, retry_after)", s, k)
		}
		if err != nil {
			return Rule{}, fmt.Errorf("fcmemu: rule %q: %s is not an integer", s, k)
		}
	}
	return r, r.Validate()
}

// rule is a Rule with the count of requests it matched.
type rule struct {
	Rule
	seen int
}

// match counts a request to token and reports whether the rule fails it.
func (r *rule) match(token string) bool {
	if r.Token != "" && r.Token != token {
		return false
	}
	r.seen++
	return r.seen > r.After && (r.Times == 0 || r.seen <= r.After+r.Times)
}
