package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kommo-notify/notify/events/token"
)

const centerTestSecret = "center-test-secret-0123456789abcdef"

// centerFrame is any frame a tab gets; the test looks at the center's.
type centerFrame struct {
	Kind   string `json:"kind"`
	Op     string `json:"op"`
	Unread int64  `json:"unread"`
	Seq    uint64 `json:"seq"`
	IDs    []string
	Item   struct {
		ID    string `json:"id"`
		Seq   uint64 `json:"seq"`
		Links struct {
			Click string `json:"click"`
		} `json:"links"`
	} `json:"item"`
}

// The daemon wires the notification center: an add_call published over HTTP becomes
// an item the user's tab hears of and the center API lists, and the websocket hello
// and resume speak for the center.
func TestDaemonKeepsDurableEventsInTheCenter(t *testing.T) {
	env := embeddedEnv(t)
	env["NOTIFY_JWT_SECRET"] = centerTestSecret
	env["NOTIFY_BASE_URL"] = "https://crm.example.com/"
	d := startDaemon(t, env)
	signer, err := token.NewSigner([]byte(centerTestSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Mint("acme", "42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	apiKey, err := os.ReadFile(filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, cred, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, d.ep.HTTP+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	ws, hello := dialCenterTab(t, d.ep.HTTP, tok)
	if hello.Kind != "hello" || hello.Unread != 0 || hello.Seq != 0 {
		t.Fatalf("hello %+v", hello)
	}
	status, body := call("POST", "/api/v1/notify/acme/42/add_call", strings.TrimSpace(string(apiKey)),
		`{"text":"Call from +1 (415) 523-7743","element":{"id":18221265,"type":"contact"}}`)
	if status != http.StatusAccepted {
		t.Fatalf("publish: %d %s", status, body)
	}
	added := nextCenterFrame(t, ws)
	if added.Op != "added" || added.Unread != 1 || added.Item.Links.Click != "https://crm.example.com/contacts/detail/18221265" {
		t.Fatalf("center frame %+v", added)
	}

	status, body = call("GET", "/api/v1/center", tok, "")
	var page struct {
		Items  []struct{ ID string }
		Unread int64
	}
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != 1 || page.Items[0].ID != added.Item.ID || page.Unread != 1 {
		t.Fatalf("list: %d %s", status, body)
	}
	if status, body = call("POST", "/api/v1/center/read", tok, `{"all":true}`); status != http.StatusOK || !bytes.Contains(body, []byte(`"unread":0`)) {
		t.Fatalf("read all: %d %s", status, body)
	}
	if f := nextCenterFrame(t, ws); f.Op != "read" || f.Unread != 0 {
		t.Errorf("frame %+v, want read", f)
	}

	// A second tab resumes from before the item: it gets the item, then resumed.
	ws2, hello2 := dialCenterTab(t, d.ep.HTTP, tok)
	if hello2.Seq != added.Item.Seq || hello2.Unread != 0 {
		t.Errorf("hello %+v, want seq %d", hello2, added.Item.Seq)
	}
	if err := ws2.Write(t.Context(), websocket.MessageText, []byte(`{"op":"resume","after":0}`)); err != nil {
		t.Fatal(err)
	}
	if f := nextCenterFrame(t, ws2); f.Op != "added" || f.Item.ID != added.Item.ID {
		t.Errorf("replayed %+v", f)
	}
	if f := nextCenterFrame(t, ws2); f.Op != "resumed" || f.Seq != added.Item.Seq {
		t.Errorf("after the replay %+v", f)
	}
}

func TestBadCenterSettingStopsWithOneLine(t *testing.T) {
	cases := map[string]string{
		"NOTIFY_CENTER_MAX_ITEMS": "0",
		"NOTIFY_CENTER_MAX_AGE":   "30s",
	}
	for setting, value := range cases {
		t.Run(setting, func(t *testing.T) {
			env := embeddedEnv(t)
			env[setting] = value
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), nil, envFunc(env), &stdout, &stderr, func(endpoints) {
				t.Error("daemon started with a bad setting")
			})
			if code != 2 || !strings.Contains(stderr.String(), setting) {
				t.Errorf("exit code %d, stderr %q; want 2 naming %s", code, stderr.String(), setting)
			}
		})
	}
}

// dialCenterTab opens the websocket as a browser tab would and reads the hello.
func dialCenterTab(t *testing.T, httpURL, tok string) (*websocket.Conn, centerFrame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(httpURL, "http")+"/ws?token="+tok, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	var hello centerFrame
	_, data, err := ws.Read(ctx)
	if err != nil || json.Unmarshal(data, &hello) != nil {
		t.Fatalf("hello %s: %v", data, err)
	}
	return ws, hello
}

// nextCenterFrame reads frames until a center one, skipping pop-ups.
func nextCenterFrame(t *testing.T, ws *websocket.Conn) centerFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("no center frame: %v", err)
		}
		var f centerFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if f.Kind == "center" {
			return f
		}
	}
}
