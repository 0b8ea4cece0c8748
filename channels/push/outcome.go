package push

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
)

var (
	// ErrCredentials: the token endpoint or FCM refused the sender's credentials (a
	// revoked key, a project the account may not send for). Nothing gets through
	// until the configuration is fixed, so sends fail for good rather than retrying.
	ErrCredentials = errors.New("FCM refused the credentials: check FCM_CREDENTIALS_FILE and FCM_PROJECT_ID")
	// ErrThirdPartyAuth: FCM could not authenticate to APNs or web push
	// (THIRD_PARTY_AUTH_ERROR): the project's APNs key or certificate is missing or
	// invalid in the Firebase console.
	ErrThirdPartyAuth = errors.New("FCM could not authenticate to APNs or web push (THIRD_PARTY_AUTH_ERROR): check the project's APNs key in the Firebase console")
)

// verdict is what to do about one device after FCM answered.
type verdict int

const (
	sent       verdict = iota // delivered
	prune                     // the token is gone for good: drop it from the directory
	retry                     // try again later (quota, unavailable, internal, network)
	thirdParty                // the project's APNs or web push credentials: configuration
	credential                // our own credentials or project: configuration
	refused                   // the message itself was refused: retrying will not help
)

// classify reads one device's error from a batch response, with the delay FCM asked
// for (Retry-After), if any. FCM's errorCode decides first; without one, the HTTP
// status of the Google API error does.
func classify(err error) (verdict, time.Duration) {
	switch {
	case err == nil:
		return sent, 0
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		return prune, 0
	case messaging.IsInvalidArgument(err):
		if invalidToken(err) {
			return prune, 0
		}
		return refused, 0
	case messaging.IsThirdPartyAuthError(err):
		return thirdParty, 0
	case messaging.IsQuotaExceeded(err), messaging.IsUnavailable(err), messaging.IsInternal(err):
		return retry, retryAfter(err)
	case errorutils.IsUnauthenticated(err), errorutils.IsPermissionDenied(err), errorutils.IsNotFound(err):
		// 401/403/404 without an FCM code: the token, the account's rights or the
		// project (an unknown project is "not found").
		return credential, 0
	}
	if resp := errorutils.HTTPResponse(err); resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return refused, 0
	}
	return retry, retryAfter(err) // network errors, timeouts, 5xx, 429 without an FCM code
}

// invalidToken tells an INVALID_ARGUMENT about the token from one about the message:
// FCM names the field message.token in a BadRequest detail, and says "registration
// token" in its message.
func invalidToken(err error) bool {
	if strings.Contains(err.Error(), "registration token") {
		return true
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil || resp.Body == nil {
		return false
	}
	var body struct {
		Error struct {
			Details []struct {
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if b, err := io.ReadAll(resp.Body); err != nil || json.Unmarshal(b, &body) != nil {
		return false
	}
	for _, d := range body.Error.Details {
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return false
}

// retryAfter is the delay of the response's Retry-After header: seconds or an HTTP date.
func retryAfter(err error) time.Duration {
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// refusedCredentials reports whether fetching an access token failed because the
// token endpoint refused the key (a 4xx answer: a revoked or unknown key, a bad
// signature), as opposed to not being reached.
func refusedCredentials(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return false
	}
	code := re.Response.StatusCode
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}
