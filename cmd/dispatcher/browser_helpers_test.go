package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/events/token"
)

// testJWTSecret is the daemon's NOTIFY_JWT_SECRET in the browser tests, so a test can
// mint the tokens a CRM would hand its pages.
const testJWTSecret = "browser-test-secret-0123456789abcdef"

// browserTimeout bounds each wait on the page; nothing in these tests should take a
// fraction of it.
const browserTimeout = 20 * time.Second

// chromium finds the browser: /usr/bin/chromium, or chromium on PATH. Without one the
// test is skipped on a developer machine and fails in CI, where a browser test that
// does not run is a hole in the suite.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install -y chromium): CI must run the browser tests")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser tests")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and exactly the flags
// below (chromedp adds only the DevTools pipe and the first about:blank page), so it
// makes no request of its own: no component updates, no first-run pages.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	output := &syncBuffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(output),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Cleanups run last-in first-out: the browser goes before its profile directory.
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx alone
		t.Fatalf("start chromium: %v\n%s", err, output.String())
	}
	return ctx
}

// browserEnv is a daemon on embedded NATS, a producer connection to it, and a browser.
type browserEnv struct {
	d       *daemon
	env     map[string]string
	nc      *nats.Conn
	signer  *token.Signer
	browser context.Context
}

// newBrowserEnv starts a browser and a daemon whose environment is embeddedEnv's plus
// the test secret and extra.
func newBrowserEnv(t *testing.T, extra map[string]string) *browserEnv {
	t.Helper()
	browser := newBrowser(t)
	signer, err := token.NewSigner([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	env := embeddedEnv(t)
	env["NOTIFY_JWT_SECRET"] = testJWTSecret
	for k, v := range extra {
		env[k] = v
	}
	e := &browserEnv{env: env, signer: signer, browser: browser}
	e.start(t)
	return e
}

// start runs the daemon and connects the producer to its NATS server.
func (e *browserEnv) start(t *testing.T) {
	t.Helper()
	e.d = startDaemon(t, e.env)
	resp, err := http.Get(e.d.ep.HTTP + "/client.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /client.js: %d; the daemon must mount web.Handler() on web.Patterns()", resp.StatusCode)
	}
	nc, err := nats.Connect(e.d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
}

func (e *browserEnv) token(t *testing.T, account, user string) string {
	t.Helper()
	tok, err := e.signer.Mint(account, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish sends a producer's event as `nats request` does, with id as its
// Nats-Msg-Id, and fails unless the dispatcher (show_*) or JetStream (add_*) took it.
func (e *browserEnv) publish(t *testing.T, account, user, typ, id, payload string) {
	t.Helper()
	msg := nats.NewMsg(fmt.Sprintf("notify.%s.%s.%s", account, user, typ))
	msg.Header.Set(nats.MsgIdHdr, id)
	msg.Data = []byte(payload)
	// A daemon reports it started before its router has subscribed, so the first
	// request may find nobody listening yet: ask again until it answers.
	deadline := time.Now().Add(10 * time.Second)
	retry := time.NewTicker(10 * time.Millisecond)
	defer retry.Stop()
	var reply *nats.Msg
	for {
		var err error
		reply, err = e.nc.RequestMsg(msg, 10*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			t.Fatalf("publish %s: %v", typ, err)
		}
		<-retry.C
	}
	if strings.Contains(string(reply.Data), `"error"`) {
		t.Fatalf("publish %s %s: %s", typ, payload, reply.Data)
	}
}

// inject publishes a raw websocket frame on the relay's internal subject, the way a
// buggy or compromised producer of frames would: it reaches the browser unvalidated,
// which is what the client's own defenses are for.
func (e *browserEnv) inject(t *testing.T, account, user string, frame string) {
	t.Helper()
	if err := e.nc.Publish("ui."+account+"."+user, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// tab is one page of the browser. Its console is watched from the first event on.
type tab struct {
	ctx context.Context // bounded by browserTimeout

	mu             sync.Mutex
	noise          []string // console calls, uncaught exceptions, policy violations
	policyReports  int      // policy violations, counted apart when expected
	expectBlocking bool
}

// expectPolicyReports is for pages fed hostile markup on purpose. Chrome checks the
// page's Content-Security-Policy for every event handler and style attribute it
// parses, even in the inert document client.js parses text into, and logs each as
// blocked. Those reports are the policy standing as a second wall; the server's
// sanitizer never lets such attributes through, so a page fed by it logs none.
func (tb *tab) expectPolicyReports() {
	tb.mu.Lock()
	tb.expectBlocking = true
	tb.mu.Unlock()
}

// open loads the dispatcher's path (with its query) in a new tab.
func (e *browserEnv) open(t *testing.T, path string) *tab {
	t.Helper()
	return e.openURL(t, e.d.ep.HTTP+path)
}

// openURL loads address in a new tab at 1280x800 and fails the test at the end if the
// page wrote to the console, threw, or broke its security policy.
func (e *browserEnv) openURL(t *testing.T, address string) *tab {
	t.Helper()
	return e.openURLWith(t, address, "")
}

// openURLWith is openURL with a script the tab runs in every document before the
// page's own scripts (a test's hook; it is no page script, so no policy applies).
func (e *browserEnv) openURLWith(t *testing.T, address, preload string) *tab {
	t.Helper()
	tb := &tab{}
	tabCtx, cancel := chromedp.NewContext(e.browser, chromedp.WithListener(tb.listen))
	t.Cleanup(cancel)
	if err := chromedp.Do(tabCtx); err != nil { // opens the tab with no deadline on its life
		t.Fatal(err)
	}
	ctx, cancelTimeout := context.WithTimeout(tabCtx, browserTimeout)
	t.Cleanup(cancelTimeout)
	tb.ctx = ctx
	t.Cleanup(func() { tb.checkQuiet(t) })
	if preload != "" {
		tb.do(t, func(ctx context.Context, target *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, target, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: preload})
			return chromedp.Void{}, err
		})
	}
	tb.do(t, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(address))
	return tb
}

// openDemo opens the demo page as account/user and waits until its websocket is open.
func (e *browserEnv) openDemo(t *testing.T, account, user string, query string) *tab {
	t.Helper()
	return e.openDemoWith(t, account, user, query, "")
}

// openDemoWith is openDemo with a preload script, as for openURLWith.
func (e *browserEnv) openDemoWith(t *testing.T, account, user, query, preload string) *tab {
	t.Helper()
	q := url.Values{"token": {e.token(t, account, user)}}
	extra, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		q[k] = v
	}
	tb := e.openURLWith(t, e.d.ep.HTTP+"/?"+q.Encode(), preload)
	tb.waitStatus(t, "open")
	return tb
}

// hostPage is a CRM's page on an origin of its own: it loads client.js from the
// dispatcher and connects as account/user, and it has no Content-Security-Policy, so
// whatever keeps a payload from running there is client.js itself. The dispatcher must
// allow the origin (NOTIFY_ALLOWED_ORIGINS).
func (e *browserEnv) hostPage(t *testing.T, account, user string) string {
	t.Helper()
	return e.servePage(t, "", template.JS(`KommoNotify.connect({ token: TOKEN, url: DISPATCHER, dismissAfter: 0,
  onStatus: (s) => { document.getElementById('status').dataset.status = s.status; } });`), account, user)
}

// servePage serves a page of its own origin, without a policy, that runs before, then
// client.js from the dispatcher, then after; the scripts see the constants TOKEN (a
// token for account/user) and DISPATCHER (the dispatcher's URL).
func (e *browserEnv) servePage(t *testing.T, before, after template.JS, account, user string) string {
	t.Helper()
	page := template.Must(template.New("crm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRM</title><link rel="icon" href="data:,"></head>
<body><h1>A CRM page</h1><span id="status" data-status="idle"></span>
<script>const TOKEN = {{.Token}}, DISPATCHER = {{.Dispatcher}};
{{.Before}}</script>
<script src="{{.Dispatcher}}/client.js"></script>
<script>{{.After}}</script></body></html>`))
	data := struct {
		Dispatcher, Token string
		Before, After     template.JS
	}{e.d.ep.HTTP, e.token(t, account, user), before, after}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, data); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func (tb *tab) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		line = fmt.Sprintf("console.%s(%s)", ev.Type, strings.Join(args, ", "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "uncaught: " + d.Text
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		// Network errors are the browser's to report (a test follows a link to a path
		// that answers 404); what the page's code or policy causes is not.
		if ev.Entry.Source == log.EntrySourceNetwork {
			return
		}
		line = fmt.Sprintf("%s %s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text)
	default:
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if e, ok := ev.(*log.EventEntryAdded); ok && tb.expectBlocking && e.Entry.Source == log.EntrySourceSecurity &&
		strings.Contains(e.Entry.Text, "Content Security Policy") && strings.Contains(e.Entry.Text, "has been blocked") {
		tb.policyReports++
		return
	}
	tb.noise = append(tb.noise, line)
}

// policyReportCount is how many expected policy reports the page logged.
func (tb *tab) policyReportCount(t *testing.T) int {
	t.Helper()
	_, _ = chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](`0`)) // the listener has seen what came before
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.policyReports
}

// checkQuiet fails the test for anything the page wrote to its console. A round trip
// first: the listener has seen every event that arrived before its answer.
func (tb *tab) checkQuiet(t *testing.T) {
	t.Helper()
	_, _ = chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](`0`))
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, line := range tb.noise {
		t.Errorf("the page's console: %s", line)
	}
}

func (tb *tab) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// follow clicks selector and waits until the tab has navigated away, then returns
// the new location's path and query as the page sees them.
func (tb *tab) follow(t *testing.T, selector string) string {
	t.Helper()
	mainFrame := func(ev page.EventFrameNavigated) bool { return ev.Frame.ParentID == "" }
	if _, err := chromedp.Run(tb.ctx, chromedp.WaitEvent(page.FrameNavigated, mainFrame, chromedp.Click(chromedp.CSS(selector)))); err != nil {
		t.Fatalf("click %s: %v", selector, err)
	}
	return eval[string](t, tb, `location.pathname + location.search`)
}

// eval runs expression in the page and decodes its JSON value into a T.
func eval[T any](t *testing.T, tb *tab, expression string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		t.Fatalf("%s: %v", expression, err)
	}
	return v
}

// run runs expression in the page for its effect.
func (tb *tab) run(t *testing.T, expression string) {
	t.Helper()
	eval[chromedp.Void](t, tb, expression)
}

// waitFor polls a JavaScript condition until it holds, on every animation frame.
func (tb *tab) waitFor(t *testing.T, condition string) {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[chromedp.Void](condition, chromedp.WithPollingTimeout(browserTimeout))); err != nil {
		t.Fatalf("waiting for %s: %v", condition, err)
	}
}

func (tb *tab) waitStatus(t *testing.T, status string) {
	t.Helper()
	tb.waitFor(t, fmt.Sprintf(`document.getElementById('status').dataset.status === %q`, status))
}

// waitCard waits until the card that selector (inside the stack) names is visible.
func (tb *tab) waitCard(t *testing.T, selector string) card {
	t.Helper()
	tb.do(t, chromedp.WaitVisible(chromedp.CSS(".kn-stack "+selector)))
	return readCard(t, tb, selector)
}

// card is what a test reads from a pop-up in the DOM.
type card struct {
	Type, Kind, ID, Look string
	Title, Text, Date    string
	Parties, Duration    string
	Clickable            bool
	Links                []link
	Images               int // <img> elements: only a show_message icon may have one
}

type link struct {
	Text, Href, Target, Rel, Class string
}

// readCard reads the first card matching selector.
func readCard(t *testing.T, tb *tab, selector string) card {
	t.Helper()
	return eval[card](t, tb, fmt.Sprintf(`(() => {
		const c = document.querySelector(%q);
		const text = (sel) => { const e = c.querySelector(sel); return e ? e.textContent : ''; };
		return {
			Type: c.dataset.type || '', Kind: c.dataset.kind || '', ID: c.dataset.id || '',
			Look: ['message', 'error', 'call'].find((l) => c.classList.contains('kn-' + l)) || '',
			Title: text('.kn-title'), Text: text('.kn-text'), Date: text('.kn-date'),
			Parties: text('.kn-parties'), Duration: text('.kn-duration'),
			Clickable: c.classList.contains('kn-clickable'),
			Links: [...c.querySelectorAll('a')].map((a) => ({
				Text: a.textContent, Href: a.getAttribute('href') || '', Target: a.target, Rel: a.rel, Class: a.className })),
			Images: c.querySelectorAll('img').length,
		};
	})()`, ".kn-stack "+selector))
}

func (c card) link(t *testing.T, class string) link {
	t.Helper()
	for _, l := range c.Links {
		if strings.Contains(" "+l.Class+" ", " "+class+" ") {
			return l
		}
	}
	t.Fatalf("card %s has no link .%s: %+v", c.ID, class, c.Links)
	return link{}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
