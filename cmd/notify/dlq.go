package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
)

const dlqUsage = `Usage: notify dlq list|replay [selectors] [flags]

Inspects and replays dead letters: the deliveries the dispatcher gave up on, kept in
the JetStream stream NOTIFY_DLQ under dlq.<channel>.<account>.<user>.<type> (channel
"router" for events that never reached a channel) with the original payload and the
headers Notify-Event-Id, Notify-Reason, Notify-Error and Notify-Attempts.

  list    prints the selected dead letters, oldest first: a table, or one JSON object
          per line with --json (the error in full and the payload). It only reads:
          the stream is left exactly as it was, no consumer is created.
  replay  republishes each selected dead letter's payload to the NOTIFY stream on
          notify.<account>.<user>.<type>, with its original event id and the header
          Notify-Replay naming the dead letter's channel, so only that channel
          delivers it again (router dead letters go to every channel). Once NOTIFY
          has acknowledged it, the dead letter is deleted (--keep keeps it). replay
          needs a selector, or --all for every dead letter. A dead letter that does
          not name a valid event address is reported and skipped (exit 1).

Selectors (every one given must match):
  --seq N,...    NOTIFY_DLQ sequences, as list prints them (repeatable)
  --channel C    relay, center, email, push or router
  --account A    --user U    --type T
  --reason R     invalid, permanent or max_attempts
  --event ID     the event id

Dead letters written while replay runs (a replay that fails again) are left for the
next run. Output: one line per dead letter and a summary on standard output; skipped
dead letters on standard error.

Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_CREDS. Flags beat the
environment.

Examples:
  notify dlq list --channel email --reason max_attempts
  notify dlq list --event 01J9Z3K8Q4M2N6P7R8S9T0V1W2 --json
  notify dlq replay --channel email --reason max_attempts --dry-run
  notify dlq replay --seq 12,15 --keep
`

// errorWidth bounds the ERROR column of the table; --json prints the whole error.
const errorWidth = 60

// dlqFlags is the dlq command line.
type dlqFlags struct {
	sel               dlqSelector
	limit             int
	json              bool
	all, keep, dryRun bool
	timeout           time.Duration
	natsURL, creds    string
}

// listOnly and replayOnly are the flags that make sense for one action only.
var (
	listOnly   = []string{"limit", "json"}
	replayOnly = []string{"all", "keep", "dry-run"}
)

func (a *app) dlq(ctx context.Context, args []string) error {
	action, f, err := a.parseDLQ(args)
	if err != nil {
		return err
	}
	nc, err := connect(f.natsURL, f.creds, f.timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	stream, err := js.Stream(rctx, dispatcher.DLQStreamName)
	cancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("no dead-letter stream %s: has a dispatcher run against this NATS?", dispatcher.DLQStreamName)
	}
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", dispatcher.DLQStreamName, err)
	}
	// The stream's state as of this lookup bounds the scan.
	s := &dlqScan{stream: stream, sel: &f.sel, timeout: f.timeout}
	if action == "list" {
		return a.dlqList(ctx, s, f)
	}
	return a.dlqReplay(ctx, js, s, f)
}

// parseDLQ reads the command line and checks it before anything connects.
func (a *app) parseDLQ(args []string) (string, *dlqFlags, error) {
	f := &dlqFlags{}
	fs := newFlagSet("dlq")
	fs.Var((*seqList)(&f.sel.seqs), "seq", "select the dead letters at these NOTIFY_DLQ `sequences`, comma-separated (repeatable)")
	fs.StringVar(&f.sel.channel, "channel", "", "select dead letters of this channel: relay, center, email, push or router")
	fs.StringVar(&f.sel.account, "account", "", "select dead letters of this account")
	fs.StringVar(&f.sel.user, "user", "", "select dead letters of this user")
	fs.StringVar(&f.sel.typ, "type", "", "select dead letters of this notification type")
	fs.StringVar(&f.sel.reason, "reason", "", "select dead letters with this reason: invalid, permanent or max_attempts")
	fs.StringVar(&f.sel.event, "event", "", "select dead letters of this event id")
	fs.IntVar(&f.limit, "limit", 0, "list: print at most this many dead letters, oldest first (0: all)")
	fs.BoolVar(&f.json, "json", false, "list: print one JSON object per line instead of a table")
	fs.BoolVar(&f.all, "all", false, "replay: allow replaying without a selector, that is every dead letter")
	fs.BoolVar(&f.keep, "keep", false, "replay: keep the dead letters in NOTIFY_DLQ after replaying them")
	fs.BoolVar(&f.dryRun, "dry-run", false, "replay: print what would be replayed and change nothing")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for NATS on each request")
	fs.StringVar(&f.natsURL, "nats-url", "", "NATS server URL(s), comma-separated (env NATS_URL, default "+defaultNATSURL+")")
	fs.StringVar(&f.creds, "creds", "", "NATS credentials file (env NATS_CREDS)")
	positional, err := a.parseFlags(fs, dlqUsage, args)
	if err != nil {
		return "", nil, err
	}
	switch {
	case len(positional) == 0:
		return "", nil, usagef("missing the action: list or replay")
	case positional[0] != "list" && positional[0] != "replay":
		return "", nil, usagef("unknown action %q: list or replay", positional[0])
	case len(positional) > 1:
		return "", nil, usagef("unexpected argument %q", positional[1])
	}
	action := positional[0]
	foreign := replayOnly
	if action == "replay" {
		foreign = listOnly
	}
	var misplaced error
	fs.Visit(func(fl *flag.Flag) {
		if misplaced == nil && slices.Contains(foreign, fl.Name) {
			misplaced = usagef("--%s is not a flag of dlq %s", fl.Name, action)
		}
	})
	if misplaced != nil {
		return "", nil, misplaced
	}
	if err := f.sel.check(); err != nil {
		return "", nil, err
	}
	switch {
	case f.limit < 0:
		return "", nil, usagef("--limit must not be negative")
	case f.timeout <= 0:
		return "", nil, usagef("--timeout must be positive")
	case action == "replay" && f.sel.empty() && !f.all:
		return "", nil, usagef("replay needs a selector (--seq, --channel, --account, --user, --type, --reason, --event) or --all for every dead letter")
	}
	f.natsURL = cmp.Or(f.natsURL, a.getenv("NATS_URL"), defaultNATSURL)
	f.creds = cmp.Or(f.creds, a.getenv("NATS_CREDS"))
	return action, f, nil
}

// seqList is the --seq flag: sequences, comma-separated, the flag repeatable.
type seqList []uint64

func (l *seqList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(s, ",")
}

func (l *seqList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(part), 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a sequence number", part)
		}
		*l = append(*l, n)
	}
	return nil
}

// dlqSelector selects dead letters. The channel, account, user and type become a
// subject filter the server applies; the reason and event id are headers, checked here.
type dlqSelector struct {
	seqs                        []uint64
	channel, account, user, typ string
	reason, event               string
}

func (s *dlqSelector) empty() bool {
	return len(s.seqs) == 0 && s.channel == "" && s.account == "" && s.user == "" &&
		s.typ == "" && s.reason == "" && s.event == ""
}

// check rejects selectors that could never match, or that would not be one subject
// token of the filter. Accounts, users and types are not held to the event rules:
// the router dead-letters events whose subject breaks them, and they must be findable.
func (s *dlqSelector) check() error {
	if s.channel != "" && !knownChannel(s.channel) {
		return usagef("unknown channel %q: relay, center, email, push or router", s.channel)
	}
	for _, t := range []struct{ flag, value string }{{"account", s.account}, {"user", s.user}, {"type", s.typ}} {
		if t.value != "" && !subjectToken(t.value) {
			return usagef("--%s %q is not a subject token (no dots, wildcards or spaces)", t.flag, t.value)
		}
	}
	switch s.reason {
	case "", dispatcher.ReasonInvalid, dispatcher.ReasonPermanent, dispatcher.ReasonMaxAttempts:
	default:
		return usagef("unknown reason %q: invalid, permanent or max_attempts", s.reason)
	}
	slices.Sort(s.seqs)
	s.seqs = slices.Compact(s.seqs)
	return nil
}

// filter is the subject filter for the server. The type is matched with ">" because
// a router dead letter of a malformed subject may hold more than one token there.
func (s *dlqSelector) filter() string {
	if s.channel == "" && s.account == "" && s.user == "" && s.typ == "" {
		return dispatcher.DLQPrefix + ".>"
	}
	return dispatcher.DLQSubject(cmp.Or(s.channel, "*"), cmp.Or(s.account, "*"), cmp.Or(s.user, "*"), cmp.Or(s.typ, ">"))
}

func (s *dlqSelector) match(dl *deadLetter) bool {
	is := func(want, got string) bool { return want == "" || want == got }
	return is(s.channel, dl.Channel) && is(s.account, dl.Account) && is(s.user, dl.User) &&
		is(s.typ, dl.Type) && is(s.reason, dl.Reason) && is(s.event, dl.EventID)
}

func knownChannel(name string) bool {
	switch name {
	case channels.Relay, channels.Center, channels.Email, channels.Push, dispatcher.RouterChannel:
		return true
	}
	return false
}

func subjectToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r)
	})
}

// deadLetter is one message of NOTIFY_DLQ.
type deadLetter struct {
	Seq                          uint64
	Time                         time.Time
	Subject                      string
	Channel, Account, User, Type string
	EventID, Reason, Error       string
	Attempts                     string // the header as written
	Body                         []byte
}

func parseDeadLetter(m *jetstream.RawStreamMsg) *deadLetter {
	dl := &deadLetter{
		Seq:      m.Sequence,
		Time:     m.Time.UTC(),
		Subject:  m.Subject,
		EventID:  m.Header.Get(dispatcher.HeaderEventID),
		Reason:   m.Header.Get(dispatcher.HeaderReason),
		Error:    m.Header.Get(dispatcher.HeaderError),
		Attempts: m.Header.Get(dispatcher.HeaderAttempts),
		Body:     m.Data,
	}
	// dlq.<channel>.<account>.<user>.<type>; the type keeps any further tokens.
	parts := strings.SplitN(m.Subject, ".", 5)
	parts = append(parts, make([]string, 5-len(parts))...)
	dl.Channel, dl.Account, dl.User, dl.Type = parts[1], parts[2], parts[3], parts[4]
	return dl
}

// dlqScan walks the selected dead letters without consuming them: message gets by
// sequence, so no consumer state is created or left behind.
type dlqScan struct {
	stream  jetstream.Stream
	sel     *dlqSelector
	timeout time.Duration
}

// each calls fn with every selected dead letter, oldest first, until fn says stop. It
// goes no further than the stream's last sequence when the command looked it up, so
// dead letters written meanwhile (a replay that fails again) are not met twice.
// missing is called for a --seq that holds no dead letter.
func (s *dlqScan) each(ctx context.Context, missing func(seq uint64), fn func(*deadLetter) (more bool, err error)) error {
	if len(s.sel.seqs) > 0 {
		for _, seq := range s.sel.seqs {
			m, err := s.get(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				missing(seq)
				continue
			}
			if err != nil {
				return err
			}
			if dl := parseDeadLetter(m); s.sel.match(dl) {
				if more, err := fn(dl); err != nil || !more {
					return err
				}
			}
		}
		return nil
	}
	state := s.stream.CachedInfo().State
	filter := s.sel.filter()
	for seq := max(state.FirstSeq, 1); seq <= state.LastSeq; {
		m, err := s.get(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Sequence > state.LastSeq {
			return nil
		}
		seq = m.Sequence + 1
		if dl := parseDeadLetter(m); s.sel.match(dl) {
			if more, err := fn(dl); err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// get is the message at seq, or with WithGetMsgSubject the first at or after seq on
// the subject filter.
func (s *dlqScan) get(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq, opts...)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("read %s at seq %d: %w", dispatcher.DLQStreamName, seq, err)
	}
	return m, err
}

// dlqJSON is a dead letter as list --json prints it. A payload that is not JSON (an
// invalid event) is null, with the bytes in payload_base64.
type dlqJSON struct {
	Seq           uint64          `json:"seq"`
	Time          time.Time       `json:"time"`
	Subject       string          `json:"subject"`
	Channel       string          `json:"channel"`
	Account       string          `json:"account"`
	User          string          `json:"user"`
	Type          string          `json:"type"`
	EventID       string          `json:"event_id"`
	Reason        string          `json:"reason"`
	Attempts      int             `json:"attempts"`
	Error         string          `json:"error"`
	Payload       json.RawMessage `json:"payload"`
	PayloadBase64 string          `json:"payload_base64,omitempty"`
}

func (dl *deadLetter) json() dlqJSON {
	attempts, _ := strconv.Atoi(dl.Attempts)
	j := dlqJSON{
		Seq: dl.Seq, Time: dl.Time, Subject: dl.Subject,
		Channel: dl.Channel, Account: dl.Account, User: dl.User, Type: dl.Type,
		EventID: dl.EventID, Reason: dl.Reason, Attempts: attempts, Error: dl.Error,
		Payload: json.RawMessage("null"),
	}
	if json.Valid(dl.Body) {
		j.Payload = dl.Body
	} else {
		j.PayloadBase64 = base64.StdEncoding.EncodeToString(dl.Body)
	}
	return j
}

func (a *app) dlqList(ctx context.Context, s *dlqScan, f *dlqFlags) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false) // payloads carry HTML; keep it readable
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	if !f.json {
		fmt.Fprintln(tw, "SEQ\tTIME\tCHANNEL\tACCOUNT\tUSER\tTYPE\tEVENT\tREASON\tATTEMPTS\tERROR")
	}
	var notFound []string
	printed := 0
	err := s.each(ctx, func(seq uint64) {
		notFound = append(notFound, strconv.FormatUint(seq, 10))
	}, func(dl *deadLetter) (bool, error) {
		if f.json {
			if err := enc.Encode(dl.json()); err != nil {
				return false, err
			}
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dl.Seq, dl.Time.Format(time.RFC3339),
				cell(dl.Channel), cell(dl.Account), cell(dl.User), cell(dl.Type), cell(dl.EventID),
				cell(dl.Reason), cell(dl.Attempts), truncate(cell(dl.Error), errorWidth))
		}
		printed++
		return f.limit == 0 || printed < f.limit, nil
	})
	// What was read is printed even when a later read fails.
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err == nil && len(notFound) > 0 {
		err = fmt.Errorf("no dead letter at seq %s", strings.Join(notFound, ","))
	}
	return err
}

// cell keeps a value on one table cell: tabs and line breaks would break the columns.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func truncate(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	return string([]rune(s)[:width-1]) + "…"
}

func (a *app) dlqReplay(ctx context.Context, js jetstream.JetStream, s *dlqScan, f *dlqFlags) error {
	replayed, skipped := 0, 0
	skip := func(format string, args ...any) {
		skipped++
		fmt.Fprintf(a.stderr, "skipped "+format+"\n", args...)
	}
	err := s.each(ctx, func(seq uint64) {
		skip("seq %d: no dead letter there", seq)
	}, func(dl *deadLetter) (bool, error) {
		msg, err := replayMsg(dl)
		if err != nil {
			skip("seq %d (%s): %s", dl.Seq, dl.Subject, oneLine(err.Error()))
			return true, nil
		}
		via := "every channel"
		if ch := msg.Header.Get(dispatcher.HeaderReplay); ch != "" {
			via = "channel " + ch
		}
		if f.dryRun {
			replayed++
			fmt.Fprintf(a.stdout, "would replay seq %d: event %s to %s via %s\n", dl.Seq, dl.EventID, msg.Subject, via)
			return true, nil
		}
		// A failed publish or delete is the stream's or the connection's trouble, not
		// this dead letter's: stop rather than fail every remaining one the same way.
		ack, err := publishReplay(ctx, js, msg, s.timeout)
		if err != nil {
			return false, fmt.Errorf("replay seq %d (event %s): %w", dl.Seq, dl.EventID, err)
		}
		replayed++
		kept := ""
		if f.keep {
			kept = ", kept"
		} else if err := deleteDeadLetter(ctx, s, dl.Seq); err != nil {
			return false, fmt.Errorf("replayed seq %d as %s seq %d but could not delete the dead letter (replaying it again is safe: the router skips recipients it already served): %w",
				dl.Seq, dispatcher.StreamName, ack.Sequence, err)
		}
		fmt.Fprintf(a.stdout, "replayed seq %d: event %s to %s via %s (%s seq %d%s)\n",
			dl.Seq, dl.EventID, msg.Subject, via, dispatcher.StreamName, ack.Sequence, kept)
		return true, nil
	})

	summary := fmt.Sprintf("replayed %d dead %s", replayed, plural(replayed, "letter", "letters"))
	switch {
	case f.dryRun:
		summary = fmt.Sprintf("would replay %d dead %s (dry run: nothing changed)", replayed, plural(replayed, "letter", "letters"))
	case f.keep:
		summary += " (kept in " + dispatcher.DLQStreamName + ")"
	}
	if skipped > 0 {
		summary += fmt.Sprintf(", skipped %d", skipped)
	}
	fmt.Fprintln(a.stdout, summary)
	if err == nil && skipped > 0 {
		err = fmt.Errorf("%d dead %s skipped", skipped, plural(skipped, "letter", "letters"))
	}
	return err
}

// replayMsg is the replay of dl, as the router expects it: the payload on the event's
// subject, the original event id, the channel that should deliver it again (none for
// the router's dead letters: every channel), and no Nats-Msg-Id, which the dedup
// window would swallow.
func replayMsg(dl *deadLetter) (*nats.Msg, error) {
	if !knownChannel(dl.Channel) {
		return nil, fmt.Errorf("unknown channel %q", dl.Channel)
	}
	addr, err := events.ParseSubject(strings.Join([]string{events.SubjectPrefix, dl.Account, dl.User, dl.Type}, "."))
	if err != nil {
		return nil, fmt.Errorf("not a valid event address: %w", err)
	}
	if !addr.Type.Durable() {
		return nil, fmt.Errorf("%s events are not stored, so there is nothing to replay them into", addr.Type)
	}
	if err := events.CheckID(dl.EventID); err != nil {
		return nil, fmt.Errorf("header %s: %w", dispatcher.HeaderEventID, err)
	}
	msg := nats.NewMsg(addr.Subject())
	msg.Data = dl.Body
	msg.Header.Set(dispatcher.HeaderEventID, dl.EventID)
	if dl.Channel != dispatcher.RouterChannel {
		msg.Header.Set(dispatcher.HeaderReplay, dl.Channel)
	}
	return msg, nil
}

// publishReplay publishes msg into NOTIFY and waits for its acknowledgement.
func publishReplay(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return js.PublishMsg(ctx, msg, jetstream.WithExpectStream(dispatcher.StreamName))
}

func deleteDeadLetter(ctx context.Context, s *dlqScan, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.stream.DeleteMsg(ctx, seq)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
