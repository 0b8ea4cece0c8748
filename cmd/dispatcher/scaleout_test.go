package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// Two dispatchers on one NATS, tabs of one user spread over both: every pop-up reaches
// every tab exactly once, whichever dispatcher routed it.
func TestTwoDispatchersDeliverEachPopupOncePerTab(t *testing.T) {
	srv := natstest.Start(t)
	env := func() map[string]string {
		return map[string]string{
			"NATS_URL":          srv.URL(),
			"NOTIFY_DATA_DIR":   t.TempDir(),
			"NOTIFY_HTTP_ADDR":  "127.0.0.1:0",
			"NOTIFY_JWT_SECRET": testSecret,
			"NOTIFY_API_KEYS":   "producer-key",
			"NOTIFY_ADMIN_KEYS": "admin-key",
		}
	}
	one, two := startDaemon(t, env()), startDaemon(t, env())
	signer, err := token.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := signer.Mint("acme", "42", time.Hour)
	tabs := []*wsTab{dialTab(t, one, tok), dialTab(t, two, tok), dialTab(t, one, tok)}
	otherTok, _ := signer.Mint("acme", "43", time.Hour)
	other := dialTab(t, two, otherTok)

	nc := srv.Conn(t)
	const n = 50
	for i := range n {
		body := fmt.Sprintf(`{"header":"h","text":"pop %d"}`, i)
		if err := nc.Publish("notify.acme.42.show_message", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Publish("notify.acme._all.show_message", []byte(`{"header":"h","text":"everyone"}`)); err != nil {
		t.Fatal(err)
	}
	for i, tab := range tabs {
		seen := map[string]int{}
		for len(seen) < n+1 {
			f := tab.next(t)
			seen[f.Payload.Text]++
		}
		for text, count := range seen {
			if count != 1 {
				t.Errorf("tab %d got %q %d times", i, text, count)
			}
		}
	}
	if f := other.next(t); f.Payload.Text != "everyone" {
		t.Errorf("acme/43 got %+v, want only the broadcast", f)
	}
	// Nothing more is on its way to any tab: a last pop-up to each user arrives next.
	_ = nc.Publish("notify.acme.42.show_message", []byte(`{"header":"h","text":"last"}`))
	_ = nc.Publish("notify.acme.43.show_message", []byte(`{"header":"h","text":"last"}`))
	for i, tab := range append(tabs, other) {
		if f := tab.next(t); f.Payload.Text != "last" {
			t.Errorf("tab %d got an extra frame %+v", i, f)
		}
	}
}

type wsTab struct {
	ws *websocket.Conn
}

type wsFrame struct {
	Kind, Type, ID string
	Payload        struct{ Text string }
}

func dialTab(t *testing.T, d *daemon, tok string) *wsTab {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(d.ep.HTTP, "http") + "/ws?token=" + tok
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", d.ep.HTTP, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	tab := &wsTab{ws: ws}
	if f := tab.next(t); f.Kind != "hello" {
		t.Fatalf("first frame %+v", f)
	}
	return tab
}

func (w *wsTab) next(t *testing.T) wsFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, data, err := w.ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f wsFrame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	return f
}
