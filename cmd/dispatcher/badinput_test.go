package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/html"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

// Bad input sweep: every malformed, oversized, non-UTF-8, hostile-HTML, bad-URL and
// wrong-type payload, every bad address and bad event id, over HTTP and over NATS, is
// either refused with the contract's error (its code and the field it names) or, for
// hostile HTML in text and for unknown fields, accepted with the dangerous markup and
// the unknown members gone from what a browser tab receives. Over NATS a pop-up
// request gets the error object as its reply and an invalid durable event becomes a
// dead letter (NOTIFY_DLQ, dlq.router.<account>.<user>.<type>, Notify-Reason invalid,
// a Notify-Error naming the field, the original payload). Every refusal is counted in
// notify_events_rejected_total, and after the sweep the daemon still serves.
func TestBadInputSweep(t *testing.T) {
	s := startSweep(t)
	before := scrape(t, s.d)

	t.Run("payloads", func(t *testing.T) {
		for _, typ := range sweepTypes {
			t.Run(typ, func(t *testing.T) {
				for _, tc := range payloadCases(t, typ) {
					s.run(t, tc)
				}
			})
		}
	})
	t.Run("addresses", func(t *testing.T) {
		for _, tc := range addressCases() {
			s.run(t, tc)
		}
	})
	t.Run("event ids", func(t *testing.T) {
		for _, tc := range idCases() {
			s.run(t, tc)
		}
	})
	t.Run("pop-ups without a reply subject", s.popupsWithoutReply)
	t.Run("every refusal counted", func(t *testing.T) { s.checkRejected(t, before) })
	t.Run("still serving", s.checkServing)
}

// sweep is the daemon under test and its clients.
type sweep struct {
	d           *daemon
	nc          *nats.Conn
	js          jetstream.JetStream
	dlq         jetstream.Stream
	tab         *sweepTab
	rejected    map[[2]string]float64                // notify_events_rejected_total{type,reason}: the expected rise
	dlqRead     uint64                               // the last NOTIFY_DLQ sequence read
	deadLetters map[string][]*jetstream.RawStreamMsg // read so far, by Notify-Event-Id
	n           int                                  // numbers fresh users and event ids
}

func startSweep(t *testing.T) *sweep {
	t.Helper()
	env := embeddedEnv(t)
	env["NOTIFY_API_KEYS"] = sweepAPIKey
	env["NOTIFY_JWT_SECRET"] = sweepSecret
	s := &sweep{d: startDaemon(t, env), rejected: map[[2]string]float64{}, deadLetters: map[string][]*jetstream.RawStreamMsg{}}
	var err error
	if s.nc, err = nats.Connect(s.d.ep.NATS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	if s.dlq, err = s.js.Stream(t.Context(), "NOTIFY_DLQ"); err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner([]byte(sweepSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Mint(sweepAccount, sweepUser, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.tab = dialSweepTab(t, s.d, tok)
	return s
}

// run sends tc over HTTP and over NATS.
func (s *sweep) run(t *testing.T, tc sweepCase) {
	t.Run(tc.name, func(t *testing.T) {
		t.Run("http", func(t *testing.T) { s.overHTTP(t, tc) })
		t.Run("nats", func(t *testing.T) { s.overNATS(t, tc) })
	})
}

func (s *sweep) fresh(prefix string) string {
	s.n++
	return fmt.Sprintf("%s-%04d", prefix, s.n)
}

func (s *sweep) expectRejected(typ, code string) {
	label := typ
	if !slices.Contains(sweepTypes, typ) {
		label = "unknown"
	}
	s.rejected[[2]string{label, code}]++
}

func (s *sweep) overHTTP(t *testing.T, tc sweepCase) {
	account, user := cmp.Or(tc.account, sweepAccount), cmp.Or(tc.user, sweepUser)
	path := "/api/v1/notify/" + url.PathEscape(account) + "/" + url.PathEscape(user) + "/" + url.PathEscape(tc.typ)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.d.ep.HTTP+path, bytes.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+sweepAPIKey)
	req.Header.Set("Content-Type", "application/json")
	if tc.id != "" {
		req.Header.Set("Idempotency-Key", tc.id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		// Every refusal is counted, with the code it was answered with.
		s.expectRejected(tc.typ, checkErrorBody(t, body, tc.code, cmp.Or(tc.httpField, tc.field)))
	}
	if tc.code != "" {
		if want := httpStatus[tc.code]; resp.StatusCode != want {
			t.Errorf("status %d, want %d: %s", resp.StatusCode, want, body)
		}
		return
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
	}
	s.checkAccepted(t, tc, body)
}

func (s *sweep) overNATS(t *testing.T, tc sweepCase) {
	account, user := cmp.Or(tc.account, sweepAccount), cmp.Or(tc.user, sweepUser)
	if tc.user == "" && tc.durable() && tc.code != "" {
		user = s.fresh("dead") // its own dead-letter subject
	}
	id := cmp.Or(tc.id, s.fresh("sweep"))
	msg := nats.NewMsg("notify." + account + "." + user + "." + tc.typ)
	msg.Header.Set("Nats-Msg-Id", id)
	msg.Data = tc.body

	switch tc.nats {
	case natsBadSubject:
		var err error
		if tc.durable() {
			_, err = s.js.PublishMsg(t.Context(), msg)
		} else {
			_, err = s.nc.RequestMsg(msg, 5*time.Second)
		}
		if !errors.Is(err, nats.ErrBadSubject) {
			t.Errorf("publish to %q: %v, want %v", msg.Subject, err, nats.ErrBadSubject)
		}
		return
	case natsNoRoute:
		if tc.durable() {
			_, err := s.js.PublishMsg(t.Context(), msg, jetstream.WithRetryAttempts(0))
			if !errors.Is(err, jetstream.ErrNoStreamResponse) {
				t.Errorf("JetStream publish to %q: %v, want %v", msg.Subject, err, jetstream.ErrNoStreamResponse)
			}
		} else if _, err := s.nc.RequestMsg(msg, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("request to %q: %v, want %v", msg.Subject, err, nats.ErrNoResponders)
		}
		return
	}

	if !tc.durable() {
		// A pop-up request: the dispatcher's reply is the error object or the id.
		reply, err := s.nc.RequestMsg(msg, 5*time.Second)
		if err != nil {
			t.Fatalf("request to %q: %v", msg.Subject, err)
		}
		if bytes.Contains(reply.Data, []byte(`"error"`)) {
			s.expectRejected(tc.typ, checkErrorBody(t, reply.Data, tc.code, tc.field))
			return
		}
		if tc.code != "" {
			t.Fatalf("reply %s, want the error %s", reply.Data, tc.code)
		}
		s.checkAccepted(t, tc, reply.Data)
		return
	}

	// A durable event: JetStream takes it, the router validates it when it routes it.
	ack, err := s.js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatalf("JetStream publish to %q: %v", msg.Subject, err)
	}
	if ack.Stream != "NOTIFY" || ack.Duplicate {
		t.Fatalf("PubAck %+v, want a new message in NOTIFY", ack)
	}
	if tc.code == "" {
		s.checkDelivered(t, tc, id)
		return
	}
	// A token that cannot stand in a subject as it is (a wildcard, a byte the server
	// does not index, not a valid name) is "~" in the dead letter's subject, and the
	// original subject travels in Notify-Subject.
	dlAccount, dlUser := deadLetterToken(account), deadLetterToken(user)
	dl := s.deadLetter(t, "dlq.router."+dlAccount+"."+dlUser+"."+tc.typ, id)
	if dlAccount != account || dlUser != user {
		if got := dl.Header.Get("Notify-Subject"); got != strings.Map(controlToSpace, msg.Subject) {
			t.Errorf("Notify-Subject %q, want the original subject %q", got, msg.Subject)
		}
	}
	s.expectRejected(tc.typ, tc.code)
	if got := dl.Header.Get("Notify-Reason"); got != "invalid" {
		t.Errorf("Notify-Reason %q, want invalid", got)
	}
	if got := dl.Header.Get("Notify-Attempts"); got != "1" {
		t.Errorf("Notify-Attempts %q, want 1: an invalid event is not retried", got)
	}
	errText := dl.Header.Get("Notify-Error")
	if !strings.Contains(errText, tc.code) || tc.field != "" && !namesField(errText, tc.field) {
		t.Errorf("Notify-Error %q does not name %s and the field %q", errText, tc.code, tc.field)
	}
	if !bytes.Equal(dl.Data, tc.body) {
		t.Errorf("the dead letter's body is not the original payload:\n got %.200q\nwant %.200q", dl.Data, tc.body)
	}
}

// popupsWithoutReply publishes invalid pop-ups as a plain `nats pub` does: nobody
// hears of the refusal but the metrics.
func (s *sweep) popupsWithoutReply(t *testing.T) {
	for _, c := range []struct{ name, typ, body, code string }{
		{"not JSON", "show_message", `Connection established`, "invalid_json"},
		{"header missing", "show_message_error", `{"text":"Connection lost"}`, "invalid_field"},
		{"type unknown", "show_notification", `{"text":{"header":"Call","text":"Dialing"},"type":"sms"}`, "invalid_field"},
		{"over 64 KiB", "show_message", `{"header":"h","text":"` + strings.Repeat("x", 64<<10) + `"}`, "too_large"},
	} {
		t.Run(c.typ+" "+c.name, func(t *testing.T) {
			if err := s.nc.Publish("notify."+sweepAccount+"."+sweepUser+"."+c.typ, []byte(c.body)); err != nil {
				t.Fatal(err)
			}
			s.expectRejected(c.typ, c.code)
		})
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// checkAccepted reads a 202 body or a pop-up's reply: an id and the warnings, which
// name every unknown member; then it looks at what was delivered.
func (s *sweep) checkAccepted(t *testing.T, tc sweepCase, body []byte) {
	t.Helper()
	var res struct {
		ID       string    `json:"id"`
		Warnings *[]string `json:"warnings"`
		Error    any       `json:"error"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.ID == "" || res.Warnings == nil || res.Error != nil {
		t.Fatalf("answer %s: want {\"id\":...,\"warnings\":[...]}", body)
	}
	for _, name := range tc.unknown {
		if !slices.ContainsFunc(*res.Warnings, func(w string) bool { return strings.Contains(w, `"`+name+`"`) }) {
			t.Errorf("warnings %q do not name the unknown field %q", *res.Warnings, name)
		}
	}
	if len(tc.unknown) == 0 && len(*res.Warnings) != 0 {
		t.Errorf("warnings %q, want none", *res.Warnings)
	}
	s.checkDelivered(t, tc, res.ID)
}

// checkDelivered waits for the event's pop-up on the tab and, for a durable type, its
// center item, and checks each payload: no unknown member, text within the allowed
// HTML subset, the fragments of tc.keep still there.
func (s *sweep) checkDelivered(t *testing.T, tc sweepCase, id string) {
	t.Helper()
	kinds := []string{"popup"}
	if tc.durable() {
		kinds = append(kinds, "center")
	}
	for _, kind := range kinds {
		raw := s.tab.await(t, kind, id)
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s payload %s: %v", kind, raw, err)
		}
		for _, name := range tc.unknown {
			if _, ok := member(p, name); ok {
				t.Errorf("%s payload %s: the unknown field %q was delivered", kind, raw, name)
			}
		}
		for _, f := range tc.plain {
			if v, _ := member(p, f); !isOneLine(v) {
				t.Errorf("%s payload %s: %s is not one line of text", kind, raw, f)
			}
		}
		v, _ := member(p, sweepSchema[tc.typ].text)
		text, ok := v.(string)
		if !ok || text == "" {
			t.Fatalf("%s payload %s: no text", kind, raw)
		}
		if problems := htmlProblems(text); len(problems) > 0 {
			t.Errorf("%s text %q: %s", kind, text, strings.Join(problems, "; "))
		}
		for _, k := range tc.keep {
			if !strings.Contains(text, k) {
				t.Errorf("%s text %q lost %q", kind, text, k)
			}
		}
	}
}

// deadLetter waits for the dead letter of event id in NOTIFY_DLQ and checks its
// subject. It reads the stream in order, message by message: a subject built from a
// hostile account or user may hold a wildcard, so it cannot serve as a filter.
func (s *sweep) deadLetter(t *testing.T, subject, id string) *jetstream.RawStreamMsg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := s.dlq.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for ; s.dlqRead < info.State.LastSeq; s.dlqRead++ {
			m, err := s.dlq.GetMsg(t.Context(), s.dlqRead+1)
			if err != nil {
				t.Fatalf("read NOTIFY_DLQ %d: %v", s.dlqRead+1, err)
			}
			s.deadLetters[m.Header.Get("Notify-Event-Id")] = append(s.deadLetters[m.Header.Get("Notify-Event-Id")], m)
		}
		if dls := s.deadLetters[id]; len(dls) > 0 {
			if len(dls) > 1 {
				t.Errorf("%d dead letters of %s, want 1", len(dls), id)
			}
			if dls[0].Subject != subject {
				t.Errorf("dead letter on %q, want %q", dls[0].Subject, subject)
			}
			return dls[0]
		}
		select {
		case <-deadline:
			log := s.d.stderr.String()
			if len(log) > 4096 {
				log = log[len(log)-4096:]
				log = log[strings.IndexByte(log, '\n')+1:]
			}
			t.Fatalf("no dead letter of %s on %q within 10s; the end of the daemon's log:\n%s", id, subject, log)
		case <-tick.C:
		}
	}
}

// checkRejected compares notify_events_rejected_total with the refusals of the sweep:
// each series rose by exactly the number of events refused with its type and reason.
func (s *sweep) checkRejected(t *testing.T, before map[string]*dto.MetricFamily) {
	const name = "notify_events_rejected_total"
	waitMetrics(t, s.d, 10*time.Second, func(after map[string]*dto.MetricFamily) []string {
		var problems []string
		seen := map[[2]string]bool{}
		for _, m := range after[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := [2]string{labels["type"], labels["reason"]}
			seen[key] = true
			rose := m.GetCounter().GetValue() - max(0, seriesValue(before, name, labels))
			if rose != s.rejected[key] {
				problems = append(problems, fmt.Sprintf("%s{type=%q,reason=%q} rose by %v, want %v", name, key[0], key[1], rose, s.rejected[key]))
			}
		}
		for key, n := range s.rejected {
			if !seen[key] {
				problems = append(problems, fmt.Sprintf("%s{type=%q,reason=%q} missing, want %v", name, key[0], key[1], n))
			}
		}
		slices.Sort(problems)
		return problems
	})
	var total float64
	for _, n := range s.rejected {
		total += n
	}
	t.Logf("%v refusals counted", total)
}

// checkServing: after the sweep the daemon is alive and ready, and valid events of
// both kinds still reach the tab.
func (s *sweep) checkServing(t *testing.T) {
	select {
	case code := <-s.d.exit:
		s.d.exit <- code
		t.Fatalf("the daemon exited with %d during the sweep:\n%s", code, s.d.stderr.String())
	default:
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.d.ep.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	s.overHTTP(t, sweepCase{typ: "add_error", body: []byte(`{"header":"Error","text":"Failed to set the task! Contact not found!","link":"/contacts/list/?term=4951234567"}`)})
	s.overNATS(t, sweepCase{typ: "show_message", body: []byte(`{"header":"Warning","text":"Connection established"}`)})
	s.overNATS(t, sweepCase{typ: "add_call", body: []byte(sweepSchema["add_call"].valid)})
}

// checkErrorBody checks {"error":{"code","message","field"}}: the code, the field
// ("" for none) and a message. It returns the code the body has.
func checkErrorBody(t *testing.T, body []byte, code, field string) string {
	t.Helper()
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("answer %s: want {\"error\":{...}}", body)
	}
	if e.Error.Code != code || e.Error.Field != field || e.Error.Message == "" {
		t.Errorf("error %s: want code %q, field %q and a message", body, code, field)
	}
	return e.Error.Code
}

// namesField reports whether an error text mentions field as a word of its own.
func namesField(text, field string) bool {
	return slices.Contains(strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ':' || r == '"' }), field)
}

// isOneLine reports whether v is a non-empty string without control characters.
func isOneLine(v any) bool {
	s, ok := v.(string)
	return ok && s != "" && !strings.ContainsFunc(s, unicode.IsControl)
}

// member returns the value at a dotted path of a decoded JSON object.
func member(obj map[string]any, path string) (any, bool) {
	name, rest, nested := strings.Cut(path, ".")
	v, ok := obj[name]
	if !ok || !nested {
		return v, ok
	}
	inner, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return member(inner, rest)
}

// allowedTags is the contract's HTML subset of text.
var allowedTags = []string{"a", "b", "strong", "i", "em", "p", "br", "span"}

// htmlProblems lists what in text lies outside the contract's subset: another tag, an
// attribute other than an anchor's href (with the target and rel the sanitizer adds),
// an href that is neither http(s) nor a single-slash path, a comment, and anything
// that reads as a script or a javascript: URL.
func htmlProblems(text string) []string {
	var out []string
	lower := strings.ToLower(text)
	for _, s := range []string{"<script", "javascript:", "vbscript:"} {
		if strings.Contains(lower, s) {
			out = append(out, fmt.Sprintf("contains %q", s))
		}
	}
	z := html.NewTokenizer(strings.NewReader(text))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.CommentToken, html.DoctypeToken:
			out = append(out, "a comment or doctype")
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tok := z.Token()
			if !slices.Contains(allowedTags, tok.Data) {
				out = append(out, "tag <"+tok.Data+">")
			}
			for _, a := range tok.Attr {
				switch {
				case tok.Data == "a" && a.Key == "href":
					if v := a.Val; !(strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://") ||
						strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//")) {
						out = append(out, fmt.Sprintf("href %q", v))
					}
				case tok.Data == "a" && (a.Key == "target" || a.Key == "rel"):
				default:
					out = append(out, fmt.Sprintf("attribute %s=%q on <%s>", a.Key, a.Val, tok.Data))
				}
			}
		}
	}
}

// sweepPayload is typ's valid payload with each dotted field of kv set to its raw
// JSON value, or removed when the value is empty.
func sweepPayload(t *testing.T, typ string, kv ...string) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(sweepSchema[typ].valid), &top); err != nil {
		t.Fatal(err)
	}
	var set func(obj map[string]json.RawMessage, path []string, raw string)
	set = func(obj map[string]json.RawMessage, path []string, raw string) {
		if len(path) == 1 {
			if raw == "" {
				delete(obj, path[0])
			} else {
				obj[path[0]] = json.RawMessage(raw)
			}
			return
		}
		inner := map[string]json.RawMessage{}
		if err := json.Unmarshal(obj[path[0]], &inner); err != nil {
			t.Fatal(err)
		}
		set(inner, path[1:], raw)
		obj[path[0]] = sweepEncode(t, inner)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		set(top, strings.Split(kv[i], "."), kv[i+1])
	}
	return sweepEncode(t, top)
}

// sweepQuote is s as a JSON string.
func sweepQuote(t *testing.T, s string) []byte { return sweepEncode(t, s) }

// sweepEncode encodes v as a producer would: markup stays as it is, not \u003c.
func sweepEncode(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// sweepTab is a browser tab's websocket, read from the start of the sweep so its
// queue never fills; the test looks for frames by kind and event id.
type sweepTab struct {
	frames <-chan sweepFrame
	seen   map[string]json.RawMessage // "popup <id>" or "center <id>": the payload
}

type sweepFrame struct {
	Kind    string          `json:"kind"`
	Op      string          `json:"op"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
	Item    *struct {
		ID      string          `json:"id"`
		Payload json.RawMessage `json:"payload"`
	} `json:"item"`
}

func dialSweepTab(t *testing.T, d *daemon, tok string) *sweepTab {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.ep.HTTP, "http")+"/ws?token="+tok, nil)
	if err != nil {
		t.Fatalf("dial the websocket: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	_, hello, err := ws.Read(ctx)
	if err != nil || !bytes.Contains(hello, []byte(`"kind":"hello"`)) {
		t.Fatalf("hello %s: %v", hello, err)
	}
	frames := make(chan sweepFrame, 1024)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(frames)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f sweepFrame
			if err := json.Unmarshal(data, &f); err != nil {
				f = sweepFrame{Kind: "unreadable: " + string(data)}
			}
			select {
			case frames <- f:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		ws.CloseNow()
		<-done
	})
	return &sweepTab{frames: frames, seen: map[string]json.RawMessage{}}
}

// await returns the payload of the event's frame of kind popup or center (added).
func (tab *sweepTab) await(t *testing.T, kind, id string) json.RawMessage {
	t.Helper()
	key := kind + " " + id
	deadline := time.After(10 * time.Second)
	for {
		if p, ok := tab.seen[key]; ok {
			return p
		}
		select {
		case f, ok := <-tab.frames:
			if !ok {
				t.Fatalf("the websocket closed while waiting for the %s frame of %s", kind, id)
			}
			switch {
			case f.Kind == "popup":
				tab.seen["popup "+f.ID] = f.Payload
			case f.Kind == "center" && f.Op == "added" && f.Item != nil:
				tab.seen["center "+f.Item.ID] = f.Item.Payload
			case strings.HasPrefix(f.Kind, "unreadable"):
				t.Errorf("frame %s", f.Kind)
			}
		case <-deadline:
			t.Fatalf("no %s frame of %s within 10s", kind, id)
		}
	}
}

// deadLetterToken is the token a dead letter's subject holds for an account or user.
func deadLetterToken(s string) string {
	if events.ValidName(s) {
		return s
	}
	return "~"
}

// controlToSpace is how a header value shows a control character.
func controlToSpace(r rune) rune {
	if unicode.IsControl(r) {
		return ' '
	}
	return r
}
