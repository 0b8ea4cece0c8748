package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/events/token"
)

// The daemon wires the recipient directory: profiles written through the admin API
// with the generated admin key are what _all expands to for durable channels.
func TestDaemonExpandsAllFromTheDirectory(t *testing.T) {
	env := embeddedEnv(t)
	env["NOTIFY_JWT_SECRET"] = testSecret
	d := startDaemon(t, env)
	key, err := os.ReadFile(filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range [][2]string{{"acme", "1"}, {"acme", "2"}, {"globex", "1"}} {
		putProfile(t, d.ep.HTTP, strings.TrimSpace(string(key)), u[0], u[1], `{"email":"someone@example.com"}`)
	}

	// An _all routed before the cache has both profiles reaches fewer users: publish
	// until one event is in the center of both of acme's users.
	publishUntil(t, d, "notify.acme._all.add_error", `{"text":"Sync failed"}`, "sync-0", "_all event in the center of both acme users", func() bool {
		one, two := centerIDs(t, d, "acme", "1"), centerIDs(t, d, "acme", "2")
		return slices.ContainsFunc(one, func(id string) bool { return slices.Contains(two, id) })
	})
	if ids := centerIDs(t, d, "globex", "1"); len(ids) != 0 {
		t.Errorf("acme's _all reached globex/1: %v", ids)
	}
}

// centerIDs lists the ids in a user's notification center, through the API with a
// token minted for the user.
func centerIDs(t *testing.T, d *daemon, account, user string) []string {
	t.Helper()
	signer, err := token.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Mint(account, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, d.ep.HTTP+"/api/v1/center", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct{ ID string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET center of %s/%s: %d %v", account, user, resp.StatusCode, err)
	}
	var ids []string
	for _, it := range page.Items {
		ids = append(ids, it.ID)
	}
	return ids
}
