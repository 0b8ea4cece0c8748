package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The notification center's bell on the demo page, in headless Chromium against the
// whole daemon: add_error and add_call go in over NATS, and the tests read the badge
// and the dropdown the user sees, in several tabs of one user at once.

func TestBrowserCenter(t *testing.T) {
	e := newCenterBrowserEnv(t)
	base := e.d.ep.HTTP // NOTIFY_BASE_URL: the element links lead to this origin

	t.Run("two tabs show one badge, and mark all read clears both", func(t *testing.T) {
		a := e.openDemo(t, "acme", "50", "dismiss=0")
		b := e.openDemo(t, "acme", "50", "dismiss=0")
		for _, tb := range []*tab{a, b} {
			tb.waitBadge(t, 0)
		}

		e.publish(t, "acme", "50", "add_error", "tabs-error",
			`{"header":"Error","text":"Failed to set the task! <b>Contact not found!</b>","link":"/contacts/list/?term=4951234567"}`)
		e.waitUnread(t, "acme", "50", 1) // stored first: the call is the newer
		e.publish(t, "acme", "50", "add_call", "tabs-call",
			`{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","to":"Jason Nash",`+
				`"element":{"id":18221265,"type":"contact"},"duration":250,"link":"https://example.com/dialog.mp3"}`)
		for _, tb := range []*tab{a, b} {
			tb.waitBadge(t, 2)
		}

		a.openBell(t)
		if ids := a.itemIDs(t); !slices.Equal(ids, []string{"tabs-call", "tabs-error"}) {
			t.Errorf("the list holds %v, want the call above the error (newest first)", ids)
		}
		call := a.readItem(t, "tabs-call")
		if call.Type != "add_call" || call.Look != "call" || !call.Unread || call.Title != "Incoming call" ||
			call.Text != "Call from +1 (415) 523-7743" || call.Parties != "Jeremy Watts → Jason Nash" ||
			call.Duration != "04:10" || call.Date == "" || !call.Clickable {
			t.Errorf("add_call item %+v", call)
		}
		if l := call.link(t, "kn-element"); l.Href != base+"/contacts/detail/18221265" || l.Target != "" || l.Text != "Open contact" {
			t.Errorf("the contact is on this origin and must open in this tab: %+v", l)
		}
		if l := call.link(t, "kn-recording"); l.Href != "https://example.com/dialog.mp3" || l.Target != "_blank" || !strings.Contains(l.Rel, "noopener") {
			t.Errorf("the recording must open in a new tab without an opener: %+v", l)
		}
		errItem := a.readItem(t, "tabs-error")
		if errItem.Type != "add_error" || errItem.Look != "error" || !errItem.Unread || errItem.Title != "Error" ||
			errItem.Text != "Failed to set the task! Contact not found!" || !errItem.Clickable {
			t.Errorf("add_error item %+v", errItem)
		}
		if l := errItem.link(t, "kn-link"); l.Href != base+"/contacts/list/?term=4951234567" || l.Target != "" {
			t.Errorf("the error's link %+v", l)
		}

		a.do(t, chromedp.Click(chromedp.CSS(`.kn-bell .kn-mark-all`)))
		for _, tb := range []*tab{b, a} { // the other tab first: it hears of it only from the server
			tb.waitBadge(t, 0)
		}
		a.waitFor(t, `document.querySelectorAll('.kn-bell .kn-item.kn-unread').length === 0`)
		if s := eval[string](t, a, `document.querySelector('.kn-bell .kn-mark-all').getAttribute('aria-disabled')`); s != "true" {
			t.Errorf("mark all read stays enabled with nothing unread: aria-disabled %q", s)
		}

		// The other tab opens its list after the fact: from the API, all read.
		b.openBell(t)
		if ids := b.itemIDs(t); !slices.Equal(ids, []string{"tabs-call", "tabs-error"}) {
			t.Errorf("the other tab lists %v", ids)
		}
		if n := eval[int](t, b, `document.querySelectorAll('.kn-bell .kn-item.kn-unread').length`); n != 0 {
			t.Errorf("%d items unread in the other tab after mark all read", n)
		}
	})

	t.Run("marking one read updates every tab, even when the click navigates", func(t *testing.T) {
		a := e.openDemo(t, "acme", "51", "dismiss=0")
		b := e.openDemo(t, "acme", "51", "dismiss=0")
		e.publish(t, "acme", "51", "add_error", "one-first", `{"text":"The first error"}`)
		e.publish(t, "acme", "51", "add_error", "one-second", `{"text":"The second error","link":"/contacts/list/?term=42"}`)
		a.waitBadge(t, 2)
		b.waitBadge(t, 2)

		// The dot of an unread item is its "mark as read" button.
		b.openBell(t)
		b.do(t, chromedp.Click(chromedp.CSS(`.kn-bell [data-id="one-first"] .kn-item-read`)))
		a.waitBadge(t, 1)
		b.waitBadge(t, 1)
		if it := b.readItem(t, "one-first"); it.Unread {
			t.Errorf("the item marked read still looks unread: %+v", it)
		}
		if it := b.readItem(t, "one-second"); !it.Unread {
			t.Errorf("the other item looks read: %+v", it)
		}

		// A click on an item with a link of this origin marks it read and follows the
		// link in this tab; the mark outlives the page it was sent from.
		a.openBell(t)
		if got := a.follow(t, `.kn-bell [data-id="one-second"] .kn-text`); got != "/contacts/list/?term=42" {
			t.Errorf("the item led to %s", got)
		}
		b.waitBadge(t, 0)
		b.waitFor(t, `!document.querySelector('.kn-bell [data-id="one-second"]').classList.contains('kn-unread')`)
	})

	t.Run("a reconnect resumes the items added while away", func(t *testing.T) {
		tb := e.openDemoWith(t, "acme", "52", "dismiss=0", socketHook)
		e.publish(t, "acme", "52", "add_error", "away-0", `{"text":"Before the break"}`)
		tb.waitBadge(t, 1)
		tb.openBell(t)
		seq0 := e.centerPage(t, "acme", "52")[0].Seq

		// The connection drops and stays down (the hook refuses new sockets) while
		// three items arrive and the center stores them.
		tb.run(t, `__test.hold(true); __test.sockets[__test.sockets.length - 1].close()`)
		tb.waitStatus(t, "reconnecting")
		e.publish(t, "acme", "52", "add_error", "away-1", `{"text":"While away, one"}`)
		e.publish(t, "acme", "52", "add_call", "away-2", `{"text":"While away, a call","from":"Jeremy Watts","duration":61}`)
		e.publish(t, "acme", "52", "add_error", "away-3", `{"text":"While away, three"}`)
		e.waitUnread(t, "acme", "52", 4)
		if n := eval[string](t, tb, `document.querySelector('.kn-bell .kn-badge').textContent`); n != "1" {
			t.Errorf("the badge says %s while the tab is disconnected", n)
		}

		// Back: the client resumes after the last seq it saw and gets the rest.
		tb.run(t, `__test.hold(false); window.dispatchEvent(new Event('online'))`)
		tb.waitStatus(t, "open")
		tb.waitBadge(t, 4)
		tb.waitFor(t, `document.querySelectorAll('.kn-bell .kn-item').length === 4`)
		// The server's order, newest first. (Items published back to back may be stored,
		// and numbered, in another order than they were published.)
		stored := e.centerPage(t, "acme", "52")
		if ids := tb.itemIDs(t); !slices.Equal(ids, storedIDs(stored)) {
			t.Errorf("after the reconnect the list is %v, the server's %v", ids, storedIDs(stored))
		}
		if it := tb.readItem(t, "away-2"); it.Parties != "Jeremy Watts" || it.Duration != "01:01" {
			t.Errorf("the resumed call %+v", it)
		}

		type socket struct {
			Sent     []string
			Received []bellFrame
		}
		last := eval[socket](t, tb, `(() => {
			const s = __test.sockets[__test.sockets.length - 1];
			return { Sent: s.sent, Received: s.received.map((d) => JSON.parse(d)) };
		})()`)
		if want := fmt.Sprintf(`{"op":"resume","after":%d}`, seq0); !slices.Equal(last.Sent, []string{want}) {
			t.Errorf("the new socket sent %v, want %s", last.Sent, want)
		}
		var replayed []string
		resumed := false
		for _, f := range last.Received {
			switch {
			case f.Kind == "center" && f.Op == "added" && !resumed:
				replayed = append(replayed, f.Item.ID)
			case f.Kind == "center" && f.Op == "resumed":
				resumed = true
				if f.Unread != 4 {
					t.Errorf("resumed says %d unread, want 4", f.Unread)
				}
			}
		}
		// The three added while away, in seq order. (A live frame the center published
		// just as the tab came back may come in between: the client keeps items by id.)
		want := storedIDs(stored[:3])
		slices.Reverse(want)
		if !resumed || !isSubsequence(want, replayed) {
			t.Errorf("the resume replayed %v (resumed: %v), want %v in this order", replayed, resumed, want)
		}
	})

	t.Run("pages load on demand, and an item can be deleted", func(t *testing.T) {
		const n = 25 // more than a page of the bell (20)
		for i := range n {
			e.publish(t, "acme", "55", "add_error", fmt.Sprintf("page-%02d", i), fmt.Sprintf(`{"text":"Error number %d"}`, i))
		}
		e.waitUnread(t, "acme", "55", n)
		tb := e.openDemo(t, "acme", "55", "dismiss=0")
		tb.waitBadge(t, n)
		tb.openBell(t)
		tb.waitFor(t, `document.querySelectorAll('.kn-bell .kn-item').length === 20`)
		tb.do(t, chromedp.Click(chromedp.CSS(`.kn-bell .kn-more`)))
		tb.waitFor(t, fmt.Sprintf(`document.querySelectorAll('.kn-bell .kn-item').length === %d`, n))
		tb.do(t, chromedp.WaitNotVisible(chromedp.CSS(`.kn-bell .kn-more`)))
		stored := storedIDs(e.centerPage(t, "acme", "55"))
		if ids := tb.itemIDs(t); !slices.Equal(ids, stored) {
			t.Errorf("the pages hold %v, the server %v", ids, stored)
		}

		tb.do(t, chromedp.Click(chromedp.CSS(`.kn-bell [data-id="`+stored[0]+`"] .kn-item-delete`)))
		tb.do(t, chromedp.WaitNotPresent(chromedp.CSS(`.kn-bell [data-id="`+stored[0]+`"]`)))
		tb.waitBadge(t, n-1)
		if after := storedIDs(e.centerPage(t, "acme", "55")); !slices.Equal(after, stored[1:]) {
			t.Errorf("after the delete the server holds %v", after)
		}
	})

	t.Run("the bell works from the keyboard", func(t *testing.T) {
		e.publish(t, "acme", "56", "add_error", "keys-1", `{"text":"One"}`)
		e.waitUnread(t, "acme", "56", 1) // stored first: keys-2 is the newer
		e.publish(t, "acme", "56", "add_error", "keys-2", `{"text":"Two","link":"https://example.com/two"}`)
		e.waitUnread(t, "acme", "56", 2)
		tb := e.openDemo(t, "acme", "56", "dismiss=0")
		tb.waitBadge(t, 2)
		type aria struct{ Label, Expanded, Controls, Role, Region string }
		read := func() aria {
			return eval[aria](t, tb, `(() => {
				const b = document.querySelector('.kn-bell-button');
				const p = document.getElementById(b.getAttribute('aria-controls'));
				return { Label: b.getAttribute('aria-label'), Expanded: b.getAttribute('aria-expanded'),
					Controls: p ? p.id : '', Role: p ? p.getAttribute('role') : '',
					Region: p ? document.getElementById(p.getAttribute('aria-labelledby')).textContent : '' };
			})()`)
		}
		if got := read(); got.Label != "Notifications, 2 unread" || got.Expanded != "false" || got.Controls == "" ||
			got.Role != "region" || got.Region != "Notifications" {
			t.Errorf("closed bell %+v", got)
		}

		tb.do(t, chromedp.Focus(chromedp.CSS(`.kn-bell-button`)), chromedp.KeyEvent(kb.Enter))
		tb.do(t, chromedp.WaitVisible(chromedp.CSS(`.kn-bell [data-id="keys-1"]`)))
		if got := read(); got.Expanded != "true" {
			t.Errorf("open bell %+v", got)
		}
		focused := func() string {
			return eval[string](t, tb, `(() => {
				const a = document.activeElement, li = a.closest('.kn-item');
				return (li ? li.dataset.id + ' ' : '') + a.className;
			})()`)
		}
		tb.do(t, chromedp.KeyEvent(kb.ArrowDown))
		if got := focused(); got != "keys-2 kn-item-title kn-link" {
			t.Errorf("ArrowDown from the bell focuses %q, want the newest item's link", got)
		}
		tb.do(t, chromedp.KeyEvent(kb.ArrowDown))
		if got := focused(); got != "keys-1 kn-item-read" {
			t.Errorf("the next ArrowDown focuses %q, want the next item's first control", got)
		}
		tb.do(t, chromedp.KeyEvent(kb.Enter)) // marks keys-1 read; focus stays in its row
		tb.waitBadge(t, 1)
		if got := focused(); got != "keys-1 kn-item-delete" {
			t.Errorf("after marking read the focus is on %q", got)
		}
		tb.do(t, chromedp.KeyEvent(kb.Escape))
		tb.do(t, chromedp.WaitNotVisible(chromedp.CSS(`.kn-bell .kn-panel`)))
		if got := focused(); got != "kn-bell-button" {
			t.Errorf("Escape leaves the focus on %q, want the bell", got)
		}
		if got := read(); got.Expanded != "false" || got.Label != "Notifications, 1 unread" {
			t.Errorf("after Escape %+v", got)
		}

		// A click elsewhere on the page closes it too.
		tb.openBell(t)
		tb.do(t, chromedp.Click(chromedp.CSS(`#try-title`)), chromedp.WaitNotVisible(chromedp.CSS(`.kn-bell .kn-panel`)))
	})

	t.Run("payload markup never runs in the list", func(t *testing.T) {
		tb := e.openDemo(t, "acme", "53", "dismiss=0")
		tb.expectPolicyReports()
		const img = `<img src=x onerror="window.__pwned=1">`
		const script = `<script>window.__pwned=1</script>`
		e.publish(t, "acme", "53", "add_error", "xss-validated", mustJSON(t, map[string]string{
			"header": img + script,
			"text":   img + script + `<a href="javascript:window.__pwned=1">click me</a> and <b>bold</b>`,
		}))
		tb.waitBadge(t, 1)
		tb.openBell(t)
		if it := tb.readItem(t, "xss-validated"); it.Title != img+script || it.Text != "click me and bold" {
			t.Errorf("the validated item %+v: the header must show its markup as text", it)
		}

		// Items straight onto the relay's subject, as the center would never send
		// them: the client must hold on its own.
		hostile := img + script + `<b onclick="window.__pwned=1">bold</b><a href="javascript:window.__pwned=1">js link</a>` +
			`<a href="/\evil.example/">backslash</a><svg onload="window.__pwned=1"></svg>` +
			`<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe><span style="color:red" id="evil">styled</span>` +
			`<p><a href="https://example.com/ok" onclick="window.__pwned=1">ok link</a></p>`
		item := func(id string, seq int, typ string, payload map[string]any, click, recording string) string {
			return mustJSON(t, map[string]any{"kind": "center", "op": "added", "unread": 3, "item": map[string]any{
				"id": id, "type": typ, "seq": 1_000_000 + seq, "created_at": 1714566795, "read": false, "payload": payload,
				"links": map[string]string{"click": click, "recording": recording}}})
		}
		e.inject(t, "acme", "53", item("xss-raw", 1, "add_error",
			map[string]any{"header": img, "text": hostile}, "javascript:window.__pwned=1", ""))
		e.inject(t, "acme", "53", item("xss-call", 2, "add_call",
			map[string]any{"text": "call", "from": img, "to": script, "duration": "250<img>",
				"element": map[string]any{"id": 1, "type": "__proto__"}},
			" https://example.com/spaced", "data:text/html,<script>parent.__pwned=1</script>"))
		e.inject(t, "acme", "53", item("xss-relative", 3, "add_error",
			map[string]any{"header": "Protocol-relative", "text": "x"}, "//evil.example/", "javascript:window.__pwned=1"))
		for _, junk := range []string{
			`{"kind":"center","op":"added","item":{"id":"no-seq","payload":{}},"unread":1}`,
			`{"kind":"center","op":"added","item":{"id":{"x":1},"seq":5},"unread":1}`,
			`{"kind":"center","op":"read","ids":"xss-raw","unread":"none"}`,
			`{"kind":"center","op":"deleted","ids":[1,null]}`,
			`{"kind":"center","op":"from_the_future"}`,
		} {
			e.inject(t, "acme", "53", junk)
		}
		e.inject(t, "acme", "53", item("xss-after-junk", 4, "add_error", map[string]any{"text": "still here"}, "", ""))
		tb.do(t, chromedp.WaitVisible(chromedp.CSS(`.kn-bell [data-id="xss-after-junk"]`)))

		raw := tb.readItem(t, "xss-raw")
		if raw.Title != img || !strings.Contains(raw.Text, "js link") || !strings.Contains(raw.Text, "ok link") || raw.Clickable {
			t.Errorf("the raw item %+v", raw)
		}
		if len(raw.Links) != 1 || raw.Links[0].Href != "https://example.com/ok" {
			t.Errorf("the raw item keeps links it must not: %+v", raw.Links)
		}
		call := tb.readItem(t, "xss-call")
		if call.Parties != img+" → "+script || call.Duration != "" || len(call.Links) != 0 || call.Clickable {
			t.Errorf("the call with hostile fields %+v", call)
		}
		if it := tb.readItem(t, "xss-relative"); len(it.Links) != 0 || it.Clickable {
			t.Errorf("a protocol-relative click link survived: %+v", it)
		}
		if ids := tb.itemIDs(t); slices.Contains(ids, "no-seq") || len(ids) != 5 {
			t.Errorf("the list holds %v", ids)
		}

		// Click what a victim would click.
		for _, sel := range []string{`[data-id="xss-raw"] .kn-item-title`, `[data-id="xss-raw"] .kn-text b`,
			`[data-id="xss-call"] .kn-parties`, `[data-id="xss-relative"] .kn-item-title`, `[data-id="xss-validated"] .kn-text`} {
			tb.do(t, chromedp.Click(chromedp.CSS(`.kn-bell `+sel)))
		}
		type verdict struct {
			Pwned                        bool
			Dangerous, Attributes, Hrefs []string
			Path                         string
			Evil                         bool
		}
		v := eval[verdict](t, tb, `(() => {
			const all = [...document.querySelectorAll('.kn-bell *')];
			return {
				Pwned: window.__pwned !== undefined,
				Dangerous: all.filter((e) => /^(img|script|iframe|object|embed|style|form|input|base|link|meta)$/i.test(e.localName))
					.map((e) => e.outerHTML),
				// The panel's own style holds its shift (see place in client.js), nothing else.
				Attributes: all.flatMap((e) => [...e.attributes]
					.filter((a) => !(e.classList.contains('kn-panel') && a.name === 'style' && /^--kn-shift: -?\d+px;$/.test(a.value)))
					.map((a) => a.name))
					.filter((n) => n.startsWith('on') || n === 'style' || n === 'srcdoc' || n === 'xlink:href'),
				Hrefs: all.filter((e) => e.localName === 'a').map((a) => a.href).filter((h) => h !== 'https://example.com/ok'),
				Path: location.pathname,
				Evil: document.getElementById('evil') !== null,
			};
		})()`)
		if v.Pwned {
			t.Error("a center item ran script: window.__pwned is set")
		}
		for _, d := range v.Dangerous {
			t.Errorf("the list holds %s", d)
		}
		for _, a := range v.Attributes {
			t.Errorf("an element of the list has the attribute %s", a)
		}
		for _, h := range v.Hrefs {
			t.Errorf("the list links to %s", h)
		}
		if v.Path != "/" || v.Evil {
			t.Errorf("the page changed: path %s, payload id present %v", v.Path, v.Evil)
		}
	})

	t.Run("a page without the bell option gets no bell", func(t *testing.T) {
		tb := e.openURL(t, e.hostPage(t, "acme", "57"))
		tb.waitStatus(t, "open")
		if eval[bool](t, tb, `document.querySelector('.kn-bell') !== null`) {
			t.Error("the client rendered a bell nobody asked for")
		}
	})

	t.Run("the dropdown over a few items", func(t *testing.T) {
		// Items that wait for the user: the page opens onto a badge, not pop-ups. One
		// at a time, so that they are stored in this order.
		ago := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }
		for i, ev := range []struct{ typ, id, payload string }{
			{"add_error", "shot-export", fmt.Sprintf(`{"header":"Export failed","date":%d,`+
				`"text":"The export of <b>Leads · March</b> stopped: the file is over 50 MB."}`, ago(26*time.Hour))},
			{"add_call", "shot-missed", fmt.Sprintf(`{"header":"Missed call","date":%d,"text":"Call from +1 (212) 555-0148",`+
				`"from":"Olivia Bennett","to":"Jason Nash","element":{"id":9921,"type":"lead"},"duration":0}`, ago(3*time.Hour))},
			{"add_error", "shot-task", fmt.Sprintf(`{"header":"Error","date":%d,"text":"Failed to set the task! Contact not found!",`+
				`"link":"/contacts/list/?term=4951234567"}`, ago(40*time.Minute))},
			{"add_call", "shot-call", fmt.Sprintf(`{"text":"Call from +1 (415) 523-7743","date":%d,"from":"Jeremy Watts",`+
				`"to":"Jason Nash","element":{"id":18221265,"type":"contact"},"duration":250,"link":"https://example.com/dialog.mp3"}`,
				ago(2*time.Minute))},
		} {
			e.publish(t, "acme", "58", ev.typ, ev.id, ev.payload)
			e.waitUnread(t, "acme", "58", i+1)
		}
		e.centerCall(t, "acme", "58", http.MethodPost, "/api/v1/center/read", `{"ids":["shot-export"]}`)

		tb := e.openDemo(t, "acme", "58", "dismiss=0")
		tb.waitBadge(t, 3)
		tb.openBell(t)
		if ids := tb.itemIDs(t); !slices.Equal(ids, []string{"shot-call", "shot-task", "shot-missed", "shot-export"}) {
			t.Errorf("the list holds %v", ids)
		}
		if it := tb.readItem(t, "shot-export"); it.Unread || it.Title != "Export failed" {
			t.Errorf("an item read before the page opened: %+v", it)
		}
		if it := tb.readItem(t, "shot-missed"); it.Duration != "00:00" || it.link(t, "kn-element").Text != "Open lead" {
			t.Errorf("the missed call %+v", it)
		}
		if os.Getenv("NOTIFY_WRITE_SCREENSHOT") == "1" {
			tb.do(t, chromedp.MouseEvent(chromedp.MouseMoved, 1, 799))
			tb.waitFor(t, `document.getAnimations().length === 0`)
			png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "..", "docs", "center.png")
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	})
}

// newCenterBrowserEnv is a browser and a daemon whose NOTIFY_BASE_URL is the address
// it serves on, so that the center's links lead to the demo page's own origin, and
// which lets pages of other ports of this host in.
func newCenterBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	e := newBrowserEnv(t, map[string]string{"NOTIFY_HTTP_ADDR": addr, "NOTIFY_BASE_URL": "http://" + addr,
		"NOTIFY_ALLOWED_ORIGINS": "127.0.0.1:*"}) // the host page test's origin
	if e.d.ep.HTTP != "http://"+addr {
		t.Fatalf("the daemon serves on %s, not %s", e.d.ep.HTTP, addr)
	}
	return e
}

// socketHook is a preload script that keeps every websocket the page opens in
// __test.sockets, with the frames it sent and received, and refuses new ones while
// __test.hold(true) is in force, as a network that is down would.
const socketHook = `
(() => {
  const Real = window.WebSocket;
  let held = false;
  const sockets = [];
  window.__test = { sockets, hold(on) { held = on; } };
  window.WebSocket = class extends Real {
    constructor(url, protocols) {
      if (held) throw new DOMException('the test holds the network down', 'NetworkError');
      super(url, protocols);
      this.sent = [];
      this.received = [];
      this.addEventListener('message', (ev) => this.received.push(ev.data));
      sockets.push(this);
    }
    send(data) {
      this.sent.push(data);
      super.send(data);
    }
  };
})();`

// bellFrame is the part of a websocket frame the resume test reads.
type bellFrame struct {
	Kind   string `json:"kind"`
	Op     string `json:"op"`
	Unread int    `json:"unread"`
	Item   struct {
		ID string `json:"id"`
	} `json:"item"`
}

// storedItem is the part of a center item the tests check on the server.
type storedItem struct {
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	Read bool   `json:"read"`
}

// centerCall calls the center API as account/user and returns the answer's body.
func (e *browserEnv) centerCall(t *testing.T, account, user, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.d.ep.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token(t, account, user))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

// centerPage is the user's newest page of center items.
func (e *browserEnv) centerPage(t *testing.T, account, user string) []storedItem {
	t.Helper()
	var page struct{ Items []storedItem }
	if err := json.Unmarshal(e.centerCall(t, account, user, http.MethodGet, "/api/v1/center", ""), &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// isSubsequence reports whether want appears in got in order, not necessarily
// contiguously.
func isSubsequence(want, got []string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

func storedIDs(items []storedItem) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// waitUnread waits until the center has stored the user's items: the unread count
// reaches n.
func (e *browserEnv) waitUnread(t *testing.T, account, user string, n int) {
	t.Helper()
	deadline := time.Now().Add(browserTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var got struct{ Unread int }
		if err := json.Unmarshal(e.centerCall(t, account, user, http.MethodGet, "/api/v1/center/unread", ""), &got); err != nil {
			t.Fatal(err)
		}
		if got.Unread == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the center of %s/%s has %d unread, want %d", account, user, got.Unread, n)
		}
		<-tick.C
	}
}

// waitBadge waits until the bell shows n unread: the badge's number, hidden at 0, and
// the button's label.
func (tb *tab) waitBadge(t *testing.T, n int) {
	t.Helper()
	label := "Notifications, none unread"
	if n > 0 {
		label = fmt.Sprintf("Notifications, %d unread", n)
	}
	tb.waitFor(t, fmt.Sprintf(`(() => {
		const button = document.querySelector('.kn-bell-button'), badge = button && button.querySelector('.kn-badge');
		return badge !== null && button.getAttribute('aria-label') === %q &&
			(%d === 0 ? badge.hidden : !badge.hidden && badge.textContent === '%d');
	})()`, label, n, n))
}

// openBell clicks the bell unless its list is open, and waits until the list is
// loaded.
func (tb *tab) openBell(t *testing.T) {
	t.Helper()
	if eval[string](t, tb, `document.querySelector('.kn-bell-button').getAttribute('aria-expanded')`) != "true" {
		tb.do(t, chromedp.Click(chromedp.CSS(`.kn-bell-button`)))
	}
	tb.do(t, chromedp.WaitVisible(chromedp.CSS(`.kn-bell .kn-panel`)))
	tb.waitFor(t, `(() => {
		const p = document.querySelector('.kn-bell .kn-placeholder');
		return p.hidden || p.textContent !== 'Loading…';
	})()`)
}

// itemIDs lists the ids of the items in the bell's list, top to bottom.
func (tb *tab) itemIDs(t *testing.T) []string {
	t.Helper()
	return eval[[]string](t, tb, `[...document.querySelectorAll('.kn-bell .kn-item')].map((li) => li.dataset.id)`)
}

// bellItem is what a test reads from an item of the bell's list.
type bellItem struct {
	ID, Type, Look, Title, Text, Date string
	Parties, Duration                 string
	Unread, Clickable                 bool
	Links                             []link
}

func (tb *tab) readItem(t *testing.T, id string) bellItem {
	t.Helper()
	return eval[bellItem](t, tb, fmt.Sprintf(`(() => {
		const li = document.querySelector('.kn-bell .kn-item[data-id="' + %q + '"]');
		const text = (sel) => { const e = li.querySelector(sel); return e ? e.textContent : ''; };
		return {
			ID: li.dataset.id, Type: li.dataset.type || '',
			Look: ['message', 'error', 'call'].find((l) => li.classList.contains('kn-' + l)) || '',
			Title: text('.kn-item-title'), Text: text('.kn-text'), Date: text('.kn-item-date'),
			Parties: text('.kn-parties'), Duration: text('.kn-duration'),
			Unread: li.classList.contains('kn-unread'), Clickable: li.classList.contains('kn-clickable'),
			Links: [...li.querySelectorAll('a')].map((a) => ({
				Text: a.textContent, Href: a.getAttribute('href') || '', Target: a.target, Rel: a.rel, Class: a.className })),
		};
	})()`, id))
}

func (it bellItem) link(t *testing.T, class string) link {
	t.Helper()
	for _, l := range it.Links {
		if strings.Contains(" "+l.Class+" ", " "+class+" ") {
			return l
		}
	}
	t.Fatalf("item %s has no link .%s: %+v", it.ID, class, it.Links)
	return link{}
}
