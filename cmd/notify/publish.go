package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/producer"
)

const defaultNATSURL = "nats://127.0.0.1:4222"

const publishUsage = `Usage: notify publish <type> --account A --user U [--id ID] [--timeout 5s] ['<json>' | -]

Validates a notification payload with the dispatcher's rules and publishes it to
notify.<account>.<user>.<type>: add_* types through JetStream (the stream's
acknowledgement is awaited), show_* types on core NATS. The payload is the last
argument; "-" or no payload reads it from standard input. Flags may come before or
after the arguments.

Types: show_message, show_message_error, show_notification, add_error, add_call.

Prints one JSON line: {"id":...,"warnings":[...],"stream":...,"seq":...}
(stream and seq for add_* types only).

Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_CREDS. Flags beat the
environment.

Example:
  notify publish show_message --account acme --user 42 '{"header":"Hi","text":"Hello"}'
`

// publishConfig is the publish command line, resolved against the environment.
type publishConfig struct {
	addr    events.Address
	id      string
	timeout time.Duration
	natsURL string
	creds   string
	payload string // the argument, or "-" for stdin
}

func (a *app) publish(ctx context.Context, args []string) error {
	cfg, err := a.parsePublish(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	// Validate before connecting, so a bad payload names its field even while NATS is down.
	body, err := a.readPayload(cfg.payload)
	if err != nil {
		return err
	}
	ev, warnings, err := events.NewEvent(cfg.addr, cfg.id, body, time.Now())
	if err != nil {
		return err
	}

	nc, err := connect(cfg.natsURL, cfg.creds, cfg.timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	client, err := producer.New(nc)
	if err != nil {
		return err
	}
	res, err := client.PublishEvent(ctx, ev)
	if err != nil {
		return err
	}
	// A core publish is only buffered: make sure it left before reporting success.
	if err := nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("publish %s: flush: %w", ev.ID, err)
	}
	res.Warnings = warnings
	return json.NewEncoder(a.stdout).Encode(res)
}

// parsePublish reads the command line; flags beat the environment, which beats the defaults.
func (a *app) parsePublish(args []string) (*publishConfig, error) {
	cfg := &publishConfig{}
	fs := newFlagSet("publish")
	fs.StringVar(&cfg.addr.Account, "account", "", "the account (required)")
	fs.StringVar(&cfg.addr.User, "user", "", "the user, or _all for every user of the account (required)")
	fs.StringVar(&cfg.id, "id", "", "the event id and idempotency key (default: a new ULID)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "how long to wait for NATS: connecting and publishing")
	fs.StringVar(&cfg.natsURL, "nats-url", "", "NATS server URL(s), comma-separated (env NATS_URL, default "+defaultNATSURL+")")
	fs.StringVar(&cfg.creds, "creds", "", "NATS credentials file (env NATS_CREDS)")
	positional, err := a.parseFlags(fs, publishUsage, args)
	if err != nil {
		return nil, err
	}
	switch len(positional) {
	case 0:
		return nil, usagef("missing the notification type")
	case 1:
		cfg.payload = "-"
	case 2:
		cfg.payload = positional[1]
	default:
		return nil, usagef("too many arguments: give the payload as one argument (quote it)")
	}
	t, ok := events.ParseType(positional[0])
	if !ok {
		return nil, usagef("unknown type %q: one of show_message, show_message_error, show_notification, add_error, add_call", positional[0])
	}
	cfg.addr.Type = t
	if cfg.addr.Account == "" {
		return nil, usagef("--account is required")
	}
	if cfg.addr.User == "" {
		return nil, usagef("--user is required")
	}
	if cfg.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	cfg.natsURL = cmp.Or(cfg.natsURL, a.getenv("NATS_URL"), defaultNATSURL)
	cfg.creds = cmp.Or(cfg.creds, a.getenv("NATS_CREDS"))
	return cfg, nil
}

// readPayload returns the payload argument, or standard input for "-". At most one
// byte more than the limit is read, so the validator reports an oversized body.
func (a *app) readPayload(arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	body, err := io.ReadAll(io.LimitReader(a.stdin, events.MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("read payload from stdin: %w", err)
	}
	return body, nil
}

// connect reaches NATS for one command, failing within timeout.
func connect(natsURL, creds string, timeout time.Duration) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("notify-cli"), nats.Timeout(timeout)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", redactURLs(natsURL), err)
	}
	return nc, nil
}

// redactURLs hides the passwords of a comma-separated URL list, for messages.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
