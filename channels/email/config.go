package email

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/kommo-notify/notify/channels/directory"
)

// Defaults of Config.
const (
	DefaultConnections = 4
	// DefaultTimeout bounds one Send, the wait for a free connection included. It is
	// below the router's 30-second ack wait, so JetStream never redelivers an event
	// whose send is still running.
	DefaultTimeout = 20 * time.Second
	// MaxConnections bounds the pool: mail servers limit concurrent connections per
	// client (often 10 to 20) and answer more with 421.
	MaxConnections = 100
)

// Profiles looks recipients up; *directory.Cache implements it.
type Profiles interface {
	Profile(account, user string) (directory.Profile, bool)
	// Ready is closed once the profiles are loaded: before that, "no profile" means
	// "not known yet", not "no address".
	Ready() <-chan struct{}
}

// Config configures the email channel.
type Config struct {
	Server Server // from ParseURL
	// From is the sender: an address, optionally with a display name
	// ("Kommo Notifications <noreply@example.com>"). Its domain names Message-IDs.
	From string
	// BaseURL is the CRM's public URL (no trailing slash needed): element links and
	// path links resolve against it.
	BaseURL    string
	Recipients Profiles
	// Connections is the number of SMTP connections kept open, each carrying one
	// transaction at a time: the most messages in flight. Default 4.
	Connections int
	// Timeout bounds one Send: waiting for a connection, dialling, and the
	// transaction. Default DefaultTimeout.
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (a private CA, a
	// test server); its ServerName defaults to Server.Host. Nil: the system's roots.
	TLSConfig *tls.Config
	// HELO is the name given in EHLO; default: the machine's host name.
	HELO   string
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Server.Host == "":
		return errors.New("email: no SMTP server")
	case c.Server.Port < 1 || c.Server.Port > 65535:
		return fmt.Errorf("email: SMTP port %d is not 1 to 65535", c.Server.Port)
	}
	switch c.Server.TLS {
	case StartTLS, ImplicitTLS, NoTLS:
	default:
		return fmt.Errorf("email: TLS mode %q is not none, starttls or tls", c.Server.TLS)
	}
	if _, err := parseFrom(c.From); err != nil {
		return err
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("email: base URL %q is not an absolute http(s) URL", c.BaseURL)
	}
	if c.Recipients == nil {
		return errors.New("email: no recipient directory")
	}
	if c.Connections < 1 || c.Connections > MaxConnections {
		return fmt.Errorf("email: connections must be 1 to %d", MaxConnections)
	}
	if c.Timeout < time.Second {
		return errors.New("email: timeout must be at least 1s")
	}
	return nil
}

// parseFrom reads the sender, display name and all. Only a bare address counts:
// a group or a list is refused.
func parseFrom(s string) (*mail.Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("email: no sender address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("email: sender %q is not an address such as \"Kommo Notifications <noreply@example.com>\"", s)
	}
	if _, domain, _ := strings.Cut(a.Address, "@"); domain == "" {
		return nil, fmt.Errorf("email: sender %q has no domain", s)
	}
	return a, nil
}
