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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kommo-notify/notify/channels/push/fcmemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// rules collects repeated --fail flags.
type rules []fcmemu.Rule

func (r *rules) String() string { return fmt.Sprint(*r) }

func (r *rules) Set(s string) error {
	rule, err := fcmemu.ParseRule(s)
	if err != nil {
		return err
	}
	*r = append(*r, rule)
	return nil
}

// strs collects a repeated string flag.
type strs []string

func (s *strs) String() string     { return strings.Join(*s, ",") }
func (s *strs) Set(v string) error { *s = append(*s, v); return nil }

type config struct {
	listen         string
	project        string
	latency        time.Duration
	keep           int
	fail           rules
	accessTokens   strs
	credentialsOut string
}

// run is the emulator from arguments to exit code: 0 after a clean shutdown, 1 when
// serving failed, 2 for a bad flag. started, when not nil, gets the base URL once it
// serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, started func(url string)) int {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fcm-emulator: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, cfg, log, stdout, started); err != nil {
		fmt.Fprintf(stderr, "fcm-emulator: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stdout io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("fcm-emulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: fcm-emulator [flags]\n\nAn FCM HTTP v1 emulator for the notify dispatcher's push channel.\n\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fs.StringVar(&c.listen, "listen", "127.0.0.1:4004", "listen address")
	fs.StringVar(&c.project, "project", "", "the only project served; empty: every project (a key file written by --credentials-out names notify-dev)")
	fs.DurationVar(&c.latency, "latency", 0, "how long every messages:send waits before answering, such as 100ms")
	fs.IntVar(&c.keep, "keep", fcmemu.DefaultKeep, "received messages kept for /emulator/messages")
	fs.Var(&c.fail, "fail", "a scripted failure, repeatable: error=CODE[,token=T][,after=N][,times=N][,retry_after=SECONDS]")
	fs.Var(&c.accessTokens, "access-token", "a bearer token accepted without OAuth, repeatable")
	fs.StringVar(&c.credentialsOut, "credentials-out", "", "write a service-account key file minting its tokens here (for FCM_CREDENTIALS_FILE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return nil, fmt.Errorf("--listen: %q is not host:port", c.listen)
	}
	if c.latency < 0 || c.keep < 1 {
		return nil, errors.New("--latency may not be negative and --keep must be at least 1")
	}
	return c, nil
}

func serve(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer, started func(string)) error {
	emu := fcmemu.New(fcmemu.Options{
		Project:      cfg.project,
		Latency:      cfg.latency,
		AccessTokens: cfg.accessTokens,
		Keep:         cfg.keep,
	})
	for _, r := range cfg.fail {
		if err := emu.Fail(r); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	base := "http://" + reachable(ln.Addr())
	if cfg.credentialsOut != "" {
		if err := writeCredentials(emu, cfg, base); err != nil {
			ln.Close()
			return err
		}
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fcmemu.ConfigureServer(srv)

	fmt.Fprintf(stdout, "FCM emulator on %s (project %s, latency %s)\n", base, or(cfg.project, "any"), cfg.latency)
	if cfg.credentialsOut != "" {
		fmt.Fprintf(stdout, "Service account key in %s: FCM_ENDPOINT=%s FCM_CREDENTIALS_FILE=%s\n", cfg.credentialsOut, base, cfg.credentialsOut)
	}
	if started != nil {
		started(base)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	<-errc
	return nil
}

// writeCredentials writes a fresh service account whose key the emulator trusts and
// whose token_uri is the emulator's /token.
func writeCredentials(emu *fcmemu.Emulator, cfg *config, base string) error {
	sa, err := fcmemu.NewServiceAccount(or(cfg.project, "notify-dev"), base+"/token")
	if err != nil {
		return err
	}
	emu.Trust(sa.Email, &sa.Key.PublicKey)
	b, err := sa.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.credentialsOut, b, 0o600); err != nil {
		return fmt.Errorf("--credentials-out: %w", err)
	}
	return nil
}

// reachable is addr as a client on this machine dials it: a wildcard host becomes
// 127.0.0.1.
func reachable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
