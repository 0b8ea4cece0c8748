package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong
)

// app is the process's environment, injected so tests run commands in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand. run gets the arguments after the command's name; it
// returns a usageError for a bad command line and flag.ErrHelp after printing its
// usage on request.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands is the command table. A new subcommand is a file with its run method and
// one line here.
func (a *app) commands() []command {
	return []command{
		{"publish", "validate and publish one notification event", a.publish},
		{"token", "mint a user token for the browser client and the websocket", a.token},
		{"profile", "get, put or delete a user's recipient profile (email, locale, channels)", a.profile},
		{"device", "add or remove a user's push device", a.device},
		{"dlq", "list or replay dead letters (NOTIFY_DLQ)", a.dlq},
		{"bench", "benchmark the dispatcher against raw baselines (PERFORMANCE.md)", a.bench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := a.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// main runs the command line args (without the program name) and returns the exit code.
func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		a.usage(a.stdout)
		return exitOK
	case "help":
		if len(rest) == 0 {
			a.usage(a.stdout)
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	cmd, ok := a.lookup(name)
	if !ok {
		fmt.Fprintf(a.stderr, "notify: unknown command %q\n\n", name)
		a.usage(a.stderr)
		return exitUsage
	}
	err := cmd.run(ctx, rest)
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(a.stderr, "notify %s: %s\n", cmd.name, usage.msg)
		fmt.Fprintf(a.stderr, "Run 'notify %s --help' for usage.\n", cmd.name)
		return exitUsage
	default:
		fmt.Fprintf(a.stderr, "notify: %s\n", oneLine(err.Error()))
		return exitFailure
	}
}

func (a *app) lookup(name string) (command, bool) {
	for _, c := range a.commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, "Usage: notify <command> [arguments]\n\nThe command-line producer and operator tool of the notification dispatcher.\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range a.commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun 'notify help <command>' or 'notify <command> --help' for a command's usage.\n")
}

// usageError is a wrong command line: reported with a pointer to --help, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseInterspersed parses flags wherever they appear among the positional arguments
// (Go's flag package stops at the first non-flag) and returns the positional ones in
// order. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a flag set that reports errors to its caller instead of printing
// them, so that usage goes to stdout on --help and to stderr on a mistake.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs and returns the positional arguments. On --help it
// prints usage and fs's defaults to a.stdout and returns flag.ErrHelp; any other flag
// error is a usageError.
func (a *app) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, usage)
		fmt.Fprint(a.stdout, "\nFlags:\n")
		fs.SetOutput(a.stdout)
		fs.PrintDefaults()
		return nil, flag.ErrHelp
	}
	if err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	return positional, nil
}

// oneLine keeps an error on one line of stderr.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}
