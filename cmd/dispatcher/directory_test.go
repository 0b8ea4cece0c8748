package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The daemon wires the recipient directory: profiles written through the admin API
// with the generated admin key are what _all expands to for durable channels.
func TestDaemonExpandsAllFromTheDirectory(t *testing.T) {
	env := embeddedEnv(t)
	d := startDaemon(t, env)
	key, err := os.ReadFile(filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"acme/users/1", "acme/users/2", "globex/users/1"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, d.ep.HTTP+"/api/v1/accounts/"+path,
			strings.NewReader(`{"email":"someone@example.com"}`))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, body)
		}
	}

	nc, err := nats.Connect(d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("notify.acme._all.add_error", []byte(`{"text":"Sync failed"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The center keeps one item for each of acme's two users: two deliveries.
	want := []byte(`notify_deliveries_total{channel="center",outcome="sent",type="add_error"} 2`)
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(d.ep.HTTP + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %s; have:\n%s", want, grep(b, "notify_deliveries_total{channel=\"center\""))
		}
		<-tick.C
	}
}
