package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

// Center is the notification center behind /api/v1/center; *center.Store is one
// (wired in cmd: this package imports no channel). Items are the center's item JSON,
// passed through as they are.
type Center interface {
	// List returns the limit newest items with a seq below before (0: the newest),
	// newest first, the cursor of the next page (0: none) and the unread count.
	List(ctx context.Context, account, user string, before uint64, limit int) (items []json.RawMessage, next uint64, unread int64, err error)
	Unread(ctx context.Context, account, user string) (int64, error)
	// MarkRead ignores ids that name no item of the user.
	MarkRead(ctx context.Context, account, user string, ids []string) (unread int64, err error)
	MarkAllRead(ctx context.Context, account, user string) (unread int64, err error)
	// Delete reports whether the user had an item with this id.
	Delete(ctx context.Context, account, user, id string) (bool, error)
}

// Page sizes of GET /api/v1/center.
const (
	DefaultCenterLimit = 50
	MaxCenterLimit     = 200
	// MaxReadIDs bounds the ids of one POST /api/v1/center/read.
	MaxReadIDs = 1000
)

const centerPath = "/api/v1/center"

// mountCenter mounts the center's routes. They are mounted without a Center too, and
// answer 503 after authentication.
func (s *Server) mountCenter() {
	s.mux.HandleFunc("GET "+centerPath, s.centerRoute(s.listCenter))
	s.mux.HandleFunc("GET "+centerPath+"/unread", s.centerRoute(s.centerUnread))
	s.mux.HandleFunc("POST "+centerPath+"/read", s.centerRoute(s.markRead))
	s.mux.HandleFunc("DELETE "+centerPath+"/{id}", s.centerRoute(s.deleteItem))
}

// centerHandler serves one center route for the user of a valid token.
type centerHandler func(ctx context.Context, w http.ResponseWriter, r *http.Request, u token.User) *events.Error

// centerRoute authenticates the user token (401 without a valid one: an API or admin
// key is no user), answers 503 without a Center, and bounds the center call by
// PublishTimeout. The user is the token's: no path or body names another, so a
// user reaches only their own items, and another user's item id is a 404.
func (s *Server) centerRoute(h centerHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.tokenUser(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="notify"`)
			writeError(w, &events.Error{Code: events.CodeUnauthorized, Message: "a valid user token is required: send Authorization: Bearer <user token>"})
			return
		}
		if s.cfg.Center == nil {
			writeError(w, &events.Error{Code: events.CodeUnavailable, Message: "no notification center is configured"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
		defer cancel()
		if e := h(ctx, w, r, u); e != nil {
			writeError(w, e)
		}
	}
}

// tokenUser is the user of the request's bearer token, when it carries a valid one.
func (s *Server) tokenUser(r *http.Request) (token.User, bool) {
	cred, ok := bearer(r.Header.Get("Authorization"))
	if !ok || s.cfg.Users == nil {
		return token.User{}, false
	}
	u, err := s.cfg.Users.Verify(cred)
	return u, err == nil
}

// centerPage is the body of GET /api/v1/center.
type centerPage struct {
	Items  []json.RawMessage `json:"items"`
	Unread int64             `json:"unread"`
	Next   string            `json:"next"` // the before of the next page; empty on the last
}

// listCenter serves GET /api/v1/center?limit=&before=. The cursor is opaque to
// clients; it is the seq of the page's oldest item, so pages stay put while new
// items arrive.
func (s *Server) listCenter(ctx context.Context, w http.ResponseWriter, r *http.Request, u token.User) *events.Error {
	q := r.URL.Query()
	limit := DefaultCenterLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxCenterLimit {
			return events.FieldError("limit", "must be an integer from 1 to %d", MaxCenterLimit)
		}
		limit = n
	}
	var before uint64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return events.FieldError("before", "must be the next cursor of a previous page")
		}
		before = n
	}
	items, next, unread, err := s.cfg.Center.List(ctx, u.Account, u.User, before, limit)
	if err != nil {
		return s.centerError(ctx, err, "list", u)
	}
	page := centerPage{Items: items, Unread: unread}
	if page.Items == nil {
		page.Items = []json.RawMessage{}
	}
	if next > 0 {
		page.Next = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

type unreadBody struct {
	Unread int64 `json:"unread"`
}

// centerUnread serves GET /api/v1/center/unread: a kept count, never a scan.
func (s *Server) centerUnread(ctx context.Context, w http.ResponseWriter, _ *http.Request, u token.User) *events.Error {
	n, err := s.cfg.Center.Unread(ctx, u.Account, u.User)
	if err != nil {
		return s.centerError(ctx, err, "unread", u)
	}
	writeJSON(w, http.StatusOK, unreadBody{Unread: n})
	return nil
}

// markRead serves POST /api/v1/center/read with {"ids":[...]} or {"all":true} and
// answers the new unread count. Ids of no item of the user are ignored.
func (s *Server) markRead(ctx context.Context, w http.ResponseWriter, r *http.Request, u token.User) *events.Error {
	body, e := readJSONBody(w, r)
	if e != nil {
		return e
	}
	var req struct {
		IDs *[]string `json:"ids"`
		All bool      `json:"all"`
	}
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		return &events.Error{Code: events.CodeInvalidJSON, Message: "body must be a JSON object"}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return events.FieldError(te.Field, "has the wrong type: ids is an array of strings, all a boolean")
		}
		return &events.Error{Code: events.CodeInvalidJSON, Message: "body is not valid JSON"}
	}
	var (
		n   int64
		err error
	)
	switch {
	case req.All && req.IDs != nil && len(*req.IDs) > 0:
		return events.FieldError("ids", "give ids or all, not both")
	case req.All:
		n, err = s.cfg.Center.MarkAllRead(ctx, u.Account, u.User)
	case req.IDs == nil:
		return events.FieldError("ids", `is required: {"ids":[...]} or {"all":true}`)
	default:
		ids := *req.IDs
		if len(ids) > MaxReadIDs {
			return events.FieldError("ids", "may hold at most %d ids", MaxReadIDs)
		}
		for i, id := range ids {
			if events.CheckID(id) != nil {
				return events.FieldError(fmt.Sprintf("ids[%d]", i), "must be 1 to %d printable ASCII characters without spaces", events.MaxIDHeaderLen)
			}
		}
		n, err = s.cfg.Center.MarkRead(ctx, u.Account, u.User, ids)
	}
	if err != nil {
		return s.centerError(ctx, err, "read", u)
	}
	writeJSON(w, http.StatusOK, unreadBody{Unread: n})
	return nil
}

// deleteItem serves DELETE /api/v1/center/{id}: 204, or 404 when the user has no
// such item (another user's included).
func (s *Server) deleteItem(ctx context.Context, w http.ResponseWriter, r *http.Request, u token.User) *events.Error {
	id := r.PathValue("id")
	notFound := &events.Error{Code: events.CodeNotFound, Message: "no such item in your notification center"}
	if events.CheckID(id) != nil {
		return notFound
	}
	found, err := s.cfg.Center.Delete(ctx, u.Account, u.User, id)
	if err != nil {
		return s.centerError(ctx, err, "delete", u)
	}
	if !found {
		return notFound
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// centerError is the answer to a failed center call: 503, logged here where it is
// handled.
func (s *Server) centerError(ctx context.Context, err error, op string, u token.User) *events.Error {
	s.log.WarnContext(ctx, "notification center failed", "op", op, "account", u.Account, "user", u.User, "error", err)
	return &events.Error{Code: events.CodeUnavailable, Message: "the notification center is unavailable"}
}
