package main

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The browser tests run /client.js and the demo page in headless Chromium against the
// whole daemon: embedded NATS, the router, the relay hub and the HTTP API. Events go in
// the way producers send them (NATS, or APP.notifications in the page) and the tests
// read what the user would see: the cards in the DOM.

func TestBrowserClient(t *testing.T) {
	// Pages of other origins on this host may open the websocket: the CRM page test.
	e := newBrowserEnv(t, map[string]string{"NOTIFY_ALLOWED_ORIGINS": "127.0.0.1:*"})

	t.Run("pop-ups published over NATS", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "42", "dismiss=0")
		if who := eval[string](t, tb, `document.getElementById('who').textContent`); who != "acme · user 42" {
			t.Errorf("the page shows %q as the user", who)
		}

		e.publish(t, "acme", "42", "show_message", "nats-message",
			`{"header":"Warning","text":"Connection established <b>now</b>","date":1714566795}`)
		c := tb.waitCard(t, `[data-id="nats-message"]`)
		if c.Type != "show_message" || c.Look != "message" || c.Title != "Warning" || c.Text != "Connection established now" || c.Date == "" {
			t.Errorf("show_message card %+v", c)
		}
		if bold := eval[string](t, tb, `document.querySelector('[data-id="nats-message"] .kn-text b').textContent`); bold != "now" {
			t.Errorf("the <b> of text is %q", bold)
		}

		e.publish(t, "acme", "42", "show_message_error", "nats-error",
			`{"header":"Warning","text":"Connection to the server is lost","link":"https://example.com/status"}`)
		c = tb.waitCard(t, `[data-id="nats-error"]`)
		if c.Look != "error" || c.Title != "Warning" || c.Text != "Connection to the server is lost" || !c.Clickable {
			t.Errorf("show_message_error card %+v", c)
		}
		if l := c.link(t, "kn-link"); l.Href != "https://example.com/status" || l.Target != "_blank" || !strings.Contains(l.Rel, "noopener") {
			t.Errorf("an absolute link must open a new tab without an opener: %+v", l)
		}

		for _, kind := range []string{"call", "error"} {
			e.publish(t, "acme", "42", "show_notification", "nats-notification-"+kind,
				`{"text":{"header":"Outgoing call","text":"Dialing the number +19872345678"},"type":"`+kind+`"}`)
			c = tb.waitCard(t, `[data-id="nats-notification-`+kind+`"]`)
			if c.Kind != kind || c.Look != kind || c.Title != "Outgoing call" || c.Text != "Dialing the number +19872345678" {
				t.Errorf("show_notification %s card %+v", kind, c)
			}
		}

		e.publish(t, "acme", "42", "add_call", "nats-call",
			`{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","to":"Jason Nash",`+
				`"element":{"id":18221265,"type":"contact"},"duration":250,"link":"https://example.com/dialog.mp3"}`)
		c = tb.waitCard(t, `[data-id="nats-call"]`)
		if c.Type != "add_call" || c.Look != "call" || c.Title != "Incoming call" || c.Text != "Call from +1 (415) 523-7743" ||
			c.Parties != "Jeremy Watts → Jason Nash" || c.Duration != "04:10" || !c.Clickable {
			t.Errorf("add_call card %+v", c)
		}
		if l := c.link(t, "kn-element"); l.Href != "/contacts/detail/18221265" || l.Target != "" {
			t.Errorf("the contact link must be a path opened in this tab: %+v", l)
		}
		if l := c.link(t, "kn-recording"); l.Href != "https://example.com/dialog.mp3" || l.Target != "_blank" || !strings.Contains(l.Rel, "noopener") {
			t.Errorf("recording link %+v", l)
		}

		// Newest on top: the stack lists the cards in the reverse order of arrival.
		order := eval[[]string](t, tb, `[...document.querySelectorAll('.kn-stack .kn-card')].map((c) => c.dataset.id)`)
		want := []string{"nats-call", "nats-notification-error", "nats-notification-call", "nats-error", "nats-message"}
		if strings.Join(order, ",") != strings.Join(want, ",") {
			t.Errorf("stack order %v, want %v", order, want)
		}
		if role := eval[string](t, tb, `document.querySelector('.kn-stack').getAttribute('role')`); role != "status" {
			t.Errorf("the stack's role is %q, want status (a polite live region)", role)
		}

		// The close button removes its card.
		tb.do(t, chromedp.Click(chromedp.CSS(`[data-id="nats-message"] .kn-close`)),
			chromedp.WaitNotPresent(chromedp.CSS(`[data-id="nats-message"]`)))
	})

	t.Run("the page's buttons call APP.notifications", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "42", "dismiss=0")
		// Oldest first, so that the last five (all three looks and a call) stay for the
		// screenshot: the stack keeps five.
		steps := []struct {
			button, card, title, text string
		}{
			{"add_error", `[data-type="add_error"]`, "Error", "Failed to set the task! Contact not found!"},
			{"show_message_error", `[data-type="show_message_error"]`, "Warning", "Connection to the server is lost"},
			{"show_notification_error", `[data-type="show_notification"][data-kind="error"]`, "Error", "Error working with the widget"},
			{"show_notification_call", `[data-type="show_notification"][data-kind="call"]`, "Outgoing call", "Dialing the number +19872345678"},
			{"add_call", `[data-type="add_call"]`, "Incoming call", "Call from +1 (415) 523-7743"},
			{"show_message", `[data-type="show_message"]`, "Warning", "Connection established"},
		}
		for _, s := range steps {
			tb.do(t, chromedp.Click(chromedp.CSS(`button[data-example="`+s.button+`"]`)))
			c := tb.waitCard(t, s.card)
			if c.Title != s.title || c.Text != s.text || c.ID == "" {
				t.Errorf("%s: card %+v", s.button, c)
			}
			tb.waitFor(t, `document.getElementById('result').dataset.state === 'ok'`)
			if got := eval[string](t, tb, `document.getElementById('result').textContent`); !strings.HasPrefix(got, "Accepted as "+c.ID) {
				t.Errorf("%s: the page says %q, want the id %s of the card", s.button, got, c.ID)
			}
		}
		if c := readCard(t, tb, `[data-type="show_message"]`); c.Images != 1 {
			t.Errorf("the show_message icon is missing: %+v", c)
		}
		if n := eval[int](t, tb, `document.querySelectorAll('.kn-stack .kn-card').length`); n != 5 {
			t.Errorf("%d cards in the stack, want the 5 newest", n)
		}
		if os.Getenv("NOTIFY_WRITE_SCREENSHOT") == "1" {
			// Every card has finished sliding in, the icon has loaded, and the pointer
			// hovers nothing.
			tb.do(t, chromedp.MouseEvent(chromedp.MouseMoved, 1, 799))
			tb.waitFor(t, `document.getAnimations().length === 0 && document.querySelector('.kn-icon img').complete`)
			png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "..", "docs", "popups.png")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	})

	t.Run("an error pop-up's link navigates", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "42", "dismiss=0")
		tb.do(t, chromedp.Click(chromedp.CSS(`button[data-example="add_error"]`)))
		c := tb.waitCard(t, `[data-type="add_error"]`)
		if l := c.link(t, "kn-link"); l.Href != "/contacts/list/?term=4951234567" || l.Target != "" {
			t.Fatalf("a path must open in this tab: %+v", l)
		}
		if got := tb.follow(t, `[data-type="add_error"] .kn-title a`); got != "/contacts/list/?term=4951234567" {
			t.Errorf("the link led to %s", got)
		}
	})

	t.Run("a click anywhere on an error card follows its link", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "42", "dismiss=0")
		e.publish(t, "acme", "42", "show_message_error", "card-click",
			`{"header":"Warning","text":"Connection to the server is lost","link":"/contacts/list/?term=4951234567"}`)
		tb.waitCard(t, `[data-id="card-click"]`)
		if got := tb.follow(t, `[data-id="card-click"] .kn-text`); got != "/contacts/list/?term=4951234567" {
			t.Errorf("the card led to %s", got)
		}
	})

	t.Run("payload markup never runs", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "42", "dismiss=0")
		tb.expectPolicyReports()
		hostileFramesStayInert(t, e, tb, "acme", "42")
		if n := tb.policyReportCount(t); n == 0 {
			t.Error("the page's policy blocked nothing: was the hostile markup parsed at all?")
		}
	})

	t.Run("payload markup never runs on a page without a policy", func(t *testing.T) {
		tb := e.openURL(t, e.hostPage(t, "acme", "44"))
		tb.waitStatus(t, "open")
		hostileFramesStayInert(t, e, tb, "acme", "44")
	})

	t.Run("another user gets nothing", func(t *testing.T) {
		mine := e.openDemo(t, "acme", "42", "dismiss=0")
		colleague := e.openDemo(t, "acme", "43", "dismiss=0")
		stranger := e.openDemo(t, "other", "42", "dismiss=0")

		e.publish(t, "acme", "42", "show_message", "private", `{"header":"For 42","text":"only"}`)
		mine.waitCard(t, `[data-id="private"]`)
		// An account-wide pop-up reaches every user of the account, and nobody else.
		e.publish(t, "acme", "_all", "show_message", "account-wide", `{"header":"For acme","text":"everyone"}`)
		mine.waitCard(t, `[data-id="account-wide"]`)
		colleague.waitCard(t, `[data-id="account-wide"]`)
		// Markers sent after both: once a tab shows its marker, anything routed to it
		// before has arrived too.
		e.publish(t, "other", "42", "show_message", "stranger-marker", `{"header":"For other/42","text":"marker"}`)
		stranger.waitCard(t, `[data-id="stranger-marker"]`)

		for name, tb := range map[string]*tab{"acme/43": colleague, "other/42": stranger} {
			if got := eval[bool](t, tb, `document.querySelector('[data-id="private"]') !== null`); got {
				t.Errorf("%s sees acme/42's pop-up", name)
			}
		}
		if got := eval[bool](t, stranger, `document.querySelector('[data-id="account-wide"]') !== null`); got {
			t.Error("other/42 sees acme's account-wide pop-up")
		}

		// The page's APP.notifications publish for its own user: acme/43 posts, acme/43 sees it.
		colleague.do(t, chromedp.Click(chromedp.CSS(`button[data-example="show_message_error"]`)))
		colleague.waitCard(t, `[data-type="show_message_error"]`)
	})

	t.Run("pop-ups dismiss themselves", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "42", "dismiss=1")
		e.publish(t, "acme", "42", "show_message", "short-lived", `{"header":"Soon gone","text":"one second"}`)
		tb.waitCard(t, `[data-id="short-lived"]`)
		tb.do(t, chromedp.WaitNotPresent(chromedp.CSS(`[data-id="short-lived"]`)))
	})

	t.Run("the client backs off, resumes, and stops on an expired token", func(t *testing.T) {
		// A stand-in WebSocket lets the test play the server: every socket the client
		// opens is kept in window.sockets for the test to open, feed and close.
		tb := e.openURL(t, e.servePage(t, fakeWebSocket, `
			window.statuses = [];
			window.conn = KommoNotify.connect({ token: TOKEN, onStatus: (s) => statuses.push(s) });`, "acme", "42"))
		tb.waitFor(t, `sockets.length === 1`)
		if u := eval[string](t, tb, `sockets[0].url`); !strings.HasPrefix(u, "ws://127.0.0.1:") || !strings.Contains(u, "/ws?token=ey") {
			t.Errorf("the websocket URL is %s, want the page's origin with ws: and the token", u)
		}
		tb.run(t, `sockets[0].accept({ kind: 'hello', account: 'acme', user: '42', unread: 2, seq: 5 })`)
		if s := eval[string](t, tb, `conn.status + ' ' + conn.unread`); s != "open 2" {
			t.Errorf("after the hello: %s", s)
		}

		// Lost: the client waits (about 0.5 s at first), comes back, and resumes after the
		// seq it has seen.
		tb.run(t, `sockets[0].lose(1006)`)
		tb.waitFor(t, `sockets.length === 2`)
		tb.run(t, `sockets[1].accept({ kind: 'hello', account: 'acme', user: '42', unread: 0, seq: 9 })`)
		if sent := eval[[]string](t, tb, `sockets[1].sent`); len(sent) != 1 || sent[0] != `{"op":"resume","after":5}` {
			t.Errorf("after a reconnect the client sent %v, want one resume after 5", sent)
		}

		// Lost again and again: each wait doubles with jitter, up to 30 s. The browser's
		// online event skips a wait, so the test need not sit through them.
		type wait struct{ Attempt, Delay float64 }
		waits := eval[[]wait](t, tb, `(() => {
			const waits = [];
			for (let i = 0; i < 9; i++) {
				sockets[sockets.length - 1].lose(1006);
				const s = statuses[statuses.length - 1];
				waits.push({ Attempt: s.attempt, Delay: s.delay });
				window.dispatchEvent(new Event('online'));
			}
			return waits;
		})()`)
		for i, w := range waits {
			step := min(500*math.Pow(2, w.Attempt-1), 30000)
			if w.Delay < step/2 || w.Delay > step || (i > 0 && w.Attempt != waits[i-1].Attempt+1) {
				t.Errorf("wait %d (attempt %.0f) is %.0f ms, want %.0f..%.0f", i+1, w.Attempt, w.Delay, step/2, step)
			}
		}
		if last := waits[len(waits)-1]; last.Delay < 15000 {
			t.Errorf("after %.0f attempts the wait is only %.0f ms; it should have reached the 30 s cap", last.Attempt, last.Delay)
		}

		// An expired token: no reconnecting until the page hands over a new one.
		tb.run(t, `(() => {
			const s = sockets[sockets.length - 1];
			s.accept({ kind: 'hello', account: 'acme', user: '42', unread: 0, seq: 9 });
			s.lose(1008, 'token expired');
			window.dispatchEvent(new Event('online'));
		})()`)
		before := eval[int](t, tb, `sockets.length`)
		if s := eval[string](t, tb, `conn.status`); s != "expired" {
			t.Errorf("status %s after the token expired", s)
		}
		tb.run(t, `conn.setToken('a.eyJhY2MiOiJhY21lIiwic3ViIjoiNDIifQ.c')`)
		tb.waitFor(t, fmt.Sprintf(`sockets.length === %d && sockets[%d].url.endsWith('token=a.eyJhY2MiOiJhY21lIiwic3ViIjoiNDIifQ.c')`, before+1, before))
	})

	t.Run("the client adds only its documented globals", func(t *testing.T) {
		// A file of the same origin, with no script, is the baseline of a window.
		bare := eval[[]string](t, e.open(t, "/demo/bell.svg"), `Object.getOwnPropertyNames(window)`)
		tb := e.openDemo(t, "acme", "42", "")
		seen := map[string]bool{}
		for _, name := range bare {
			seen[name] = true
		}
		var added []string
		for _, name := range eval[[]string](t, tb, `Object.getOwnPropertyNames(window)`) {
			if !seen[name] {
				added = append(added, name)
			}
		}
		slices.Sort(added)
		if want := []string{"APP", "KommoNotify"}; !slices.Equal(added, want) {
			t.Errorf("the page's globals beyond a bare window: %v, want %v", added, want)
		}
		api := eval[[]string](t, tb, `Object.keys(APP.notifications).sort()`)
		if want := []string{"add_call", "add_error", "show_message", "show_message_error", "show_notification"}; !slices.Equal(api, want) {
			t.Errorf("APP.notifications has %v", api)
		}
	})

	t.Run("without a token the page explains how to get one", func(t *testing.T) {
		tb := e.open(t, "/")
		tb.do(t, chromedp.WaitVisible(chromedp.ID("no-token")))
		how := eval[string](t, tb, `document.getElementById('no-token').textContent`)
		if !strings.Contains(how, "go run ./cmd/notify token --account demo --user 1") {
			t.Errorf("the page does not say how to mint a token:\n%s", how)
		}
		if eval[bool](t, tb, `!document.getElementById('try').hidden || document.querySelector('.kn-stack') !== null`) {
			t.Error("the page tries to connect without a token")
		}
	})
}

// hostileFramesStayInert sends account/user's tab markup made to run script, through
// the API (sanitized by the server) and as raw frames (not sanitized at all), clicks
// what a victim would click, and checks that nothing ran and nothing dangerous is in
// the DOM.
func hostileFramesStayInert(t *testing.T, e *browserEnv, tb *tab, account, user string) {
	t.Helper()
	// Ids of their own: the dispatcher drops a pop-up id it has routed before.
	id := func(name string) string { return "xss-" + account + "-" + user + "-" + name }
	sel := func(name string) string { return `[data-id="` + id(name) + `"]` }
	const img = `<img src=x onerror="window.__pwned=1">`
	const script = `<script>window.__pwned=1</script>`

	// Through the front door: the server sanitizes text, header is plain text.
	e.publish(t, account, user, "show_message", id("validated"), mustJSON(t, map[string]string{
		"header": img + script,
		"text":   img + script + `<a href="javascript:window.__pwned=1">click me</a> and <b>bold</b>`,
	}))
	c := tb.waitCard(t, sel("validated"))
	if c.Title != img+script {
		t.Errorf("the header must show its markup as text: %q", c.Title)
	}

	// Around it: frames straight onto the relay's subject, as nothing valid would
	// send them. The client must hold on its own.
	hostile := img + script + `<b onclick="window.__pwned=1">bold</b>` +
		`<a href="javascript:window.__pwned=1">js link</a>` +
		`<a href=" javascript:window.__pwned=1">spaced</a>` +
		`<a href="JaVaScRiPt:window.__pwned=1">mixed case</a>` +
		`<a href="/\evil.example/">backslash</a><a href="//evil.example/">protocol-relative</a>` +
		`<a href="data:text/html,<script>alert(1)</script>">data</a>` +
		`<svg onload="window.__pwned=1"><circle r="1"></circle></svg>` +
		`<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>` +
		`<math><mi xlink:href="javascript:window.__pwned=1">math</mi></math>` +
		`<style>body{display:none}</style><span style="color:red" id="evil">styled</span>` +
		`<p><a href="https://example.com/ok" onclick="window.__pwned=1">ok link</a></p>`
	e.inject(t, account, user, mustJSON(t, map[string]any{
		"kind": "popup", "type": "show_message", "id": id("raw"),
		"payload": map[string]any{"header": img, "text": hostile, "icon": "javascript:window.__pwned=1"},
	}))
	e.inject(t, account, user, mustJSON(t, map[string]any{
		"kind": "popup", "type": "show_message_error", "id": id("link"),
		"payload": map[string]any{"header": "Click me", "text": "x", "link": "javascript:window.__pwned=1"},
	}))
	e.inject(t, account, user, mustJSON(t, map[string]any{
		"kind": "popup", "type": "add_call", "id": id("call"),
		"payload": map[string]any{"text": "call", "from": img, "to": script, "duration": "250<img>",
			"element": map[string]any{"id": "1 onmouseover=alert(1)", "type": "contact"},
			"link":    "javascript:window.__pwned=1"},
	}))
	// Garbage a client must shrug off, then a pop-up to prove it still listens.
	for _, junk := range []string{`not json`, `[1,2]`, `null`, `{"kind":"popup","type":"drop_tables","id":"x","payload":{}}`,
		`{"kind":"popup","type":"show_message","id":"no-payload"}`, `{"kind":"from_the_future","x":1}`,
		`{"kind":"center","op":"added","item":{"seq":"NaN"},"unread":"lots"}`} {
		e.inject(t, account, user, junk)
	}
	e.publish(t, account, user, "show_message", id("after-junk"), `{"header":"Still here","text":"ok"}`)

	raw := tb.waitCard(t, sel("raw"))
	tb.waitCard(t, sel("link"))
	call := tb.waitCard(t, sel("call"))
	tb.waitCard(t, sel("after-junk"))

	if raw.Title != img {
		t.Errorf("raw header %q", raw.Title)
	}
	if !strings.Contains(raw.Text, "js link") || !strings.Contains(raw.Text, "ok link") || !strings.Contains(raw.Text, "styled") {
		t.Errorf("the text of dropped markup should stay readable: %q", raw.Text)
	}
	for _, l := range raw.Links {
		if l.Href != "https://example.com/ok" {
			t.Errorf("a link survived that must not: %+v", l)
		}
	}
	if len(raw.Links) != 1 {
		t.Errorf("want only the https link, got %+v", raw.Links)
	}
	if call.Parties != img+" → "+script || call.Duration != "" || len(call.Links) != 0 || call.Clickable {
		t.Errorf("add_call with hostile fields %+v", call)
	}

	// Click what a victim would click: the javascript: link's text, the error card
	// that has no valid link, the caller's name.
	tb.do(t,
		chromedp.Click(chromedp.CSS(sel("validated")+` .kn-text`)),
		chromedp.Click(chromedp.CSS(sel("link")+` .kn-title`)),
		chromedp.Click(chromedp.CSS(sel("call")+` .kn-parties`)),
	)
	if c := readCard(t, tb, sel("link")); c.Clickable || len(c.Links) != 0 {
		t.Errorf("an error card with a javascript: link must not be a link: %+v", c)
	}

	type verdict struct {
		Pwned      bool
		Dangerous  []string
		Attributes []string
		Hrefs      []string
		Path       string
		Hidden     bool
		Evil       bool
	}
	v := eval[verdict](t, tb, `(() => {
		const cards = [...document.querySelectorAll('.kn-stack .kn-card')];
		const all = cards.flatMap((c) => [...c.querySelectorAll('*')]);
		return {
			Pwned: window.__pwned !== undefined,
			Dangerous: all.filter((e) => /^(img|script|iframe|object|embed|style|math|form|input|base|link|meta)$/i.test(e.localName)
				&& !(e.localName === 'img' && e.closest('.kn-icon'))).map((e) => e.outerHTML),
			Attributes: all.flatMap((e) => [...e.attributes].map((a) => a.name))
				.filter((n) => n.startsWith('on') || n === 'style' || n === 'srcdoc' || n === 'xlink:href'),
			Hrefs: all.filter((e) => e.localName === 'a').map((a) => a.href)
				.filter((h) => !/^https?:/.test(h) || !(new URL(h).host === location.host || /^https:\/\/example\.com\//.test(h))),
			Path: location.pathname,
			Hidden: getComputedStyle(document.body).display === 'none',
			Evil: document.getElementById('evil') !== null,
		};
	})()`)
	if v.Pwned {
		t.Error("a payload ran script: window.__pwned is set")
	}
	for _, d := range v.Dangerous {
		t.Errorf("a card holds %s", d)
	}
	for _, a := range v.Attributes {
		t.Errorf("a card element has the attribute %s", a)
	}
	for _, h := range v.Hrefs {
		t.Errorf("a card links to %s", h)
	}
	if v.Path != "/" || v.Hidden || v.Evil {
		t.Errorf("the page changed: path %s, hidden %v, payload id present %v", v.Path, v.Hidden, v.Evil)
	}
	if imgs := eval[int](t, tb, `document.querySelectorAll('[data-id^="xss"] img').length`); imgs != 0 {
		t.Errorf("%d <img> elements in the hostile cards", imgs)
	}
}

// fakeWebSocket replaces the browser's WebSocket on a test page: the test accepts a
// socket (open, then a frame), feeds it frames and loses it with a close code.
const fakeWebSocket = `
window.sockets = [];
window.WebSocket = class extends EventTarget {
  static OPEN = 1;
  constructor(url) { super(); this.url = url; this.sent = []; this.readyState = 0; sockets.push(this); }
  send(data) { this.sent.push(data); }
  close() { this.readyState = 3; }
  accept(hello) { this.readyState = 1; this.dispatchEvent(new Event('open')); this.feed(hello); }
  feed(frame) { this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(frame) })); }
  lose(code, reason = '') { this.readyState = 3; this.dispatchEvent(new CloseEvent('close', { code, reason })); }
};`

// TestBrowserClientReconnects stops the daemon under an open page and starts it again
// on the same address: the page shows that it lost the connection, comes back on its
// own, and gets pop-ups again.
func TestBrowserClientReconnects(t *testing.T) {
	e := newBrowserEnvOnFixedPort(t)
	tb := e.openDemo(t, "acme", "42", "dismiss=0")

	e.d.stop(t)
	tb.waitStatus(t, "reconnecting")
	e.start(t)
	tb.waitStatus(t, "open")

	e.publish(t, "acme", "42", "show_message", "after-restart", `{"header":"Back","text":"again"}`)
	tb.waitCard(t, `[data-id="after-restart"]`)
}

// newBrowserEnvOnFixedPort is newBrowserEnv with an HTTP address that stays the same
// across restarts, as a deployment's does.
func newBrowserEnvOnFixedPort(t *testing.T) *browserEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return newBrowserEnv(t, map[string]string{"NOTIFY_HTTP_ADDR": addr})
}
