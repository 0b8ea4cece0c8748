package center_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/events/token"
)

// The store is what the hub asks for a hello and a resume. (The assertion lives in a
// test: a channel does not import another.)
var _ relay.Center = (*center.Store)(nil)

// wsTab is a browser tab on the real websocket hub.
type wsTab struct {
	ws     *websocket.Conn
	hello  relay.HelloFrame
	frames chan frame
}

func (r *rig) openTab(t *testing.T, url, tok string) *wsTab {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url+"/?token="+tok, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	tab := &wsTab{ws: ws, frames: make(chan frame, 256)}
	_, data, err := ws.Read(ctx)
	if err != nil || json.Unmarshal(data, &tab.hello) != nil || tab.hello.Kind != "hello" {
		t.Fatalf("hello: %s, %v", data, err)
	}
	go func() {
		defer close(tab.frames)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				t.Errorf("frame %s: %v", data, err)
			}
			tab.frames <- f
		}
	}()
	return tab
}

func (tab *wsTab) next(t *testing.T) frame {
	t.Helper()
	select {
	case f, ok := <-tab.frames:
		if !ok {
			t.Fatal("connection ended")
		}
		return f
	case <-time.After(wait):
		t.Fatal("no frame")
		return frame{}
	}
}

// TestResumeAfterADisconnectHasNoGap connects a tab through the real websocket hub,
// receives items, drops the connection, lets items arrive while it is away, and
// reconnects with a resume after the last seq it saw: it gets exactly the items it
// missed, in order, then resumed with the latest seq and unread count.
func TestResumeAfterADisconnectHasNoGap(t *testing.T) {
	r := newRig(t, nil)
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := relay.NewHub(relay.HubConfig{Conn: r.nats.Conn(t), Tokens: signer, Center: r.store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Run(ctx) }()
	srv := httptest.NewServer(hub)
	t.Cleanup(func() { cancel(); <-hubDone; srv.Close() })
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	tok, err := signer.Mint("acme", "42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	r.add(t, "acme", "42", "before-1")
	// Frames are published without waiting; the ones of items a tab's hello already
	// counts must be out before it connects, or the tab sees them too (a browser
	// drops them by seq).
	r.flush(t)
	tab := r.openTab(t, url, tok)
	if tab.hello.Unread != 1 || tab.hello.Seq == 0 {
		t.Fatalf("hello %+v, want unread 1 and the latest seq", tab.hello)
	}
	var lastSeq uint64
	for i, id := range []string{"live-1", "live-2"} {
		r.add(t, "acme", "42", id)
		r.add(t, "acme", "43", "someone-else-"+id)
		f := tab.next(t)
		if f.Op != "added" || f.itemID(t) != id || f.Unread != int64(i+2) {
			t.Fatalf("frame %+v, want %s added", f, id)
		}
		lastSeq = seqOf(t, f)
	}
	tab.ws.CloseNow() // a dropped connection, no close handshake

	missed := []string{"away-1", "away-2", "away-3"}
	for _, id := range missed {
		r.add(t, "acme", "42", id)
		r.add(t, "acme", "43", "someone-else-"+id)
	}
	if _, err := r.store.MarkRead(t.Context(), "acme", "42", []string{"away-2"}); err != nil {
		t.Fatal(err)
	}
	r.flush(t)

	tab = r.openTab(t, url, tok)
	if tab.hello.Unread != 5 || tab.hello.Seq <= lastSeq {
		t.Fatalf("hello after reconnect %+v", tab.hello)
	}
	resume, _ := json.Marshal(map[string]any{"op": "resume", "after": lastSeq})
	if err := tab.ws.Write(t.Context(), websocket.MessageText, resume); err != nil {
		t.Fatal(err)
	}
	prev := lastSeq
	for _, id := range missed {
		f := tab.next(t)
		if f.Kind != "center" || f.Op != "added" || f.itemID(t) != id || f.Unread != 5 {
			t.Fatalf("replay: %+v, want %s added", f, id)
		}
		if seq := seqOf(t, f); seq <= prev {
			t.Fatalf("replay out of order: seq %d after %d", seq, prev)
		}
		prev = seqOf(t, f)
	}
	f := tab.next(t)
	if f.Kind != "center" || f.Op != "resumed" || f.Seq != tab.hello.Seq || f.Unread != 5 {
		t.Fatalf("after the replay: %+v, want resumed at seq %d with unread 5", f, tab.hello.Seq)
	}
}

func seqOf(t *testing.T, f frame) uint64 {
	t.Helper()
	var it struct {
		Seq  uint64 `json:"seq"`
		Read bool   `json:"read"`
	}
	if err := json.Unmarshal(f.Item, &it); err != nil {
		t.Fatal(err)
	}
	return it.Seq
}
