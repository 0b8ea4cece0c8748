// Command dispatcher is the notification daemon: it routes notification events from
// NATS to the websocket relay and the channel workers, and serves the HTTP API. With no
// NATS_URL it embeds a NATS server with JetStream, so `go run ./cmd/dispatcher` is the
// whole system on one machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/email"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/channels/relay/web"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events/producer"
	"github.com/kommo-notify/notify/events/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil))
}

// endpoints are where a started daemon can be reached.
type endpoints struct {
	HTTP string // http://host:port
	NATS string // the client URL of the NATS server in use
}

// configError is a bad setting found after parsing (a key list, a taken port): the
// daemon stops with one line naming it and exit code 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// run is the daemon from arguments to exit code: 0 after a clean shutdown, 1 when it
// failed while running, 2 for a bad setting. started, when not nil, is told the
// endpoints once the daemon serves.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, started func(endpoints)) int {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "dispatcher: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if err := serve(ctx, cfg, log, stdout, started); err != nil {
		fmt.Fprintf(stderr, "dispatcher: %v\n", err)
		if errors.As(err, new(configError)) {
			return 2
		}
		return 1
	}
	return 0
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer, started func(endpoints)) error {
	apiKeys, adminKeys, err := keys(cfg, log)
	if err != nil {
		return err
	}

	natsURL := cfg.NATSURL
	var embedded *server.Server
	if natsURL == "" {
		embedded, err = dispatcher.StartEmbedded(dispatcher.EmbeddedConfig{
			Listen:   cfg.NATSListen,
			StoreDir: filepath.Join(cfg.DataDir, "jetstream"),
		})
		if err != nil {
			return configError{fmt.Errorf("NOTIFY_NATS_LISTEN: %w", err)}
		}
		defer func() {
			embedded.Shutdown()
			embedded.WaitForShutdown()
		}()
		natsURL = embedded.ClientURL()
		log.Info("embedded NATS server started", "url", natsURL, "store", filepath.Join(cfg.DataDir, "jetstream"))
	}
	nc, err := connect(ctx, natsURL, cfg.NATSCreds, log)
	if err != nil {
		return err
	}
	defer drain(nc, log)

	replicas := cfg.Replicas
	if replicas == 0 {
		replicas = 1
		if nc.ConnectedClusterName() != "" {
			replicas = 3
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	signer, err := userTokens(cfg, log)
	if err != nil {
		return err
	}
	// The notification center keeps add_error and add_call for each user; the hub asks
	// it for the hello's badge and for what a reconnecting tab missed.
	centerStore, err := center.New(ctx, center.Config{
		Conn:     nc,
		BaseURL:  cfg.BaseURL,
		MaxItems: cfg.CenterMaxItems,
		MaxAge:   cfg.CenterMaxAge,
		Replicas: replicas,
		Logger:   log,
	})
	if err != nil {
		return fmt.Errorf("provision the notification center: %w", err)
	}
	// The hub and the relay share a connection of their own that the server does not
	// echo to: the relay hands its frames to the hub directly, and NATS carries them
	// to the other dispatchers only.
	uiConn, err := connect(ctx, natsURL, cfg.NATSCreds, log, nats.Name("notify-dispatcher-relay"), nats.NoEcho())
	if err != nil {
		return err
	}
	defer drain(uiConn, log)
	hub, err := relay.NewHub(relay.HubConfig{
		Conn:           uiConn,
		Tokens:         signer,
		Center:         centerStore,
		AllowedOrigins: cfg.origins(),
		Registerer:     reg,
		Logger:         log,
	})
	if err != nil {
		return configError{fmt.Errorf("NOTIFY_ALLOWED_ORIGINS: %w", err)}
	}
	rl, err := relay.New(relay.Config{Conn: uiConn, Hub: hub})
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// The recipient directory's bucket is provisioned like the streams, with their
	// replicas; the cache gives the router _all's users without a NATS round trip.
	dir, err := directory.NewStore(ctx, js, directory.Config{Replicas: replicas})
	if err != nil {
		return fmt.Errorf("provision the recipient directory: %w", err)
	}
	recipients := directory.NewCache(dir, log)
	mailer, err := emailChannel(cfg, recipients, log)
	if err != nil {
		return err
	}
	pusher, err := pushChannel(ctx, cfg, recipients, dir, reg, log)
	if err != nil {
		return err
	}
	chans := []channels.Channel{rl, centerStore, mailer, pusher}

	d, err := dispatcher.New(nc, dispatcher.Config{
		Channels:        chans,
		Recipients:      recipients,
		Replicas:        replicas,
		DedupWindow:     cfg.DedupWindow,
		MaxAttempts:     cfg.MaxAttempts,
		AckWait:         cfg.AckWait,
		RetryBase:       cfg.RetryBase,
		RetryMax:        cfg.RetryMax,
		StatusTTL:       cfg.StatusTTL,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Consume:         cfg.consume(),
		Logger:          log,
		Registerer:      reg,
	})
	if err != nil {
		return configError{err}
	}
	if err := d.Provision(ctx); err != nil {
		return fmt.Errorf("provision streams: %w", err)
	}
	pub, err := producer.New(nc)
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{
		Publisher:      pub,
		APIKeys:        apiKeys,
		AdminKeys:      adminKeys,
		Users:          signer,
		AllowedOrigins: cfg.origins(),
		Directory:      dir,
		Center:         centerStore,
		Status:         d,
		RateLimit:      cfg.RateLimit,
		Metrics:        d.Metrics(),
		Ready:          d.Ready,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Routes:         routes(hub),
		Logger:         log,
	})
	if err != nil {
		return configError{err}
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return configError{fmt.Errorf("NOTIFY_HTTP_ADDR: %w", err)}
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(gctx) })
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return recipients.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})

	// Announce the daemon only once it routes: a pop-up sent right after the banner
	// must not meet an empty queue group.
	select {
	case <-d.Routing():
	case <-gctx.Done():
		return g.Wait()
	}
	ep := endpoints{HTTP: "http://" + reachable(ln.Addr()), NATS: natsURL}
	log.Info("dispatcher started", "http", ep.HTTP, "nats", ep.NATS)
	if embedded != nil {
		fmt.Fprintf(stdout, "notify dispatcher is up: HTTP %s, NATS %s\nAPI key in %s, admin key in %s\n",
			ep.HTTP, ep.NATS, secretPath(cfg.DataDir, apiKeyFile), secretPath(cfg.DataDir, adminKeyFile))
	}
	if cfg.JWTSecret == "" {
		// The one place a token is ever printed: a daemon given its secret never does.
		demo, err := signer.Mint(demoAccount, demoUser, 24*time.Hour)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Demo page (account %s, user %s, valid 24h): %s/?token=%s\n", demoAccount, demoUser, ep.HTTP, demo)
	}
	if started != nil {
		started(ep)
	}
	err = g.Wait()
	log.Info("dispatcher stopped")
	return err
}

// keys parses the configured producer and admin keys, or generates them under the
// data dir when none are configured.
func keys(cfg *config, log *slog.Logger) (api, admin httpapi.Keys, err error) {
	apiText, adminText := cfg.APIKeys, cfg.AdminKeys
	for _, k := range []struct {
		text *string
		file string
	}{{&apiText, apiKeyFile}, {&adminText, adminKeyFile}} {
		if *k.text != "" {
			continue
		}
		secret, created, err := loadOrCreateSecret(secretPath(cfg.DataDir, k.file))
		if err != nil {
			return httpapi.Keys{}, httpapi.Keys{}, configError{fmt.Errorf("NOTIFY_DATA_DIR: %w", err)}
		}
		if created {
			log.Info("generated a key", "file", secretPath(cfg.DataDir, k.file))
		}
		*k.text = secret
	}
	if api, err = httpapi.ParseKeys(apiText); err != nil {
		return httpapi.Keys{}, httpapi.Keys{}, configError{fmt.Errorf("NOTIFY_API_KEYS: %w", err)}
	}
	if admin, err = httpapi.ParseKeys(adminText); err != nil {
		return httpapi.Keys{}, httpapi.Keys{}, configError{fmt.Errorf("NOTIFY_ADMIN_KEYS: %w", err)}
	}
	return api, admin, nil
}

// emailChannel is the email channel when SMTP_URL is set, else its disabled stand-in.
func emailChannel(cfg *config, recipients *directory.Cache, log *slog.Logger) (channels.Channel, error) {
	if cfg.SMTPURL == "" {
		log.Warn("channel disabled: deliveries are recorded as skipped", "channel", channels.Email, "reason", channels.ReasonChannelDisabled)
		return channels.Disabled(channels.Email), nil
	}
	mailer, err := email.New(email.Config{
		Server:      cfg.smtp,
		From:        cfg.MailFrom,
		BaseURL:     cfg.BaseURL,
		Recipients:  recipients,
		Connections: cfg.SMTPConnections,
		Logger:      log,
	})
	if err != nil {
		return nil, configError{fmt.Errorf("SMTP_URL: %w", err)}
	}
	log.Info("email channel enabled", "channel", channels.Email, "smtp", cfg.smtp.String(), "connections", cfg.SMTPConnections)
	return mailer, nil
}

// pushChannel is the push channel when FCM_CREDENTIALS_FILE is set, else its disabled
// stand-in; the push metrics are exported either way.
func pushChannel(ctx context.Context, cfg *config, recipients *directory.Cache, dir *directory.Store, reg prometheus.Registerer, log *slog.Logger) (channels.Channel, error) {
	if cfg.FCMCredentials == "" {
		log.Warn("channel disabled: deliveries are recorded as skipped", "channel", channels.Push, "reason", channels.ReasonChannelDisabled)
		push.ExportMetrics(reg) // the contract's push metrics, at zero while push is off
		return channels.Disabled(channels.Push), nil
	}
	pusher, err := push.New(ctx, push.Config{
		ProjectID:     cfg.FCMProjectID,
		Credentials:   cfg.fcm,
		Endpoint:      cfg.FCMEndpoint,
		BaseURL:       cfg.BaseURL,
		Profiles:      recipients,
		Devices:       dir,
		RatePerMinute: cfg.PushRate,
		InFlight:      cfg.PushInFlight,
		Registerer:    reg,
		Logger:        log,
	})
	if err != nil {
		return nil, configError{fmt.Errorf("FCM_CREDENTIALS_FILE: %w", err)}
	}
	log.Info("push channel enabled", "channel", channels.Push, "project", pusher.Project(), "endpoint", pusher.Endpoint(), "rate_per_minute", cfg.PushRate, "in_flight", cfg.PushInFlight)
	return pusher, nil
}

// routes are the handlers of other components on the HTTP listener: the websocket,
// and the browser client with its demo page.
func routes(hub http.Handler) []httpapi.Route {
	rs := []httpapi.Route{{Pattern: "GET /ws", Handler: hub}}
	for _, p := range web.Patterns() {
		rs = append(rs, httpapi.Route{Pattern: p, Handler: web.Handler()})
	}
	return rs
}

// The demo page's user, for the URL printed at start.
const (
	demoAccount = "demo"
	demoUser    = "1"
)

// userTokens is the signer of user tokens, with the configured secret or the one kept
// under the data dir (made the first time).
func userTokens(cfg *config, log *slog.Logger) (*token.Signer, error) {
	secret := cfg.JWTSecret
	if secret == "" {
		path := token.SecretPath(cfg.DataDir)
		var created bool
		var err error
		if secret, created, err = loadOrCreateSecret(path); err != nil {
			return nil, configError{fmt.Errorf("NOTIFY_DATA_DIR: %w", err)}
		}
		if created {
			log.Info("generated the user token secret", "file", path)
		}
	}
	signer, err := token.NewSigner([]byte(secret))
	if err != nil {
		return nil, configError{fmt.Errorf("NOTIFY_JWT_SECRET: %w", err)}
	}
	return signer, nil
}

// connect joins NATS for good: it retries the first connection and reconnects forever,
// because a daemon that gives up after two minutes of network trouble is an outage.
// extra options come after the defaults and may override them.
func connect(ctx context.Context, natsURL, creds string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("notify-dispatcher"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		// Asynchronous errors (a slow consumer after a reconnect, a lost write) go to
		// the daemon's log instead of the library's default stderr print.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"error", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			log.Warn("NATS asynchronous error", attrs...)
		}),
	}
	opts = append(opts, extra...)
	if creds != "" {
		if _, err := os.Stat(creds); err != nil {
			return nil, configError{fmt.Errorf("NATS_CREDS: %w", err)}
		}
		opts = append(opts, nats.UserCredentials(creds))
	}
	connected := make(chan struct{})
	var once sync.Once
	markConnected := func(*nats.Conn) { once.Do(func() { close(connected) }) }
	opts = append(opts, nats.ConnectHandler(markConnected))
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, configError{fmt.Errorf("NATS_URL: %w", err)}
	}
	if nc.IsConnected() {
		markConnected(nc)
	}
	// RetryOnFailedConnect returns at once; wait for the first connection so a wrong
	// URL is reported instead of leaving a daemon that never becomes ready.
	select {
	case <-connected:
		return nc, nil
	case <-ctx.Done():
		nc.Close()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		nc.Close()
		return nil, configError{fmt.Errorf("NATS_URL: cannot reach %s", redact(natsURL))}
	}
}

func drain(nc *nats.Conn, log *slog.Logger) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		log.Warn("NATS drain timed out")
		nc.Close()
	}
}

// reachable is addr as a person would type it: a wildcard host becomes localhost.
func reachable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// redact hides the passwords of a NATS URL list, for messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
