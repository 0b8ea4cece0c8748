package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
)

// IdempotencyHeader is the optional request header that makes a publish idempotent.
const IdempotencyHeader = "Idempotency-Key"

// accepted is the body of a 202.
type accepted struct {
	ID       string   `json:"id"`
	Warnings []string `json:"warnings"`
}

// notify serves POST /api/v1/notify/{account}/{user}/{type}. Every refusal is counted
// in notify_events_rejected_total under the path's type (or "unknown") and its code.
func (s *Server) notify(w http.ResponseWriter, r *http.Request) {
	typ, known := events.ParseType(r.PathValue("type"))
	label := dispatcher.TypeUnknown
	if known {
		label = string(typ)
	}
	res, rej := s.accept(w, r)
	if rej != nil {
		s.cfg.Metrics.Rejected(label, rej.Code)
		writeError(w, rej)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

// accept runs the checks in a fixed order, cheapest and least revealing first:
//
//  1. credential: no bearer credential, or one that is neither an API key nor a valid
//     user token, is 401; an admin key is 403;
//  2. path: a malformed account or user is 400 (field "account" or "user");
//  3. the key's account: a key scoped to another account is 403;
//  4. type: not one of the five is 404 unknown_type;
//  5. Idempotency-Key: malformed is 400 (field "Idempotency-Key");
//  6. Content-Type: not JSON is 415;
//  7. size: over events.MaxBodySize is 413 (the body is read no further);
//  8. body: not a JSON object is 400 invalid_json, a bad field 400 invalid_field;
//  9. readiness: NATS down or streams missing is 503 (no token spent);
//  10. rate: the account's bucket is empty is 429 with Retry-After;
//  11. publish: failing is 503 (and the token is given back).
//
// Nothing about the path is disclosed to a caller without a valid key, and only
// events that would be accepted consume the account's rate.
func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*accepted, *events.Error) {
	account, user := r.PathValue("account"), r.PathValue("user")

	key, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="notify"`)
		return nil, &events.Error{Code: events.CodeUnauthorized, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	allowed, e := s.authorize(key, account, user)
	if e != nil {
		if e.Code == events.CodeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="notify", error="invalid_token"`)
		}
		return nil, e
	}

	addr := events.Address{Account: account, User: user, Type: events.Type(r.PathValue("type"))}
	if !events.ValidName(account) {
		return nil, events.FieldError("account", "must match [A-Za-z0-9_-]{1,64}")
	}
	if !events.ValidName(user) {
		return nil, events.FieldError("user", "must match [A-Za-z0-9_-]{1,64}")
	}
	if !allowed {
		return nil, &events.Error{Code: events.CodeForbidden, Message: "this credential may not publish for " + account + "/" + user}
	}
	if err := addr.Validate(); err != nil { // only the type is left to fail: unknown_type
		return nil, events.AsError(err)
	}

	var id string // empty: NewEvent makes a fresh one
	if idemKey := r.Header.Get(IdempotencyHeader); idemKey != "" {
		if events.CheckID(idemKey) != nil {
			return nil, events.FieldError(IdempotencyHeader, "must be 1 to %d printable ASCII characters without spaces", events.MaxIDHeaderLen)
		}
		id = IdempotentID(account, idemKey)
	}

	if e := checkMediaType(r.Header.Get("Content-Type")); e != nil {
		return nil, e
	}
	body, e := readBody(w, r)
	if e != nil {
		return nil, e
	}
	now := s.cfg.Now()
	ev, warnings, err := events.NewEvent(addr, id, body, now)
	if err != nil {
		return nil, events.AsError(err)
	}

	if err := s.cfg.Ready(); err != nil {
		return nil, &events.Error{Code: events.CodeUnavailable, Message: "not ready: " + err.Error()}
	}
	token, wait := s.limiter.reserve(account, now)
	if token == nil {
		w.Header().Set("Retry-After", retryAfter(wait))
		return nil, &events.Error{Code: events.CodeRateLimited,
			Message: fmt.Sprintf("over the account's rate of %g events/s", s.cfg.RateLimit)}
	}

	if err := s.publish(r.Context(), ev); err != nil {
		token.CancelAt(now)
		return nil, &events.Error{Code: events.CodeUnavailable, Message: "could not publish the event: NATS is unavailable"}
	}
	if s.cfg.Status != nil {
		// The event is safe already; without this record its status says "unknown"
		// until the first channel has handled it.
		if err := s.cfg.Status.Accepted(ev); err != nil {
			s.log.Warn("record accepted event", "event_id", ev.ID, "error", err)
		}
	}
	return &accepted{ID: ev.ID, Warnings: warnings}, nil
}

// authorize identifies the credential: an API key (for any account or its own), or a
// user token (for its own account and user only). allowed says whether it may publish
// to account/user; an error is a credential that is no credential at all.
func (s *Server) authorize(cred, account, user string) (allowed bool, _ *events.Error) {
	if known, ok := s.cfg.APIKeys.Authorize(cred, account); known {
		return ok, nil
	}
	if admin, _ := s.cfg.AdminKeys.Authorize(cred, account); admin {
		return false, &events.Error{Code: events.CodeForbidden, Message: "an admin key cannot publish: use an API key"}
	}
	if s.cfg.Users != nil {
		if u, err := s.cfg.Users.Verify(cred); err == nil {
			return u.Account == account && u.User == user, nil
		}
	}
	return false, &events.Error{Code: events.CodeUnauthorized, Message: "unknown API key or invalid user token"}
}

func (s *Server) publish(ctx context.Context, ev *events.Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.cfg.Publisher.PublishEvent(ctx, ev); err != nil {
		s.log.Warn("publish failed", "event_id", ev.ID, "account", ev.Account, "type", string(ev.Type), "error", err)
		return err
	}
	return nil
}

// IdempotentID is the event id of a publish with an Idempotency-Key: the first 128
// bits of SHA-256 over the account and the key, in the ULID text form (26 characters
// of Crockford base32). The same key from the same account always gives the same id,
// so JetStream's Nats-Msg-Id window deduplicates a retried request; the same key from
// two accounts gives two ids, so accounts never deduplicate each other's events.
// Unlike a generated id, its time part carries no time.
func IdempotentID(account, key string) string {
	// Account names cannot contain NUL, so the input is unambiguous.
	sum := sha256.Sum256([]byte("notify/idempotency-key/v1\x00" + account + "\x00" + key))
	return ulid.ULID(sum[:16]).String()
}

// checkMediaType accepts application/json and application/*+json, with or without
// parameters; a charset, when given, must be UTF-8. A request without Content-Type is
// taken as JSON: it claims nothing else, and the body is still validated as JSON.
// (curl -d sends application/x-www-form-urlencoded, which is refused with a hint.)
func checkMediaType(header string) *events.Error {
	if header == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(header)
	if err != nil {
		return &events.Error{Code: events.CodeUnsupportedMediaType, Message: "Content-Type is malformed; send application/json"}
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return &events.Error{Code: events.CodeUnsupportedMediaType, Message: "Content-Type " + mt + " is not JSON; send application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return &events.Error{Code: events.CodeUnsupportedMediaType, Message: "charset must be utf-8"}
	}
	return nil
}

// readBody reads at most events.MaxBodySize bytes; a larger body is refused without
// reading the rest.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *events.Error) {
	tooLarge := &events.Error{Code: events.CodeTooLarge, Message: fmt.Sprintf("body is larger than %d bytes", events.MaxBodySize)}
	if r.ContentLength > events.MaxBodySize {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, events.MaxBodySize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, &events.Error{Code: events.CodeInvalidJSON, Message: "could not read the body"}
	}
	return body, nil
}

// retryAfter renders a wait as Retry-After's whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}
