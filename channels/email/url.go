package email

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// TLSMode is how the connection to the SMTP server is secured.
type TLSMode string

const (
	// StartTLS upgrades a plain connection with STARTTLS and refuses a server that
	// does not offer it (the submission port, 587).
	StartTLS TLSMode = "starttls"
	// ImplicitTLS speaks TLS from the first byte (SMTPS, 465).
	ImplicitTLS TLSMode = "tls"
	// NoTLS is a plain connection, for a relay on the same host or network (25).
	NoTLS TLSMode = "none"
)

// DefaultPort is the port a mode uses when the URL names none.
func (m TLSMode) DefaultPort() int {
	switch m {
	case ImplicitTLS:
		return 465
	case NoTLS:
		return 25
	}
	return 587
}

// Server is where mail is submitted: the parsed SMTP_URL.
type Server struct {
	Host     string
	Port     int
	TLS      TLSMode
	Username string // empty: no AUTH
	Password string
}

// ParseURL reads smtp://user:pass@host:port?tls=none|starttls|tls. The mode defaults
// to starttls and the port to the mode's (587, 465 or 25); smtps:// means tls=tls.
// Reserved characters in the user name or password are percent-encoded (%40 for @).
// Credentials with tls=none are refused unless the host is the loopback: they would
// cross the network in clear text. The error says what is wrong and never repeats
// the password.
func ParseURL(s string) (Server, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the URL, password included: say less.
		return Server{}, errors.New("not a URL such as smtp://user:pass@host:587?tls=starttls")
	}
	var srv Server
	switch u.Scheme {
	case "smtp":
		srv.TLS = StartTLS
	case "smtps":
		srv.TLS = ImplicitTLS
	default:
		return Server{}, fmt.Errorf("scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return Server{}, errors.New("no host: write smtp://host:port")
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" {
		return Server{}, errors.New("must not have a path or fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Server{}, errors.New("malformed query")
	}
	for key, vals := range q {
		if key != "tls" {
			return Server{}, fmt.Errorf("unknown parameter %q (only tls)", key)
		}
		switch mode := TLSMode(strings.ToLower(vals[len(vals)-1])); mode {
		case StartTLS, ImplicitTLS, NoTLS:
			srv.TLS = mode
		default:
			return Server{}, fmt.Errorf("tls must be none, starttls or tls, not %q", vals[len(vals)-1])
		}
	}
	srv.Host = u.Hostname()
	srv.Port = srv.TLS.DefaultPort()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Server{}, fmt.Errorf("port %q is not 1 to 65535", p)
		}
		srv.Port = n
	}
	if u.User != nil {
		srv.Username = u.User.Username()
		srv.Password, _ = u.User.Password()
		if srv.Username == "" {
			return Server{}, errors.New("a password needs a user name")
		}
		if srv.TLS == NoTLS && !isLoopback(srv.Host) {
			return Server{}, errors.New("credentials with tls=none would cross the network in clear text: use starttls or tls")
		}
	}
	return srv, nil
}

// String is the server as a URL without its password, for logs.
func (s Server) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), RawQuery: "tls=" + string(s.TLS)}
	if s.Username != "" {
		u.User = url.User(s.Username)
	}
	return u.String()
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// isLoopback matches the hosts go-mail sends a password to without TLS.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
