package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/channels/email"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/events/token"
)

// config is every setting of the daemon. Each has a flag and an environment variable;
// the flag beats the variable, which beats the default.
type config struct {
	HTTPAddr        string
	BaseURL         string
	JWTSecret       string
	AllowedOrigins  string
	APIKeys         string
	AdminKeys       string
	SMTPURL         string // empty: the email channel is disabled
	MailFrom        string
	SMTPConnections int
	smtp            email.Server // SMTPURL, parsed by validate
	FCMCredentials  string       // FCM_CREDENTIALS_FILE; empty: the push channel is disabled
	FCMProjectID    string
	FCMEndpoint     string
	PushRate        int
	PushInFlight    int
	fcm             *push.Credentials // FCMCredentials, loaded by validate
	CenterMaxItems  int
	CenterMaxAge    time.Duration
	NATSURL         string
	NATSCreds       string
	DataDir         string
	NATSListen      string
	RateLimit       float64
	DedupWindow     time.Duration
	Replicas        int
	MaxAttempts     int
	AckWait         time.Duration
	RetryBase       time.Duration
	RetryMax        time.Duration
	StatusTTL       time.Duration
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        string
	Channels        string // NOTIFY_CHANNELS; empty: all
}

// durableChannels are the channels NOTIFY_CHANNELS may name: those of add_error and
// add_call, each with its own consumer.
var durableChannels = []string{channels.Relay, channels.Center, channels.Email, channels.Push}

// maxPushInFlight bounds NOTIFY_PUSH_IN_FLIGHT: each send in flight holds a goroutine
// and an HTTP request.
const maxPushInFlight = 100_000

// setting is one flag, its variable, its help and its default.
type setting struct{ flag, env, usage, def string }

// parseConfig reads flags and environment. --help prints the usage on stdout and
// returns flag.ErrHelp; any other problem is one error naming the setting.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("dispatcher", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: dispatcher [flags]\n\nThe notification dispatcher. Every flag also reads the environment variable in brackets;\na flag beats its variable, which beats the default.\n\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	var errs []error
	str := func(p *string, s setting) {
		fs.StringVar(p, s.flag, envOr(getenv, s.env, s.def), s.usage+" ("+s.env+")")
	}
	num := func(p *float64, s setting) {
		v, err := strconv.ParseFloat(envOr(getenv, s.env, s.def), 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a number", s.env))
		}
		fs.Float64Var(p, s.flag, v, s.usage+" ("+s.env+")")
	}
	integer := func(p *int, s setting) {
		v, err := strconv.Atoi(envOr(getenv, s.env, s.def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not an integer", s.env))
		}
		fs.IntVar(p, s.flag, v, s.usage+" ("+s.env+")")
	}
	dur := func(p *time.Duration, s setting) {
		v, err := time.ParseDuration(envOr(getenv, s.env, s.def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a duration such as 10m", s.env))
		}
		fs.DurationVar(p, s.flag, v, s.usage+" ("+s.env+")")
	}

	str(&c.HTTPAddr, setting{"http-addr", "NOTIFY_HTTP_ADDR", "HTTP listen address", ":8080"})
	str(&c.BaseURL, setting{"base-url", "NOTIFY_BASE_URL", "public URL of the CRM, for links in email and push (default http://localhost:<http port>)", ""})
	str(&c.JWTSecret, setting{"jwt-secret", "NOTIFY_JWT_SECRET", "secret of the user tokens, at least 32 bytes (default: generated under the data dir)", ""})
	str(&c.AllowedOrigins, setting{"allowed-origins", "NOTIFY_ALLOWED_ORIGINS", "comma-separated host or host:port patterns (* wildcard) of pages that may open the websocket; the dispatcher's own host always may", ""})
	str(&c.APIKeys, setting{"api-keys", "NOTIFY_API_KEYS", "producer keys, comma-separated key or account:key (default: generated under the data dir)", ""})
	str(&c.AdminKeys, setting{"admin-keys", "NOTIFY_ADMIN_KEYS", "admin keys, comma-separated (default: generated under the data dir)", ""})
	str(&c.SMTPURL, setting{"smtp-url", "SMTP_URL", "SMTP server for email, smtp://user:pass@host:port?tls=none|starttls|tls; empty disables email", ""})
	str(&c.MailFrom, setting{"mail-from", "NOTIFY_MAIL_FROM", "sender of email notifications, such as \"Kommo Notifications <noreply@example.com>\" (required with SMTP_URL)", ""})
	integer(&c.SMTPConnections, setting{"smtp-connections", "NOTIFY_SMTP_CONNECTIONS", "SMTP connections kept open: the most emails in flight", "4"})
	str(&c.FCMCredentials, setting{"fcm-credentials-file", "FCM_CREDENTIALS_FILE", "service account key file of the Firebase project for mobile push; empty disables push", ""})
	str(&c.FCMProjectID, setting{"fcm-project-id", "FCM_PROJECT_ID", "Firebase project for mobile push (default: the key file's project_id)", ""})
	str(&c.FCMEndpoint, setting{"fcm-endpoint", "FCM_ENDPOINT", "base URL of an FCM v1 compatible endpoint, such as the emulator's http://127.0.0.1:4004; empty: FCM", ""})
	integer(&c.PushInFlight, setting{"push-in-flight", "NOTIFY_PUSH_IN_FLIGHT", "push sends in flight; throughput is about this divided by FCM's latency", "1024"})
	integer(&c.PushRate, setting{"push-rate", "NOTIFY_PUSH_RATE", "push messages per minute per Firebase project (FCM's quota is 600000)", "600000"})
	integer(&c.CenterMaxItems, setting{"center-max-items", "NOTIFY_CENTER_MAX_ITEMS", "notification center items kept per user; the oldest go first", "1000"})
	dur(&c.CenterMaxAge, setting{"center-max-age", "NOTIFY_CENTER_MAX_AGE", "how long a notification center item is kept", "2160h"})
	str(&c.NATSURL, setting{"nats-url", "NATS_URL", "NATS servers to join; empty runs an embedded server", ""})
	str(&c.NATSCreds, setting{"nats-creds", "NATS_CREDS", "NATS credentials file", ""})
	str(&c.DataDir, setting{"data-dir", "NOTIFY_DATA_DIR", "data directory: embedded JetStream store and generated secrets", "./data"})
	str(&c.NATSListen, setting{"nats-listen", "NOTIFY_NATS_LISTEN", "client address of the embedded NATS server", "127.0.0.1:4222"})
	num(&c.RateLimit, setting{"rate-limit", "NOTIFY_RATE_LIMIT", "HTTP events per second per account (burst twice that)", "1000"})
	dur(&c.DedupWindow, setting{"dedup-window", "NOTIFY_DEDUP_WINDOW", "Nats-Msg-Id deduplication window", "10m"})
	integer(&c.Replicas, setting{"replicas", "NOTIFY_REPLICAS", "stream replicas; 0 picks 3 on a cluster, 1 otherwise", "0"})
	integer(&c.MaxAttempts, setting{"max-attempts", "NOTIFY_MAX_ATTEMPTS", "attempts per channel and recipient before a delivery is dead-lettered", "10"})
	dur(&c.AckWait, setting{"ack-wait", "NOTIFY_ACK_WAIT", "how long a delivery may go unanswered before JetStream hands it out again (after a crash or a lost pull)", "30s"})
	dur(&c.RetryBase, setting{"retry-base", "NOTIFY_RETRY_BASE", "delay before the first retry; it doubles per attempt, with jitter", "1s"})
	dur(&c.RetryMax, setting{"retry-max", "NOTIFY_RETRY_MAX", "longest delay between retries", "5m"})
	dur(&c.StatusTTL, setting{"status-ttl", "NOTIFY_STATUS_TTL", "how long delivery status (and the records that stop a redelivered event from being sent twice) is kept", "72h"})
	dur(&c.ShutdownTimeout, setting{"shutdown-timeout", "NOTIFY_SHUTDOWN_TIMEOUT", "how long in-flight deliveries may finish on shutdown", "10s"})
	str(&c.LogFormat, setting{"log-format", "NOTIFY_LOG_FORMAT", "log format: text or json", "text"})
	str(&c.LogLevel, setting{"log-level", "NOTIFY_LOG_LEVEL", "log level: debug, info, warn or error", "info"})
	str(&c.Channels, setting{"channels", "NOTIFY_CHANNELS", "comma-separated channels whose add_error and add_call deliveries this dispatcher makes, of relay, center, email and push; a dedicated worker names one (default: all)", ""})

	if len(errs) > 0 {
		return nil, errs[0]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

// origins are the allowed origin patterns, trimmed, without empty items.
func (c *config) origins() []string { return list(c.AllowedOrigins) }

// consume are the channels of NOTIFY_CHANNELS; none means all.
func (c *config) consume() []string { return list(c.Channels) }

// list splits a comma-separated setting into its trimmed, non-empty items.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// validate names the first setting that cannot work, by its variable.
func (c *config) validate() error {
	for i, ch := range c.consume() {
		if !slices.Contains(durableChannels, ch) {
			return fmt.Errorf("NOTIFY_CHANNELS: %q is not one of %s", ch, strings.Join(durableChannels, ", "))
		}
		if slices.Contains(c.consume()[:i], ch) {
			return fmt.Errorf("NOTIFY_CHANNELS: %q is named twice", ch)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("NOTIFY_HTTP_ADDR: %q is not host:port", c.HTTPAddr)
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("NOTIFY_NATS_LISTEN: %q is not host:port", c.NATSListen)
		}
	} else {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err != nil || pu.Host == "" {
				return fmt.Errorf("NATS_URL: %q is not a list of nats://host:port URLs", c.NATSURL)
			}
		}
	}
	if c.DataDir == "" {
		return errors.New("NOTIFY_DATA_DIR: may not be empty")
	}
	if c.BaseURL == "" {
		_, port, _ := net.SplitHostPort(c.HTTPAddr)
		c.BaseURL = "http://localhost:" + port
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("NOTIFY_BASE_URL: %q is not an absolute http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.JWTSecret != "" && len(c.JWTSecret) < token.MinSecretLen {
		return fmt.Errorf("NOTIFY_JWT_SECRET: must be at least %d bytes", token.MinSecretLen)
	}
	for _, p := range c.origins() {
		if strings.Contains(p, "://") || strings.Contains(p, "/") {
			return fmt.Errorf("NOTIFY_ALLOWED_ORIGINS: %q is not a host or host:port pattern", p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("NOTIFY_ALLOWED_ORIGINS: %q: %v", p, err)
		}
	}
	if err := c.validateEmail(); err != nil {
		return err
	}
	if err := c.validatePush(); err != nil {
		return err
	}
	if c.CenterMaxItems < 1 || c.CenterMaxItems > center.MaxMaxItems {
		return fmt.Errorf("NOTIFY_CENTER_MAX_ITEMS: must be 1 to %d", center.MaxMaxItems)
	}
	if c.CenterMaxAge < time.Minute {
		return errors.New("NOTIFY_CENTER_MAX_AGE: must be at least 1m")
	}
	if c.RateLimit <= 0 {
		return errors.New("NOTIFY_RATE_LIMIT: must be above 0")
	}
	if c.DedupWindow < time.Second {
		return errors.New("NOTIFY_DEDUP_WINDOW: must be at least 1s")
	}
	if c.MaxAttempts < 1 {
		return errors.New("NOTIFY_MAX_ATTEMPTS: must be at least 1")
	}
	if c.AckWait < time.Second {
		return errors.New("NOTIFY_ACK_WAIT: must be at least 1s")
	}
	if c.RetryBase <= 0 {
		return errors.New("NOTIFY_RETRY_BASE: must be above 0")
	}
	if c.RetryMax < c.RetryBase {
		return errors.New("NOTIFY_RETRY_MAX: may not be shorter than NOTIFY_RETRY_BASE")
	}
	if c.StatusTTL < time.Hour {
		return errors.New("NOTIFY_STATUS_TTL: must be at least 1h")
	}
	switch c.Replicas {
	case 0, 1, 3, 5:
	default:
		return errors.New("NOTIFY_REPLICAS: must be 1, 3 or 5 (0 picks by deployment)")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("NOTIFY_SHUTDOWN_TIMEOUT: must be above 0")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return errors.New("NOTIFY_LOG_FORMAT: must be text or json")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("NOTIFY_LOG_LEVEL: must be debug, info, warn or error")
	}
	return nil
}

// validateEmail checks the email settings when SMTP_URL turns email on.
func (c *config) validateEmail() error {
	if c.SMTPURL == "" {
		return nil
	}
	srv, err := email.ParseURL(c.SMTPURL)
	if err != nil {
		return fmt.Errorf("SMTP_URL: %w", err)
	}
	c.smtp = srv
	if c.MailFrom == "" {
		return errors.New("NOTIFY_MAIL_FROM: required with SMTP_URL, such as \"Kommo Notifications <noreply@example.com>\"")
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		return fmt.Errorf("NOTIFY_MAIL_FROM: %q is not an address such as \"Kommo Notifications <noreply@example.com>\"", c.MailFrom)
	}
	if c.SMTPConnections < 1 || c.SMTPConnections > email.MaxConnections {
		return fmt.Errorf("NOTIFY_SMTP_CONNECTIONS: must be 1 to %d", email.MaxConnections)
	}
	return nil
}

// validatePush checks the push settings when FCM_CREDENTIALS_FILE turns push on. The
// key file is read and checked here, so a wrong file stops the daemon at start
// rather than failing the first notification.
func (c *config) validatePush() error {
	if c.FCMCredentials == "" {
		if c.FCMProjectID != "" || c.FCMEndpoint != "" {
			return errors.New("FCM_CREDENTIALS_FILE: required with FCM_PROJECT_ID or FCM_ENDPOINT (the emulator writes one: fcm-emulator --credentials-out)")
		}
		return nil
	}
	creds, err := push.LoadCredentials(c.FCMCredentials)
	if err != nil {
		return fmt.Errorf("FCM_CREDENTIALS_FILE: %w", err)
	}
	c.fcm = creds
	if c.FCMProjectID == "" && creds.ProjectID == "" {
		return errors.New("FCM_PROJECT_ID: required, the key file names no project_id")
	}
	if c.FCMEndpoint != "" {
		if u, err := url.Parse(c.FCMEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("FCM_ENDPOINT: %q is not an absolute http(s) URL", c.FCMEndpoint)
		}
		c.FCMEndpoint = strings.TrimRight(c.FCMEndpoint, "/")
	}
	if c.PushInFlight < 1 || c.PushInFlight > maxPushInFlight {
		return fmt.Errorf("NOTIFY_PUSH_IN_FLIGHT: must be 1 to %d", maxPushInFlight)
	}
	if c.PushRate < 1 {
		return errors.New("NOTIFY_PUSH_RATE: must be at least 1 message a minute")
	}
	return nil
}
