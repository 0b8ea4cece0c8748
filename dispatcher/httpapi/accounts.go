package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events"
)

// Directory is the recipient directory the admin API edits; *directory.Store is one.
type Directory interface {
	Get(ctx context.Context, account, user string) (directory.Profile, error)
	Put(ctx context.Context, account, user string, p directory.Profile) (_ directory.Profile, created bool, _ error)
	Delete(ctx context.Context, account, user string) error
	AddDevice(ctx context.Context, account, user string, d directory.Device) (_ directory.Profile, added bool, _ error)
	RemoveDevice(ctx context.Context, account, user, token string) (removed bool, _ error)
}

var _ Directory = (*directory.Store)(nil)

// The admin routes of the recipient directory.
const (
	profilePath = "/api/v1/accounts/{account}/users/{user}"
	devicesPath = profilePath + "/devices"
)

// mountAccounts mounts the directory's admin routes. They are mounted without a
// Directory too, and answer 503 after authentication: an operator calling them learns
// that the directory is missing, not that the path is wrong.
func (s *Server) mountAccounts() {
	s.mux.HandleFunc("PUT "+profilePath, s.admin(s.putProfile))
	s.mux.HandleFunc("GET "+profilePath, s.admin(s.getProfile))
	s.mux.HandleFunc("DELETE "+profilePath, s.admin(s.deleteProfile))
	s.mux.HandleFunc("POST "+devicesPath, s.admin(s.addDevice))
	s.mux.HandleFunc("DELETE "+devicesPath+"/{token}", s.admin(s.removeDevice))
}

// adminHandler serves one admin route for an authorized request on a valid
// account/user, with the directory call bounded by ctx.
type adminHandler func(ctx context.Context, w http.ResponseWriter, r *http.Request, account, user string) *events.Error

// admin runs the checks every directory route shares, in order: credential (none or
// unknown 401; a producer API key or a user token 403), path names (400, field
// "account" or "user"; _all is no user), the admin key's account (403), and the
// directory's presence (503). The handler's call to the directory is bounded by
// PublishTimeout, like a publish.
func (s *Server) admin(h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		account, user := r.PathValue("account"), r.PathValue("user")
		if e := s.authorizeAdmin(w, r, account, user); e != nil {
			writeError(w, e)
			return
		}
		if s.cfg.Directory == nil {
			writeError(w, &events.Error{Code: events.CodeUnavailable, Message: "no recipient directory is configured"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
		defer cancel()
		if e := h(ctx, w, r, account, user); e != nil {
			writeError(w, e)
		}
	}
}

func (s *Server) authorizeAdmin(w http.ResponseWriter, r *http.Request, account, user string) *events.Error {
	cred, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="notify"`)
		return &events.Error{Code: events.CodeUnauthorized, Message: "missing admin key: send Authorization: Bearer <admin key>"}
	}
	admin, allowed := s.cfg.AdminKeys.Authorize(cred, account)
	if !admin {
		if s.isProducerCredential(cred) {
			return &events.Error{Code: events.CodeForbidden, Message: "the recipient directory takes an admin key, not an API key or a user token"}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="notify", error="invalid_token"`)
		return &events.Error{Code: events.CodeUnauthorized, Message: "unknown admin key"}
	}
	if err := directory.CheckAddress(account, user); err != nil {
		return events.AsError(err)
	}
	if !allowed {
		return &events.Error{Code: events.CodeForbidden, Message: "this admin key may not manage account " + account}
	}
	return nil
}

// isProducerCredential reports a credential that is valid, only not for admin routes.
func (s *Server) isProducerCredential(cred string) bool {
	if known, _ := s.cfg.APIKeys.Authorize(cred, ""); known {
		return true
	}
	if s.cfg.Users != nil {
		if _, err := s.cfg.Users.Verify(cred); err == nil {
			return true
		}
	}
	return false
}

// putProfile serves PUT: 201 with the stored profile when it is new, 200 when it
// replaced one. A body without "devices" keeps the registered devices.
func (s *Server) putProfile(ctx context.Context, w http.ResponseWriter, r *http.Request, account, user string) *events.Error {
	body, e := readJSONBody(w, r)
	if e != nil {
		return e
	}
	p, err := directory.ParseProfile(body)
	if err != nil {
		return events.AsError(err)
	}
	stored, created, err := s.cfg.Directory.Put(ctx, account, user, p)
	if err != nil {
		return s.directoryError(ctx, err, "put profile", account, user)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, stored)
	return nil
}

func (s *Server) getProfile(ctx context.Context, w http.ResponseWriter, _ *http.Request, account, user string) *events.Error {
	p, err := s.cfg.Directory.Get(ctx, account, user)
	if err != nil {
		return s.directoryError(ctx, err, "get profile", account, user)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// deleteProfile serves DELETE: 204, or 404 when there is no profile, as GET says: an
// admin who deletes a user that is not there has probably mistyped the id.
func (s *Server) deleteProfile(ctx context.Context, w http.ResponseWriter, _ *http.Request, account, user string) *events.Error {
	if err := s.cfg.Directory.Delete(ctx, account, user); err != nil {
		return s.directoryError(ctx, err, "delete profile", account, user)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// addDevice serves POST .../devices: 201 with the profile when the token is new, 200
// when it was registered already (it moves to the newest place). A user without a
// profile gets one with the default switches.
func (s *Server) addDevice(ctx context.Context, w http.ResponseWriter, r *http.Request, account, user string) *events.Error {
	body, e := readJSONBody(w, r)
	if e != nil {
		return e
	}
	d, err := directory.ParseDevice(body)
	if err != nil {
		return events.AsError(err)
	}
	p, added, err := s.cfg.Directory.AddDevice(ctx, account, user, d)
	if err != nil {
		return s.directoryError(ctx, err, "add device", account, user)
	}
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	writeJSON(w, status, p)
	return nil
}

// removeDevice serves DELETE .../devices/{token}: 204, or 404 when the user has no
// such device. The token is one path segment, percent-encoded by the client where it
// must be.
func (s *Server) removeDevice(ctx context.Context, w http.ResponseWriter, r *http.Request, account, user string) *events.Error {
	token := r.PathValue("token")
	if e := directory.CheckToken(token); e != nil {
		return e
	}
	removed, err := s.cfg.Directory.RemoveDevice(ctx, account, user, token)
	if err != nil {
		return s.directoryError(ctx, err, "remove device", account, user)
	}
	if !removed {
		return &events.Error{Code: events.CodeNotFound, Message: "no such device for " + account + "/" + user}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readJSONBody checks the Content-Type and reads the body within events.MaxBodySize.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, *events.Error) {
	if e := checkMediaType(r.Header.Get("Content-Type")); e != nil {
		return nil, e
	}
	return readBody(w, r)
}

// directoryError is the answer to a failed directory call: 404 for a missing profile,
// the validation error as it is, and 503 for NATS trouble (logged here, where it is
// handled).
func (s *Server) directoryError(ctx context.Context, err error, op, account, user string) *events.Error {
	if errors.Is(err, directory.ErrNotFound) {
		return &events.Error{Code: events.CodeNotFound, Message: "no profile for " + account + "/" + user}
	}
	if e, ok := errors.AsType[*events.Error](err); ok {
		return e
	}
	s.log.WarnContext(ctx, "recipient directory failed", "op", op, "account", account, "user", user, "error", err)
	return &events.Error{Code: events.CodeUnavailable, Message: "the recipient directory is unavailable"}
}
